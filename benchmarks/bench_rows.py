"""The benchmark's rows: each tool's command at N hosts as a ``Row`` (the suite, testinfra, ansible-playbook,
the probe layer in-process, the start-up floors, ``ssh true``), the peak memory at many hosts and the cluster
controls' API requests (the fact script's cost per control: bench_sections.py)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from bench_common import (
    ANSIBLE_PLAYBOOK,
    BENCH,
    ENV,
    HOST_CONTROLS,
    HOST_PENDING,
    MIB,
    NO_TEST_EXTRA,
    PYTHON,
    REPO,
    Bed,
    BenchError,
    Row,
    run_process,
    stop_masters,
)


def suite_row(bed: Bed, n: int, tmp: Path, baseline: Path | None = None) -> Row:
    """The suite as a user starts it at ``n`` hosts; with ``baseline`` (a checkout of another commit with its
    own ``.venv``, ``./run deps`` run in it) the same command run from that checkout: the "suite (baseline)"
    row, measured in the same rounds as this checkout's, so before and after are paired."""
    tool = "suite" if baseline is None else "suite (baseline)"
    report_dir = tmp / f"reports-{bed.tier}-{n}{'' if baseline is None else '-baseline'}"  # kept across rounds (history grows)
    python = PYTHON if baseline is None else str(baseline / ".venv" / "bin" / "python")
    argv = [python, "-m", "pytest", "features/", "-m", "S1", "--ansible-inventory", str(bed.inventory(n)),
            "--ssh-config", str(bed.testbed.ssh_config), "--report-dir", str(report_dir), *NO_TEST_EXTRA]

    def check(result) -> str:
        rc, output = result
        if rc not in (0, 1):
            raise BenchError(f"{tool} x{n}: exit {rc}\n{output[-3000:]}")
        document = json.loads((report_dir / "findings.json").read_text())
        names = [h.state.name for h in bed.testbed.hosts[:n]]
        statuses: dict[str, dict[str, str]] = {}
        for finding in document["findings"]:
            statuses.setdefault(finding["target"], {})[finding["control_id"]] = finding["status"]
        want = {**{c: "pass" for c in HOST_CONTROLS}, **{c: "error" for c in bed.failing},
                **{c: "pending" for c in HOST_PENDING}}
        for name in names:
            if statuses.get(name) != want:
                raise BenchError(f"{tool} x{n}: {name}: {statuses.get(name)} != {want}")
        return f"{len(HOST_CONTROLS)} controls x {n} hosts, {len(bed.failing)} errors per host"
    return Row(tool, bed, n, lambda: run_process(argv, tmp / "suite.log", cwd=baseline or REPO), check)


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
