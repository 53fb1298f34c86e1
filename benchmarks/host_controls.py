"""Benchmark the S1 host controls on the nspawn testbed (a script, not a timed test).

Boots 20 conformant hosts, then measures in one run:
  - the suite's probe layer (all 13 host controls): 1, 10 and 20 hosts;
  - the full CLI (`pytest features/ -m S1`): 1, 10 and 20 hosts, with its peak memory;
  - baselines, the same 13 checks: an ansible-playbook --check assertion playbook
    (benchmarks/ansible/host_checks.yml; 1 and 10 hosts), and testinfra written the classic
    way (a command per property) over ssh with a ControlPath master, over paramiko, and naive
    (testinfra's default: no ControlPath, a new connection per command);
  - the cluster controls' API requests per run against the API stand-in.
SSH connections and remote commands are counted on the server side, from each host's
sshd log (LogLevel VERBOSE: "Accepted publickey", "Starting session: command").
Usage: ./run bench [--hosts 20] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import testinfra

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from railiance_conformance.controls import EVALUATORS  # noqa: E402
import railiance_conformance.controls.host  # noqa: E402,F401
from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_host_policy  # noqa: E402
from railiance_conformance.probes.host_facts import HostFactStore, SshOptions  # noqa: E402
from railiance_conformance.targets import hosts_from_urls  # noqa: E402
from railiance_testbed.hosts import CONFORMANT, GITEA_NODEPORT  # noqa: E402
from railiance_testbed.nspawn import Testbed  # noqa: E402

REPOS = ("railiance-infra", "railiance-cluster", "railiance-platform", "railiance-apps")


def classic_testinfra_checks(host) -> int:
    """The same 13 controls as a testinfra user writes them: one command per property."""
    swap = host.file("/swapfile")
    values = [swap.is_file, swap.user, swap.mode, swap.size,
              host.file("/proc/swaps").content_string, host.file("/etc/fstab").content_string,
              host.file("/proc/sys/vm/swappiness").content_string,
              host.file("/etc/sysctl.d/60-swappiness.conf").content_string,
              host.user("tegwick").uid,
              host.file("/etc/security/limits.conf").content_string,
              host.run("ulimit -Su; ulimit -Hu").stdout,
              host.file("/etc/systemd/system/user-1000.slice.d/50-resource-limits.conf").content_string,
              host.run("systemctl show user-1000.slice -p MemoryMax -p MemorySwapMax").stdout]
    key = host.file("/home/tegwick/.ssh/id_ed25519_gitea")
    values += [key.mode, key.user, host.run("ssh -G gitea-local").stdout]
    values += [host.run(f"git -C ~/{repo} remote get-url origin").stdout for repo in REPOS]
    return len(values)


def suite_probe(targets, workdir: Path, ssh: SshOptions) -> int:
    store = HostFactStore(ssh, workdir)
    store.prefetch(targets)
    results = 0
    for target in targets:
        facts = store.get(target)
        assert not facts.failure, facts.failure
        for control_id, evaluate in EVALUATORS.items():
            if control_id.startswith("host."):
                outcome = evaluate(facts, target.desired)
                assert outcome.status.value == "pass", (control_id, outcome)
                results += 1
    store.close()
    return results


def server_counts(bed: Testbed, marks: dict[str, int]) -> dict[str, tuple[int, int]]:
    counts = {}
    for host in bed.hosts:
        lines = host.sshd_log.read_text().splitlines()[marks[host.state.name]:]
        counts[host.state.name] = (sum("Accepted publickey" in l for l in lines),
                                   sum("Starting session: command" in l for l in lines))
    return counts


def log_marks(bed: Testbed) -> dict[str, int]:
    return {h.state.name: len(h.sshd_log.read_text().splitlines()) for h in bed.hosts}


def cpu_seconds() -> float:
    """CPU of this process and its finished children (the ssh clients), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, repeat: int) -> tuple[float, float, object]:
    times, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    return statistics.median(times), statistics.median(cpu), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is printed")
    args = parser.parse_args()
    defaults = load_host_policy(DEFAULT_POLICY_DIR) | {"gitea_ssh_nodeport": GITEA_NODEPORT}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        states = [replace(CONFORMANT, name=f"h{i:02d}") for i in range(args.hosts)]
        print(f"booting {args.hosts} testbed hosts ...", flush=True)
        with Testbed(states, tmp / "bed") as bed:
            ssh = SshOptions(user_config=str(bed.ssh_config))
            targets = hosts_from_urls([h.url for h in bed.hosts], defaults, policy_source="policies/hosts.yaml")
            rows = []

            def measure(label, fn, hosts):
                marks = log_marks(bed)
                seconds, cpu, checks = timed(fn, args.repeat)
                counts = server_counts(bed, marks)
                per_host = [counts[h.state.name] for h in hosts]
                conn = max(c for c, _ in per_host) / args.repeat
                cmds = max(c for _, c in per_host) / args.repeat
                rows.append((label, len(hosts), seconds, cpu, checks, conn, cmds))

            one, first = targets[:1], bed.hosts[:1]
            sizes = sorted({1, min(10, args.hosts), args.hosts})
            for n in sizes:
                measure("suite probe layer", lambda n=n: suite_probe(targets[:n], tmp, ssh), bed.hosts[:n])
            cli = [sys.executable, "-m", "pytest", "features/", "-m", "S1", "-q", "-p", "no:randomly",
                   "--ssh-config", str(bed.ssh_config), "--report-dir", str(tmp / "reports")]
            run_cli = lambda urls: subprocess.run([*cli, "--hosts", ",".join(urls)], cwd=REPO,
                                                  capture_output=True).returncode
            for n in sizes:
                measure("pytest features/ -m S1 (CLI)", lambda n=n: run_cli([h.url for h in bed.hosts[:n]]),
                        bed.hosts[:n])
            peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            for n in sorted({1, min(10, args.hosts)}):
                measure("ansible-playbook --check", lambda n=n: ansible_check(bed, n, tmp), bed.hosts[:n])
            pq_ssh = SshOptions(user_config=str(bed.ssh_config), kex="openssh-default")
            measure("suite probe layer, --ssh-kex openssh-default", lambda: suite_probe(one, tmp, pq_ssh), first)
            measure("suite probe layer, --ssh-kex openssh-default", lambda: suite_probe(targets, tmp, pq_ssh),
                    bed.hosts)
            url = bed.hosts[0].url
            control = str(tmp / "cm.sock")

            def with_master():
                """testinfra over one ControlPath master, set up and torn down in each run."""
                checks = classic_testinfra_checks(testinfra.get_host(
                    url, ssh_config=str(bed.ssh_config), controlpath=control, controlpersist=60))
                subprocess.run(["ssh", "-F", str(bed.ssh_config), "-o", f"ControlPath={control}", "-O", "exit",
                                "-p", "2222", f"tegwick@{bed.hosts[0].address}"], capture_output=True)
                return checks

            measure("testinfra ssh + ControlPath", with_master, first)
            measure("testinfra ssh, no ControlPath (naive)",
                    lambda: classic_testinfra_checks(testinfra.get_host(
                        url, ssh_config=str(bed.ssh_config), controlpersist=0)), first)
            try:
                import paramiko  # noqa: F401
                def with_paramiko():
                    """A fresh paramiko connection per run (testinfra caches hosts)."""
                    testinfra.host.Host._host_cache.clear()
                    host = testinfra.get_host(url.replace("ssh://", "paramiko://"), ssh_config=str(bed.ssh_config))
                    checks = classic_testinfra_checks(host)
                    host.backend.client.close()
                    return checks

                measure("testinfra paramiko", with_paramiko, first)
            except ImportError:
                print("(paramiko not installed: pip install paramiko to add that baseline)")

    base = next(r[2] for r in rows if r[0] == "testinfra ssh + ControlPath")
    one_host = next(r[2] for r in rows if r[0] == "suite probe layer" and r[1] == 1)
    print(f"\nS1 host controls, median of {args.repeat} runs (connections/commands per host, server side)")
    print("(client CPU = this process and its ssh children, user+system; the hosts' sshd, PAM and")
    print(" systemd run on the same 2 cores, so wall time at 10 hosts also pays for 10 servers)")
    print(f"{'what':46} {'hosts':>5} {'wall s':>7} {'client CPU s':>12} {'checks':>6} {'conn/host':>9}"
          f" {'cmds/host':>9} {'vs testinfra+CP':>15} {'vs 1 host':>9}")
    for label, hosts, seconds, cpu, checks, conn, cmds in rows:
        same = next(r[2] for r in rows if r[0] == label and r[1] == 1)
        print(f"{label:46} {hosts:>5} {seconds:>7.3f} {cpu:>12.3f} {checks:>6} {conn:>9.2f} {cmds:>9.2f}"
              f" {seconds / base:>14.2f}x {seconds / same:>8.2f}x")
    by = {(r[0], r[1]): r[2] for r in rows}
    biggest = max(r[1] for r in rows)
    print("\nratios (same run):")
    print(f"  suite CLI / ansible-playbook --check, 1 host:   "
          f"{by[('pytest features/ -m S1 (CLI)', 1)] / by[('ansible-playbook --check', 1)]:.2f}x (aim <= 0.3x)")
    print(f"  suite probe layer / ansible --check, 1 host:    "
          f"{by[('suite probe layer', 1)] / by[('ansible-playbook --check', 1)]:.2f}x")
    print(f"  suite probe layer / naive testinfra, 1 host:    "
          f"{by[('suite probe layer', 1)] / by[('testinfra ssh, no ControlPath (naive)', 1)]:.2f}x (aim <= 0.5x)")
    print(f"  suite CLI / naive testinfra, 1 host:            "
          f"{by[('pytest features/ -m S1 (CLI)', 1)] / by[('testinfra ssh, no ControlPath (naive)', 1)]:.2f}x")
    print(f"  CLI, {biggest} hosts / 1 host:                         "
          f"{by[('pytest features/ -m S1 (CLI)', biggest)] / by[('pytest features/ -m S1 (CLI)', 1)]:.2f}x (aim <= 3x)")
    print(f"  probe layer, {biggest} hosts / 1 host:                 "
          f"{by[('suite probe layer', biggest)] / one_host:.2f}x")
    print(f"  peak memory of a CLI run (max RSS): {peak_rss_mib:.0f} MiB")
    print(cluster_requests())
    return 0


def ansible_check(bed: Testbed, hosts: int, tmp: Path) -> int:
    """ansible-playbook --check of the assertion playbook; fresh ssh masters per run."""
    control_dir = Path(tempfile.mkdtemp(dir=tmp, prefix="cp-"))
    env = dict(os.environ, ANSIBLE_SSH_ARGS=f"-F {bed.ssh_config} -o ControlMaster=auto -o ControlPersist=60s",
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir), ANSIBLE_PIPELINING="True",
               ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_FORKS="20", ANSIBLE_NOCOLOR="1",
               ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3")
    limit = ",".join(h.state.name for h in bed.hosts[:hosts])
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "--check", "-i", str(bed.inventory),
                           "--limit", limit, str(REPO / "benchmarks" / "ansible" / "host_checks.yml")],
                          env=env, capture_output=True, text=True)
    for socket_path in control_dir.iterdir():  # stop the masters this run started
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "x"], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"ansible-playbook failed:\n{done.stdout[-3000:]}")
    return 13 * hosts


def cluster_requests() -> str:
    """The cluster controls against the API stand-in: requests per run, LISTs per kind."""
    from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump

    with tempfile.TemporaryDirectory() as tmp, KubeAPIStandIn(load_dump([CONFORMANT_DUMP])) as api:
        subprocess.run([sys.executable, "-m", "pytest", "features/", "-m", "cluster", "-q", "--kubeconfig",
                        str(api.write_kubeconfig(Path(tmp) / "kc")), "--report-dir", tmp], cwd=REPO,
                       capture_output=True)
        requests = api.requests()
    lists = [r for r in requests if r.path.rstrip("/").split("/")[-1] in
             {"pods", "deployments", "statefulsets", "secrets", "persistentvolumeclaims", "clusters", "services"}
             and "/namespaces/" not in r.path]
    kinds = sorted({r.path.rsplit("/", 1)[-1] for r in lists})
    return (f"  cluster controls: {len(requests)} API requests per run, {len(lists)} LISTs over {len(kinds)} kinds "
            f"({', '.join(kinds)}): max 1 LIST per kind; {sum(r.method != 'GET' for r in requests)} write verbs")


if __name__ == "__main__":
    sys.exit(main())
