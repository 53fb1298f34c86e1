"""Benchmark the S1 host controls as whole processes, the way a user starts them (a script, not a timed test).

Starts 100 conformant namespace hosts (railiance_testbed/nshosts.py: sshd-only, no systemd), then
measures, paired in one run (every round runs every row once, in a rotated order; medians of
``--repeat`` rounds after one untimed warm-up round of the 1-host rows that fills the bytecode caches):

  - the suite:  ``pytest features/ -m S1 --ansible-inventory INV --ssh-config CFG`` (every report
    format and the history, as by default), 1, 10 and 100 hosts;
  - testinfra:  benchmarks/testinfra/test_host_checks.py (the same 18 checks written the classic
    way: a command per property) run by ``pytest --hosts=... --ssh-config=CFG`` with a
    ControlMaster/ControlPath in CFG; 1 and 10 hosts;
  - Ansible:    ``ansible-playbook --check`` of benchmarks/ansible/host_checks.yml (the same 18
    checks as assertions; pipelining, forks 20, ControlPersist); 1 and 10 hosts;
  - the suite's probe layer in-process (no pytest: the fact script of
    ``checks.bundled_plan().host_facts`` over one SSH command per host, each kind's evaluator): 1, 10, 100;
  - with ``--nspawn``: the suite, testinfra and Ansible at 1 and 10 nspawn hosts (real systemd) too.

Then the peak memory of one more suite run at 100 hosts: the pytest process's own max RSS
(``wait4``) and the sampled sum of RSS over it and its children (the ssh clients), and the cluster
controls' API requests against the API stand-in. Every run is checked: each tool must report every
host with exactly the checks that must fail there failing (on namespace hosts the two that need
systemd), so a broken baseline cannot pass for a fast one. SSH connections and remote commands are
counted on the server side, from each host's sshd log (LogLevel VERBOSE).

Whole processes here are started with the bytecode cache allowed (PYTHONDONTWRITEBYTECODE unset), as
an installed suite runs; ``-p no:hypothesispytest`` (the project's test extra, not in an operator's
install) is given to every pytest process, and the testinfra baseline runs without the pytest-bdd plugin.

Usage: ./run bench [--repeat 5] [--hosts 100] [--nspawn] [--no-ansible] [--no-probe-layer]
Prints a plain table, the paired ratios against the aims in BENCHMARKS.md, and a Markdown
table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from railiance_testbed.hosts import CGROUP2_CONTROLS, CONFORMANT, cgroup2_memory  # noqa: E402
from railiance_testbed.nshosts import SYSTEMD_CONTROLS, NamespaceTestbed  # noqa: E402
from railiance_testbed.nspawn import Testbed  # noqa: E402

# without the Gitea SSH server (the default, "sshd-only" hosts) these are errors for every tool: the
# operator's ssh finds nothing listening on the host's Gitea port
GITEA_CONTROLS = frozenset({"host.gitea_ssh.login", "host.gitea_ssh.ls_remote"})

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
NO_TEST_EXTRA = ["-p", "no:hypothesispytest"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
MIB = 1024 * 1024


class BenchError(RuntimeError):
    """A measured run did not do what it must (wrong exit status, a host missing, a check not run)."""


@dataclass
class Bed:
    """One started testbed (namespace or nspawn hosts) and what the rows need of it."""

    tier: str                       # "namespace" | "nspawn"
    testbed: Testbed
    failing: frozenset[str]         # S1 host controls that must be errors on every host of this tier
    workdir: Path
    cgroup: "CpuCgroup | None" = None   # the hosts' processes are in it (namespace hosts): their CPU

    def hosts_cpu(self) -> float:
        return self.cgroup.seconds() if self.cgroup is not None else float("nan")

    def inventory(self, n: int) -> Path:
        """An Ansible inventory of the first ``n`` hosts, with the testbed's group_vars."""
        directory = self.workdir / f"inventory-{self.tier}-{n}"
        if not directory.exists():
            shutil.copytree(self.testbed.inventory.parent, directory)
            lines = self.testbed.inventory.read_text().splitlines()
            (directory / "hosts.ini").write_text("\n".join(lines[:1 + n]) + "\n")
        return directory / "hosts.ini"

    def urls(self, n: int) -> list[str]:
        return [h.url for h in self.testbed.hosts[:n]]


@dataclass
class Row:
    """One measured command: ``run()`` is timed, ``check(output)`` and ``cleanup()`` are not."""

    tool: str                       # "suite" | "testinfra" | "ansible" | "probe layer"
    bed: Bed
    hosts: int
    run: Callable[[], object]
    check: Callable[[object], str]
    cleanup: Callable[[], None] = lambda: None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    conn: list[float] = field(default_factory=list)
    cmds: list[float] = field(default_factory=list)
    hosts_cpu: list[float] = field(default_factory=list)
    checked: str = ""

    @property
    def label(self) -> str:
        return f"{self.tool} [{self.bed.tier}] x{self.hosts}"

    def measure(self, timed: bool) -> None:
        marks = log_marks(self.bed.testbed.hosts[:self.hosts])
        start_hosts = self.bed.hosts_cpu()
        start_cpu, start = cpu_seconds(), time.perf_counter()
        output = self.run()
        wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        hosts_cpu = self.bed.hosts_cpu() - start_hosts
        counts = server_counts(self.bed.testbed.hosts[:self.hosts], marks)
        self.cleanup()
        self.checked = self.check(output)
        if timed:
            self.wall.append(wall)
            self.cpu.append(cpu)
            self.conn.append(max(c for c, _ in counts))
            self.cmds.append(max(c for _, c in counts))
            self.hosts_cpu.append(hosts_cpu)


def cpu_seconds() -> float:
    """User + system CPU of this process and every child it has waited for (the measured processes
    and their descendants: ssh clients, ansible's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def log_marks(hosts) -> list[int]:
    return [h.sshd_log.stat().st_size for h in hosts]


def server_counts(hosts, marks: list[int]) -> list[tuple[int, int]]:
    """Per host: (SSH logins, remote commands) its sshd logged since ``marks``."""
    counts = []
    for host, mark in zip(hosts, marks, strict=True):
        with open(host.sshd_log, "rb") as log:
            log.seek(mark)
            text = log.read().decode(errors="replace")
        counts.append((text.count("Accepted publickey"), text.count("Starting session: command")))
    return counts


def run_process(argv: list[str], log: Path, *, cwd: Path = REPO, env: dict | None = None) -> tuple[int, str]:
    """Run a whole process (output to a file: an ssh master left behind cannot hold a pipe open)."""
    with open(log, "wb") as out:
        rc = subprocess.run(argv, cwd=cwd, env=env or ENV, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT).returncode
    return rc, log.read_text(errors="replace")


def stop_masters(directory: Path) -> None:
    """Stop the ssh ControlPersist masters whose sockets are in ``directory`` (after a run, untimed)."""
    for socket_path in directory.iterdir() if directory.exists() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "x"], capture_output=True)
        socket_path.unlink(missing_ok=True)


# --- the rows --------------------------------------------------------------------------------------

def host_controls() -> tuple[set[str], set[str]]:
    from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog

    catalog = load_catalog(DEFAULT_POLICY_DIR)
    hosts = [c for c in catalog.controls.values() if c.id.startswith("host.")]
    return {c.id for c in hosts if not c.pending}, {c.id for c in hosts if c.pending}


HOST_CONTROLS, HOST_PENDING = host_controls()


def suite_row(bed: Bed, n: int, tmp: Path) -> Row:
    report_dir = tmp / f"reports-{bed.tier}-{n}"   # kept across rounds, as a user's reports/ (history grows)
    argv = [PYTHON, "-m", "pytest", "features/", "-m", "S1", "--ansible-inventory", str(bed.inventory(n)),
            "--ssh-config", str(bed.testbed.ssh_config), "--report-dir", str(report_dir), *NO_TEST_EXTRA]

    def check(result) -> str:
        rc, output = result
        if rc not in (0, 1):
            raise BenchError(f"suite x{n}: exit {rc}\n{output[-3000:]}")
        document = json.loads((report_dir / "findings.json").read_text())
        names = [h.state.name for h in bed.testbed.hosts[:n]]
        statuses: dict[str, dict[str, str]] = {}
        for finding in document["findings"]:
            statuses.setdefault(finding["target"], {})[finding["control_id"]] = finding["status"]
        want = {**{c: "pass" for c in HOST_CONTROLS}, **{c: "error" for c in bed.failing},
                **{c: "pending" for c in HOST_PENDING}}
        for name in names:
            if statuses.get(name) != want:
                raise BenchError(f"suite x{n}: {name}: {statuses.get(name)} != {want}")
        return f"{len(HOST_CONTROLS)} controls x {n} hosts, {len(bed.failing)} errors per host"
    return Row("suite", bed, n, lambda: run_process(argv, tmp / "suite.log"), check)


def testinfra_row(bed: Bed, n: int, tmp: Path) -> Row:
    workdir = tmp / "testinfra"
    if not workdir.exists():  # the user's own directory with their test module, outside this repo
        workdir.mkdir()
        shutil.copy(BENCH / "testinfra" / "test_host_checks.py", workdir)
    control = tmp / f"cm-{bed.tier}"
    control.mkdir(exist_ok=True)
    config = workdir / f"ssh_config-{bed.tier}"
    config.write_text(f"ControlPath {control}/%C\n" + bed.testbed.ssh_config.read_text())
    argv = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:pytest-bdd", *NO_TEST_EXTRA,
            f"--hosts={','.join(bed.urls(n))}", f"--ssh-config={config}", "test_host_checks.py"]
    checks = len(re.findall(r"^def test_", (BENCH / "testinfra" / "test_host_checks.py").read_text(), re.M))
    failing = {"host.slice.effective": "test_slice_effective", "host.slice.enforced": "test_slice_enforced",
               "host.gitea_ssh.login": "test_gitea_login", "host.gitea_ssh.ls_remote": "test_gitea_ls_remote"}

    def check(result) -> str:
        rc, output = result
        passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", output)) else 0
        failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", output)) else 0
        failed_names = set(re.findall(r"^FAILED \S+::(test_\w+)\[", output, re.M))
        if passed != (checks - len(bed.failing)) * n or failed != len(bed.failing) * n or \
                failed_names != {failing[c] for c in bed.failing}:
            raise BenchError(f"testinfra x{n}: {passed} passed, {failed} failed ({sorted(failed_names)})\n{output[-3000:]}")
        return f"{checks} tests x {n} hosts, {len(bed.failing)} failing per host"
    return Row("testinfra", bed, n, lambda: run_process(argv, tmp / "testinfra.log", cwd=workdir), check,
               cleanup=lambda: stop_masters(control))


def ansible_row(bed: Bed, n: int, tmp: Path) -> Row:
    control = tmp / f"ansible-cp-{bed.tier}"
    control.mkdir(exist_ok=True)
    config = tmp / f"ansible-{bed.tier}.cfg"
    config.write_text("[defaults]\nforks = 20\nhost_key_checking = True\ninterpreter_python = /usr/bin/python3\n"
                      "nocolor = True\nretry_files_enabled = False\n\n[ssh_connection]\npipelining = True\n"
                      f"ssh_args = -F {bed.testbed.ssh_config} -o ControlMaster=auto -o ControlPersist=60s\n"
                      f"control_path_dir = {control}\n")
    argv = [ANSIBLE_PLAYBOOK, "--check", "-i", str(bed.inventory(n)), str(BENCH / "ansible" / "host_checks.yml")]
    env = dict(ENV, ANSIBLE_CONFIG=str(config))

    def check(result) -> str:
        rc, output = result
        recap = dict(re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M))
        names = [h.state.name for h in bed.testbed.hosts[:n]]
        for name in names:
            fields = dict(kv.split("=") for kv in recap.get(name, "").split())
            if rc != 0 or fields.get("unreachable") != "0" or fields.get("failed") != "0" or \
                    fields.get("ignored") != str(len(bed.failing)):
                raise BenchError(f"ansible x{n}: exit {rc}, {name}: {recap.get(name)}\n{output[-3000:]}")
        return f"18 assertions x {n} hosts, {len(bed.failing)} failing (ignored) per host"
    return Row("ansible", bed, n, lambda: run_process(argv, tmp / "ansible.log", env=env), check,
               cleanup=lambda: stop_masters(control))


def probe_layer_row(bed: Bed, n: int, tmp: Path) -> Row:
    """The suite's probe layer in this process: one fact script per host, each control's kind evaluated."""
    from railiance_conformance.checks import bundled_plan
    from railiance_conformance.inventory import hosts_from_inventory
    from railiance_conformance.probes.host_facts import HostFactStore, SshOptions
    from railiance_conformance.vocabulary import CHECK_KINDS

    plan = bundled_plan()
    controls = [c for c in plan.selected if c in HOST_CONTROLS]
    targets = hosts_from_inventory(str(bed.inventory(n)), {}, limit=None, policy_source="features/")
    options = SshOptions(user_config=str(bed.testbed.ssh_config))
    workdir = tmp / f"probe-{bed.tier}-{n}"
    workdir.mkdir(exist_ok=True)

    def run():
        store = HostFactStore(options, workdir, facts_for=plan.host_facts)
        store.prefetch(targets)
        outcomes = {}
        for target in targets:
            facts = store.get(target)
            for control_id in controls:
                kind = CHECK_KINDS[plan.spec(control_id).kind]
                outcomes[(target.name, control_id)] = kind.evaluate(facts, plan.params(control_id, target)[0]).status.value
        store.close()
        return outcomes

    def check(outcomes) -> str:
        want = {(t.name, c): "error" if c in bed.failing else "pass" for t in targets for c in controls}
        if outcomes != want:
            wrong = {k: v for k, v in outcomes.items() if want.get(k) != v}
            raise BenchError(f"probe layer x{n}: {dict(list(wrong.items())[:5])}")
        return f"{len(controls)} controls x {n} hosts"
    return Row("probe layer", bed, n, run, check)


def startup_row(bed: Bed, tmp: Path) -> Row:
    """A floor: pytest's own start-up with the suite's plugin, steps and features, no target
    (``--collect-only``): what any run of ``pytest features/`` pays before its first probe."""
    argv = [PYTHON, "-m", "pytest", "features/", "-m", "S1", "--collect-only", "-q", "--report-dir",
            str(tmp / "reports-startup"), *NO_TEST_EXTRA]

    def check(result) -> str:
        rc, output = result
        collected = len(re.findall(r"^features/\S+::test_", output, re.M))
        if rc != 0 or collected < len(HOST_CONTROLS):
            raise BenchError(f"start-up: exit {rc}, {collected} items\n{output[-3000:]}")
        return f"{collected} items collected, no target"
    return Row("pytest start-up", bed, 1, lambda: run_process(argv, tmp / "startup.log"), check)


PLAIN_TEST = "def test_nothing():\n    pass\n"
BDD_TEST = ('from pytest_bdd import given, scenarios\n\nscenarios("one.feature")\n\n\n'
            '@given("nothing")\ndef nothing():\n    pass\n')
BDD_FEATURE = "Feature: one\n  Scenario: one\n    Given nothing\n"


def bare_pytest_row(bed: Bed, tmp: Path, bdd: bool) -> Row:
    """A floor: pytest alone (one empty test, pytest-bdd's plugin not loaded), or pytest with pytest-bdd
    (one one-step scenario), in a directory of its own (no conftest, no suite plugin): what pytest and
    pytest-bdd cost before any of the suite's own code."""
    workdir = tmp / ("bare-bdd" if bdd else "bare-pytest")
    if not workdir.exists():
        workdir.mkdir()
        (workdir / "test_one.py").write_text(BDD_TEST if bdd else PLAIN_TEST)
        if bdd:
            (workdir / "one.feature").write_text(BDD_FEATURE)
    argv = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *NO_TEST_EXTRA,
            *(() if bdd else ("-p", "no:pytest-bdd")), "test_one.py"]

    def check(result) -> str:
        rc, output = result
        if rc != 0 or "1 passed" not in output:
            raise BenchError(f"bare pytest (bdd={bdd}): exit {rc}\n{output[-3000:]}")
        return "1 test passed"
    return Row("pytest + pytest-bdd" if bdd else "pytest alone", bed, 1,
               lambda: run_process(argv, tmp / "bare.log", cwd=workdir), check)


def ssh_row(bed: Bed, n: int, tmp: Path) -> Row:
    """A floor: one ``ssh HOST true`` per host, as many at once as the suite's --probe-workers
    (16), with the suite's key exchange: the logins any SSH-based tool pays, and nothing else."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    from railiance_conformance.probes.host_facts import SshOptions

    def login(url: str) -> int:
        parts = urlsplit(url)
        return subprocess.run(["ssh", "-F", str(bed.testbed.ssh_config), "-o", f"KexAlgorithms={SshOptions.FAST_KEX}",
                               "-o", f"User={parts.username}", "-o", f"Port={parts.port}", parts.hostname, "true"],
                              stdin=subprocess.DEVNULL, capture_output=True).returncode

    def run():
        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(login, bed.urls(n)))

    def check(codes) -> str:
        if codes != [0] * n:
            raise BenchError(f"ssh x{n}: exit statuses {codes}")
        return f"{n} logins, 16 at a time"
    return Row("ssh true", bed, n, run, check)


def section_costs(bed: Bed, tmp: Path, repeat: int) -> list[tuple[str, int, float]]:
    """What each host control's part of the fact script costs on one host: the hosts' CPU (their cgroup)
    of ``repeat`` runs of the script with only that control's facts, less the same runs of the script with
    no fact (the login, the session and the script's preamble), per run. Returns ``[(control, sections,
    seconds per run)]``, then ``("(every control: the whole script)", ...)`` and ``("(no fact: login and
    preamble)", ...)`` with its own absolute cost. Controls share facts (the account, the page size), so
    the parts add up to more than the whole."""
    from railiance_conformance.checks import bundled_plan
    from railiance_conformance.inventory import hosts_from_inventory
    from railiance_conformance.probes.host_facts import HostFactStore, SshOptions
    from railiance_conformance.vocabulary import CHECK_KINDS

    plan = bundled_plan()
    [target] = hosts_from_inventory(str(bed.inventory(1)), {}, limit=None, policy_source="features/")
    controls = [c for c in plan.selected if c in HOST_CONTROLS]
    options = SshOptions(user_config=str(bed.testbed.ssh_config))
    workdir = tmp / "sections"
    workdir.mkdir(exist_ok=True)

    def facts_of(control_id: str):
        return CHECK_KINDS[plan.spec(control_id).kind].facts(plan.params(control_id, target)[0])

    def cost(facts) -> float:
        store = HostFactStore(options, workdir, facts_for=lambda _: facts, workers=1)
        store._gather(target)  # warm: the first run pays for page-cache misses
        start = bed.hosts_cpu()
        for _ in range(repeat):
            gathered = store._gather(target)
            if gathered.failure:
                raise BenchError(f"sections: {gathered.failure}")
        store.close()
        return (bed.hosts_cpu() - start) / repeat

    from railiance_conformance.probes.facts import Fact

    empty = cost([Fact("baseline", "sec baseline :")])  # one builtin: the script must frame something
    everything = [f for c in controls for f in facts_of(c)]
    rows = [(c, len({f.section for f in facts_of(c)}), cost(facts_of(c)) - empty) for c in controls]
    rows.append(("(every control: the whole script)", len({f.section for f in everything}), cost(everything) - empty))
    rows.append(("(no fact: login and preamble)", 0, empty))
    return rows


def print_section_costs(rows: list[tuple[str, int, float]], repeat: int) -> None:
    print(f"\nthe fact script's cost on one host, per control (hosts CPU from their cgroup, less the script with no "
          f"fact; mean of {repeat} runs):")
    print("| control | sections | hosts CPU ms |\n|---|---|---|")
    for control, sections, seconds in rows:
        print(f"| {control} | {sections} | {seconds * 1000:.1f} |")


class CpuCgroup:
    """A cgroup the namespace hosts run in, to read the CPU they used (user + system, seconds): cgroup v2
    ``cpu.stat`` (usage_usec is there with no controller enabled) where a cgroup2 hierarchy is mounted,
    else cgroup v1 ``cpuacct.usage``. ``CpuCgroup.make()`` is None where neither can be written."""

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version

    @classmethod
    def make(cls) -> "CpuCgroup | None":
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
        candidates = [(Path(m[1]), 2) for m in mounts if m[2] == "cgroup2"]
        candidates += [(Path(m[1]), 1) for m in mounts if m[2] == "cgroup" and "cpuacct" in m[3].split(",")]
        for root, version in candidates:
            path = root / f"railiance-bench-{os.getpid()}"
            try:
                path.mkdir()
                cgroup = cls(path, version)
                cgroup.seconds()
                return cgroup
            except OSError:
                continue
        return None

    def seconds(self) -> float:
        if self.version == 2:
            text = (self.path / "cpu.stat").read_text()
            return int(re.search(r"^usage_usec (\d+)", text, re.M).group(1)) / 1e6
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError as exc:
            print(f"(could not remove {self.path}: {exc})", file=sys.stderr)


# --- memory and the cluster -----------------------------------------------------------------------

def tree_rss(root: int) -> int:
    """Sum of VmRSS (bytes) of ``root`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as status:
                text = status.read()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(re.search(r"^PPid:\s+(\d+)", text, re.M).group(1))
        found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
        rss[pid] = int(found.group(1)) * 1024 if found else 0
    total, stack = 0, [root]
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def peak_memory(row: Row, tmp: Path) -> tuple[float, float]:
    """One more (untimed) suite run of ``row``: (the pytest process's max RSS, the peak sampled sum of
    RSS of it and its children), MiB."""
    argv = [PYTHON, "-m", "pytest", "features/", "-m", "S1", "--ansible-inventory", str(row.bed.inventory(row.hosts)),
            "--ssh-config", str(row.bed.testbed.ssh_config), "--report-dir", str(tmp / "reports-memory"),
            *NO_TEST_EXTRA]
    with open(tmp / "memory.log", "wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=ENV, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(process.pid))
                done.wait(0.02)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    if process.returncode not in (0, 1):
        raise BenchError(f"memory run: exit {process.returncode}")
    return usage.ru_maxrss / 1024, peak[0] / MIB


def cluster_requests(tmp: Path) -> str:
    """The cluster controls against the API stand-in: requests per run, LISTs per kind."""
    from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump

    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP])) as api:
        run_process([PYTHON, "-m", "pytest", "features/", "-m", "cluster", "-q", "--kubeconfig",
                     str(api.write_kubeconfig(tmp / "kubeconfig")), "--report-dir", str(tmp / "reports-cluster"),
                     *NO_TEST_EXTRA], tmp / "cluster.log")
        requests = api.requests()
    lists = [r for r in requests if r.path.rstrip("/").split("/")[-1] in
             {"pods", "deployments", "statefulsets", "secrets", "persistentvolumeclaims", "clusters", "services"}
             and "/namespaces/" not in r.path]
    kinds = sorted({r.path.rsplit("/", 1)[-1] for r in lists})
    return (f"cluster controls: {len(requests)} API requests per run, {len(lists)} LISTs over {len(kinds)} kinds "
            f"({', '.join(kinds)}); {sum(r.method != 'GET' for r in requests)} write verbs")


# --- report ---------------------------------------------------------------------------------------

def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}"  # NaN: not measured (nspawn hosts run in no cgroup of ours)


def paired(a: Row | None, b: Row | None, measure: str = "wall") -> float | None:
    """The median over rounds of a's ``measure`` (wall, cpu) / b's in the same round."""
    if a is None or b is None or not getattr(a, measure) or not getattr(b, measure):
        return None
    return statistics.median(x / y for x, y in zip(getattr(a, measure), getattr(b, measure), strict=True))


def per_host_lines(find, big: int) -> list[str]:
    """The cost aims per host: the hosts' CPU per host beyond one login (aim <= 50 ms), the client CPU per
    additional host between 1 and ``big`` hosts (aim <= 10 ms), suite / testinfra at one host (aim <= 1.0x),
    and what pytest and pytest-bdd alone cost. Each a median over rounds of the value within one round."""
    lines = []
    suite1, suite_big, login_big = find("suite", 1), find("suite", big), find("ssh true", big)
    if suite_big and login_big and suite_big.hosts_cpu and login_big.hosts_cpu:
        per_host = statistics.median((s - l) / big for s, l in zip(suite_big.hosts_cpu, login_big.hosts_cpu, strict=True))
        login = median(login_big.hosts_cpu) / big
        lines.append(f"the hosts' CPU per host beyond one login: {per_host * 1000:.0f} ms (suite at {big} hosts "
                     f"{median(suite_big.hosts_cpu):.2f} s, {big} logins {median(login_big.hosts_cpu):.2f} s = "
                     f"{login * 1000:.0f} ms each)  (aim <= 50 ms: {'met' if per_host <= 0.050 else 'NOT met'})")
    if suite1 and suite_big and big > 1:
        extra = statistics.median((b - a) / (big - 1) for a, b in zip(suite1.cpu, suite_big.cpu, strict=True))
        lines.append(f"the client CPU per additional host, 1 to {big} hosts: {extra * 1000:.1f} ms ({median(suite1.cpu):.2f} s "
                     f"at 1, {median(suite_big.cpu):.2f} s at {big})  (aim <= 10 ms: {'met' if extra <= 0.010 else 'NOT met'})")
        if login_big and login_big.cpu:
            # the ssh client's own share: one login per host, the same key exchange, 16 at a time as the suite runs them
            ssh = statistics.median(c / big for c in login_big.cpu)
            lines.append(f"  of which one ssh login (the client's ssh process, the 'ssh true' row at {big} hosts): "
                         f"{ssh * 1000:.1f} ms; the suite's own beyond it: {(extra - ssh) * 1000:.1f} ms "
                         f"(parse, evaluate, record, reports, history)")
    ratio = paired(suite1, find("testinfra", 1))
    if ratio is not None:
        lines.append(f"suite / testinfra+ControlPath at 1 host: {ratio:.3f}x ({median(suite1.wall):.2f} s against "
                     f"{median(find('testinfra', 1).wall):.2f} s)  (aim <= 1.0x: {'met' if ratio <= 1.0 else 'NOT met'})")
    bare, bdd, startup = find("pytest alone", 1), find("pytest + pytest-bdd", 1), find("pytest start-up", 1)
    if bare and bdd and startup:
        lines.append(f"start-up: pytest alone {median(bare.wall):.2f} s, with pytest-bdd {median(bdd.wall):.2f} s, the "
                     f"suite's collection (plugin, policy, features) {median(startup.wall):.2f} s")
    return lines


def report(rows: list[Row], repeat: int, memory: tuple[float, float] | None, cluster: str | None,
           big: int, hosts_kind: str) -> None:
    def find(tool: str, n: int, tier: str = "namespace") -> Row | None:
        return next((r for r in rows if r.tool == tool and r.hosts == n and r.bed.tier == tier), None)

    print(f"\nS1 host controls on this machine ({os.cpu_count()} cores), whole processes unless noted, "
          f"median of {repeat} paired rounds; {hosts_kind}")
    print("(client CPU = the measured process and its children, user+system; hosts CPU = every process of the")
    print(" namespace hosts (sshd, PAM, the remote commands), from their cgroup: they run on the same cores, so wall")
    print(" time at many hosts also pays for the servers; conn/cmds = per host, counted by its sshd)")
    print(f"{'what':34} {'hosts':>5} {'wall s':>7} {'min-max s':>13} {'client CPU s':>12} {'hosts CPU s':>11} "
          f"{'conn/host':>9} {'cmds/host':>9}  checked")
    for row in rows:
        label = f"{row.tool} [{row.bed.tier}]" + (" (in-process)" if row.tool == "probe layer" else "")
        print(f"{label:34} {row.hosts:>5} {median(row.wall):>7.2f} {min(row.wall):>6.2f}-{max(row.wall):<6.2f} "
              f"{median(row.cpu):>12.2f} {fmt(median(row.hosts_cpu)):>11} {median(row.conn):>9.1f} "
              f"{median(row.cmds):>9.1f}  {row.checked}")

    suite1, suite10, suite_big = find("suite", 1), find("suite", 10), find("suite", big)
    ratios = [
        ("suite / testinfra+ControlPath, 1 host", paired(suite1, find("testinfra", 1)), 0.5),
        ("suite / testinfra+ControlPath, 10 hosts", paired(suite10, find("testinfra", 10)), None),
        ("suite / ansible-playbook --check, 1 host", paired(suite1, find("ansible", 1)), 0.1),
        ("suite / ansible-playbook --check, 10 hosts", paired(suite10, find("ansible", 10)), None),
        (f"suite, {big} hosts / 1 host", paired(suite_big, suite1), 3.0),
        ("suite, 10 hosts / 1 host", paired(suite10, suite1), None),
        (f"suite, {big} hosts / 1 host, client CPU", paired(suite_big, suite1, "cpu"), None),
    ]
    print("\npaired ratios (median over rounds of the ratio within each round):")
    for text, value, aim in ratios:
        if value is not None:
            verdict = "" if aim is None else f"  (aim <= {aim}x: {'met' if value <= aim else 'NOT met'})"
            print(f"  {text:44} {value:6.3f}x{verdict}")
    print("\nper-host costs (paired: each round's own rows):")
    for line in per_host_lines(find, big):
        print(f"  {line}")
    startup, login1, login_big = find("pytest start-up", 1), find("ssh true", 1), find("ssh true", big)
    testinfra1 = find("testinfra", 1)
    if startup and login1 and testinfra1 and suite1:
        floor = [a + b for a, b in zip(startup.wall, login1.wall, strict=True)]
        versus = statistics.median(f / t for f, t in zip(floor, testinfra1.wall, strict=True))
        ansible1 = find("ansible", 1)
        versus_ansible = "" if ansible1 is None else \
            f" = {statistics.median(f / a for f, a in zip(floor, ansible1.wall, strict=True)):.3f}x ansible-playbook (aim 0.1x)"
        print(f"  floor, 1 host: pytest start-up {median(startup.wall):.2f} s + one ssh login {median(login1.wall):.2f} s"
              f" = {median(floor):.2f} s = {versus:.3f}x testinfra ({'above' if versus > 0.5 else 'below'} the 0.5x aim)"
              f"{versus_ansible}, {statistics.median(f / t for f, t in zip(floor, suite1.wall, strict=True)):.2f} of the suite's "
              f"1-host time")
    if login_big and suite1 and suite_big and suite_big.hosts_cpu and login_big.hosts_cpu:
        # were the fact script free on the hosts: their logins' CPU and the suite's own, on this machine's cores
        bound = (median(login_big.hosts_cpu) + median(suite_big.cpu)) / (os.cpu_count() or 1)
        print(f"  floor, {big} hosts on these {os.cpu_count()} cores, were the fact script free on the hosts: (their "
              f"logins' CPU + the suite's client CPU) / cores = {bound:.2f} s = {bound / median(suite1.wall):.2f}x the "
              f"suite's 1-host time (aim 3x)")
    if login_big and suite1 and suite_big:
        print(f"  floor, {big} hosts: {big} ssh logins alone {median(login_big.wall):.2f} s (hosts CPU "
              f"{fmt(median(login_big.hosts_cpu))} s, client CPU {median(login_big.cpu):.2f} s) = "
              f"{paired(login_big, suite1):.2f}x the suite's 1-host time; the suite's own hosts CPU at {big} hosts "
              f"{fmt(median(suite_big.hosts_cpu))} s")
    if memory:
        own, tree = memory
        print(f"  peak memory, suite at {big} hosts: {own:.0f} MiB the pytest process (max RSS), {tree:.0f} MiB "
              f"with its ssh children (sampled sum)  (aim <= 150 MiB: {'met' if own <= 150 else 'NOT met'})")
    if cluster:
        print(f"  {cluster}")

    def cell(row: Row | None, base: Row | None = None, bold: bool = False) -> str:
        if row is None:
            return ""
        text = f"{median(row.wall):.2f} s"
        ratio = paired(base, row) if base is not None else None
        if ratio is not None:
            text += f" (suite/this {'**' if bold else ''}{ratio:.2f}×{'**' if bold else ''})"
        return text

    print("\nMarkdown (paste into BENCHMARKS.md):\n")
    print("| | suite `pytest features/ -m S1` | testinfra + ssh ControlPath | ansible-playbook --check |")
    print("|---|---|---|---|")
    for tier in ("namespace", "nspawn"):
        for n in (1, 10):
            suite = find("suite", n, tier)
            if suite is None:
                continue
            where = "namespace hosts" if tier == "namespace" else "nspawn hosts"
            print(f"| {n} host{'s' if n > 1 else ''} ({where}) | {cell(suite)} | "
                  f"{cell(find('testinfra', n, tier), suite, bold=n == 1)} | {cell(find('ansible', n, tier), suite, bold=n == 1)} |")
    if suite_big is not None:
        scale = paired(suite_big, suite1)
        mem = f", peak {memory[0]:.0f} MiB ({memory[1]:.0f} MiB with its ssh children)" if memory else ""
        cpu_scale = paired(suite_big, suite1, "cpu")
        print(f"| {big} hosts (namespace hosts) | {median(suite_big.wall):.2f} s = **{scale:.2f}×** its 1-host "
              f"time; client CPU {median(suite_big.cpu):.2f} s = {cpu_scale:.2f}× (the hosts' own CPU "
              f"{median(suite_big.hosts_cpu):.1f} s on the same cores){mem} | | |")
    print(f"\nHosts: {hosts_kind}.")
    probes = [r for r in rows if r.tool == "probe layer"]
    if probes:
        print("\n| probe layer in-process | " + " | ".join(f"{r.hosts} host{'s' if r.hosts > 1 else ''}" for r in probes)
              + " |\n|---|" + "---|" * len(probes))
        print("| wall (client CPU) | " + " | ".join(f"{median(r.wall):.2f} s ({median(r.cpu):.2f} s)" for r in probes) + " |")
    print(f"\n(medians of {repeat} paired rounds; ratios are medians of the per-round ratios; "
          f"{os.cpu_count()}-core machine; {time.strftime('%Y-%m-%d')})")


# --- main -----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5); medians are printed")
    parser.add_argument("--hosts", type=int, default=100, help="the largest suite run, namespace hosts (default 100)")
    parser.add_argument("--gitea", action="store_true",
                        help="give every namespace host its Gitea SSH server (five more logins per host, on the "
                             "same cores); default: sshd-only hosts, where the two Gitea login checks are errors")
    parser.add_argument("--nspawn", action="store_true", help="also measure at 1 and 10 nspawn hosts (real systemd)")
    parser.add_argument("--no-ansible", action="store_true", help="leave out the ansible-playbook baseline")
    parser.add_argument("--no-probe-layer", action="store_true", help="leave out the in-process probe layer rows")
    parser.add_argument("--no-cluster", action="store_true", help="leave out the cluster API request count")
    parser.add_argument("--sections", action="store_true",
                        help="only the fact script's cost per control on one namespace host (hosts CPU), then exit")
    parser.add_argument("--section-runs", type=int, default=20, help="runs per control for the section costs")
    args = parser.parse_args()
    started = time.monotonic()
    cgroup = CpuCgroup.make()
    if args.sections:
        try:
            if cgroup is None:
                raise BenchError("no cgroup to read the hosts' CPU from")
            with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
                tmp = Path(tmp_name)
                with NamespaceTestbed([replace(CONFORMANT, name="ns000", git_server=args.gitea)], tmp / "ns",
                                      cgroup=cgroup.path) as testbed:
                    failing = frozenset(SYSTEMD_CONTROLS) | (frozenset() if args.gitea else GITEA_CONTROLS)
                    print_section_costs(section_costs(Bed("namespace", testbed, failing, tmp, cgroup), tmp,
                                                      args.section_runs), args.section_runs)
        finally:
            if cgroup is not None:
                cgroup.remove()
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
            rows, memory, cluster = measure_all(args, Path(tmp_name), cgroup)
    finally:
        if cgroup is not None:
            cgroup.remove()
    hosts_kind = "namespace hosts with their Gitea SSH server" if args.gitea else \
        "sshd-only namespace hosts (no Gitea SSH server: host.gitea_ssh.login/ls_remote are errors for every tool)"
    report(rows, args.repeat, memory, cluster, args.hosts, hosts_kind)
    print(f"\n(./run bench took {time.monotonic() - started:.0f} s)")
    return 0


def measure_all(args, tmp: Path, cgroup: CpuCgroup | None) -> tuple[list[Row], tuple[float, float], str | None]:
    states = [replace(CONFORMANT, name=f"ns{i:03d}", git_server=args.gitea) for i in range(max(args.hosts, 10))]
    print(f"starting {len(states)} namespace hosts ...", flush=True)
    begin = time.monotonic()
    with NamespaceTestbed(states, tmp / "ns", cgroup=cgroup.path if cgroup else None) as ns_testbed:
        print(f"  listening after {time.monotonic() - begin:.1f} s", flush=True)
        failing = frozenset(SYSTEMD_CONTROLS) | (frozenset() if args.gitea else GITEA_CONTROLS)
        beds = [Bed("namespace", ns_testbed, failing, tmp, cgroup)]
        nspawn = None
        try:
            if args.nspawn:
                print("booting 10 nspawn hosts ...", flush=True)
                begin = time.monotonic()
                nspawn = Testbed([replace(CONFORMANT, name=f"nspawn{i:02d}") for i in range(10)], tmp / "nspawn")
                nspawn.__enter__()
                print(f"  ready after {time.monotonic() - begin:.1f} s", flush=True)
                beds.append(Bed("nspawn", nspawn, frozenset() if cgroup2_memory() else frozenset(CGROUP2_CONTROLS), tmp))
            rows = build_rows(beds, args, tmp)
            print(f"{len(rows)} rows; a warm-up round (1 host), then {args.repeat} timed rounds", flush=True)
            for round_no in range(args.repeat + 1):
                begin = time.monotonic()
                order = rows[round_no % len(rows):] + rows[:round_no % len(rows)]
                for row in order:
                    if round_no > 0 or row.hosts == 1:  # warming the caches once per tool is enough
                        row.measure(timed=round_no > 0)
                print(f"  round {round_no}{' (warm-up)' if round_no == 0 else ''}: "
                      f"{time.monotonic() - begin:.0f} s", flush=True)
            big = next(r for r in rows if r.tool == "suite" and r.hosts == args.hosts and r.bed.tier == "namespace")
            memory = peak_memory(big, tmp)
            if cgroup is not None:
                print_section_costs(section_costs(beds[0], tmp, args.section_runs), args.section_runs)
        finally:
            if nspawn is not None:
                nspawn.stop()
    cluster = None if args.no_cluster else cluster_requests(tmp)
    return rows, memory, cluster


def build_rows(beds: list[Bed], args, tmp: Path) -> list[Row]:
    rows: list[Row] = []
    for bed in beds:
        sizes = sorted({1, 10, args.hosts}) if bed.tier == "namespace" else [1, 10]
        rows += [suite_row(bed, n, tmp) for n in sizes]
        rows += [testinfra_row(bed, n, tmp) for n in (1, 10)]
        if not args.no_ansible:
            rows += [ansible_row(bed, n, tmp) for n in (1, 10)]
        if not args.no_probe_layer and bed.tier == "namespace":
            rows += [probe_layer_row(bed, n, tmp) for n in sizes]
        if bed.tier == "namespace":  # the floors the suite cannot go below on this machine
            rows += [startup_row(bed, tmp), bare_pytest_row(bed, tmp, False), bare_pytest_row(bed, tmp, True),
                     *(ssh_row(bed, n, tmp) for n in sorted({1, args.hosts}))]
    return rows


if __name__ == "__main__":
    sys.exit(main())
