"""The inventory read in a subprocess started at plugin load (railiance_conformance/early_inventory.py) is a
speculation: it must give the run exactly what reading it in pytest_configure gives, errors included,
be used only for the options it was computed from, and never outlive the run.

Which process read the inventory is observed, not assumed: the vault password is a script (ansible-core
runs an executable password file) that records its parent's pid, the process that ran ansible-core."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from railiance_conformance import early_inventory
from tests.inventory.vault_fixtures import PASSWORD, vault_var
from tests.suite_runner import REPO

VOLATILE = {"duration_s", "started_at", "finished_at", "run_id", "first_passed_at"}


def inventory(root: Path) -> Path:
    """Two hosts on a closed port (every host control an error, at once), one desired value vaulted,
    one from group_vars; the vault password file is a script that records who ran it."""
    (root / "group_vars").mkdir(parents=True)
    (root / "host_vars").mkdir()
    (root / "hosts.ini").write_text("[coulomb]\nalpha ansible_host=127.0.0.1 ansible_port=1 ansible_user=op\n"
                                    "beta ansible_host=127.0.0.1 ansible_port=1 ansible_user=op\n")
    (root / "group_vars" / "coulomb.yml").write_text("swap_size_gb: 4\nnproc_hard: 1024\n")
    (root / "host_vars" / "beta.yml").write_text(vault_var("nproc_soft", "987"))
    script = root / "vault-pass"
    script.write_text(f"#!/bin/sh\necho $PPID >> {root / 'ran-by'}\necho '{PASSWORD}'\n")
    script.chmod(0o700)
    return root


def run(root: Path, report_dir: Path, *args: str, early: bool) -> tuple[subprocess.CompletedProcess, list[int]]:
    (root / "ran-by").unlink(missing_ok=True)
    env = {**os.environ, "RAILIANCE_EARLY_INVENTORY": "1" if early else "0"}
    command = [sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-m", "S1",
               "--ansible-inventory", str(root / "hosts.ini"), "--vault-password-file", str(root / "vault-pass"),
               "--report-dir", str(report_dir), "--history", "none", "--connect-timeout", "3", *args]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=300)
    ran_by = [int(line) for line in (root / "ran-by").read_text().split()] if (root / "ran-by").exists() else []
    return subprocess.CompletedProcess(command, process.returncode, out, err), [process.pid, *ran_by]


def stable(report_dir: Path) -> list[dict]:
    findings = json.loads((report_dir / "findings.json").read_text())["findings"]
    return sorted(({k: v for k, v in f.items() if k not in VOLATILE} for f in findings),
                  key=lambda f: (f["target"], f["control_id"]))


@pytest.mark.testbed  # runs pytest features/ end to end (tests/tiers.py)
def test_the_child_reads_the_inventory_and_the_run_is_the_same(tmp_path):
    root = inventory(tmp_path / "inv")
    early, (pid, *readers) = run(root, tmp_path / "early", early=True)
    assert early.returncode == 1, early.stdout[-2000:] + early.stderr[-2000:]
    assert readers and all(r != pid for r in readers), (pid, readers)  # ansible-core ran in the child
    late, (pid, *readers) = run(root, tmp_path / "late", early=False)
    assert late.returncode == 1, late.stdout[-2000:] + late.stderr[-2000:]
    assert readers and all(r == pid for r in readers), (pid, readers)  # and here in pytest's own process
    findings = stable(tmp_path / "early")
    assert {f["target"] for f in findings} == {"alpha", "beta"}
    assert findings == stable(tmp_path / "late")
    # the vaulted value (decrypted in the child: the last test) is in no report
    assert "987" not in (tmp_path / "early" / "findings.json").read_text()


@pytest.mark.testbed
@pytest.mark.parametrize("broken, message", [
    ("hosts.ini", "not a valid Ansible inventory"),
    ("group_vars/coulomb.yml", "nproc_hard (host alpha)"),
])
def test_a_bad_inventory_is_the_same_usage_error_either_way(tmp_path, broken, message):
    root = inventory(tmp_path / "inv")
    if broken == "hosts.ini":
        (root / broken).write_text("[coulomb\nalpha ansible_host=127.0.0.1\n")
    else:  # valid for Ansible, not for the policy schema: the parent's validation names the file
        (root / broken).write_text("swap_size_gb: 4\nnproc_hard: many\n")
    outputs = []
    for early in (True, False):
        result, _ = run(root, tmp_path / f"r{early}", early=early)
        assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
        assert message in result.stderr, result.stderr[-2000:]
        outputs.append(result.stderr.replace(str(tmp_path / f"r{early}"), "R"))
    assert outputs[0] == outputs[1]
    assert not (tmp_path / "rTrue" / "findings.json").exists()  # before any probe


@pytest.mark.testbed
def test_help_starts_no_child(tmp_path):
    root = inventory(tmp_path / "inv")
    result, (pid, *readers) = run(root, tmp_path / "r", "--help", early=True)
    assert result.returncode == 0 and "--ansible-inventory" in result.stdout
    assert readers == [pid]  # pytest configures the suite for --help too: read once, in its own process


def options(root: Path, **changed) -> SimpleNamespace:
    values = dict(ansible_inventory=str(root / "hosts.ini"), hosts=None, connection=None, limit=None,
                  vault_password_file=[str(root / "vault-pass")], vault_id=[])
    return SimpleNamespace(**{**values, **changed})


def in_fresh_process(check: str, root: Path) -> None:
    """Run ``check(root)`` of this module in a new interpreter: ``early_inventory`` keeps one pending
    read per process, which this test process must not share with the runs other tests make."""
    code = f"import sys; from pathlib import Path; import tests.inventory.test_early_inventory as t; t.{check}(Path(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", code, str(root)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_an_answer_is_used_only_for_the_options_it_was_computed_from(tmp_path):
    in_fresh_process("_answer_used_only_for_its_options", inventory(tmp_path / "inv"))


def _answer_used_only_for_its_options(root: Path) -> None:
    try:
        assert early_inventory.speculate(options(root))
        pending = early_inventory._pending
        assert early_inventory.take(options(root, limit="alpha")) is None  # another limit: not this answer
        with pytest.raises(ChildProcessError):  # and its child is reaped, not left behind
            os.waitpid(pending.pid, 0)

        assert early_inventory.speculate(options(root))
        taken = early_inventory.take(options(root))
        direct = early_inventory.inventory_targets(options(root))
        assert [t.name for t in taken] == ["alpha", "beta"]
        assert taken == direct and [dict(t.desired) for t in taken] == [dict(t.desired) for t in direct]
        assert taken[1].desired["nproc_soft"] == 987 and taken[1].secret_keys == {"nproc_soft"}
        assert early_inventory.take(options(root)) is None  # taken once

        assert not early_inventory.speculate(options(root, ansible_inventory=None, hosts="127.0.0.1:1"))
    finally:
        early_inventory.discard()


def test_the_child_is_a_new_interpreter_not_a_fork(tmp_path):
    in_fresh_process("_child_is_a_new_interpreter", inventory(tmp_path / "inv"))


def _child_is_a_new_interpreter(root: Path) -> None:
    """A thread running here (pytest in-process beside a server) cannot matter: nothing is forked
    without an exec; the child runs this module's main() in its own session."""
    import threading
    import time

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert early_inventory.speculate(options(root))
        pid = early_inventory._pending.pid
        deadline = time.monotonic() + 10  # the kernel shows the new argv a moment after Popen returns
        while b"early_inventory import main" not in (cmdline := Path(f"/proc/{pid}/cmdline").read_bytes()) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        argv = cmdline.split(b"\0")
        assert argv[0] == sys.executable.encode() and b"early_inventory import main" in argv[3], argv
        assert os.getsid(pid) == pid != os.getsid(0)  # its own session and process group
        assert [t.name for t in early_inventory.take(options(root))] == ["alpha", "beta"]
    finally:
        stop.set()
        thread.join()
        early_inventory.discard()


def test_the_plugin_imports_little_before_it_starts_the_child():
    """pytest_addoption runs once plugin.py is imported: what it imports is start-up the child cannot
    overlap. The steps import the rest meanwhile."""
    heavy = ("jsonschema", "ansible", "kubernetes", "railiance_conformance.checks", "railiance_conformance.suite")
    loaded = subprocess.run([sys.executable, "-c", f"import sys, railiance_conformance.plugin; "
                             f"print(*[m for m in {heavy!r} if m in sys.modules])"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert loaded.split() == []
    from railiance_conformance import plugin, policy

    assert plugin.DEFAULT_POLICY_DIR == policy.DEFAULT_POLICY_DIR


def slow_script(root: Path, password: str = PASSWORD, sleep: float = 0) -> Path:
    """A vault password script that says so on stderr, records its pid and may take its time."""
    script = root / "slow-pass"
    script.write_text(f"#!/bin/sh\necho $$ >> {root / 'script-pids'}\necho 'vault-script: fetching password' >&2\n"
                      f"sleep {sleep}\necho '{password}'\n")
    script.chmod(0o700)
    return script


def suite(root: Path, report_dir: Path, *args: str, early: bool = True, password_file: Path | None = None):
    env = {**os.environ, "RAILIANCE_EARLY_INVENTORY": "1" if early else "0"}
    command = [sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-m", "S1", "--ansible-inventory",
               str(root / "hosts.ini"), "--vault-password-file", str(password_file or root / "vault-pass"),
               "--report-dir", str(report_dir), "--history", "none", "--connect-timeout", "3", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds ``text`` (the child's names the inventory; the script's names its file)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.testbed
def test_a_run_that_stops_before_configure_leaves_no_child_behind(tmp_path):
    """A bad option ends pytest before pytest_configure: the child (and any script it started) is
    stopped at exit, not left running with pytest's stdout (a pipeline reading it would wait)."""
    import time

    root = inventory(tmp_path / "inv")
    script = slow_script(root, sleep=30)
    started = time.monotonic()
    result = suite(root, tmp_path / "r", "--no-such-option", password_file=script)  # waits for EOF on the pipes
    assert result.returncode == 4 and "--no-such-option" in result.stderr
    assert time.monotonic() - started < 15
    deadline = time.monotonic() + 5
    while processes_naming(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_naming(str(tmp_path)) == []


@pytest.mark.testbed
@pytest.mark.parametrize("password", [PASSWORD, "wrong"])
def test_what_the_scripts_print_is_printed_once_and_they_run_once(tmp_path, password):
    root = inventory(tmp_path / "inv")
    script = slow_script(root, password=password)
    results = []
    for early in (True, False):
        (root / "script-pids").unlink(missing_ok=True)
        result = suite(root, tmp_path / f"r{early}", early=early, password_file=script)
        runs = len((root / "script-pids").read_text().split())
        results.append((result.returncode, result.stderr.count("vault-script: fetching password"), runs))
    expected = (1, 1, 1) if password == PASSWORD else (4, 1, 1)
    assert results == [expected, expected]


def test_a_read_left_by_an_earlier_run_in_this_process_is_not_used(tmp_path):
    in_fresh_process("_earlier_runs_read_is_discarded", inventory(tmp_path / "inv"))


def _earlier_runs_read_is_discarded(root: Path) -> None:
    class PluginManager:  # stands for two pytest runs' plugin managers
        pass

    earlier, this = PluginManager(), PluginManager()
    try:
        assert early_inventory.speculate(options(root), owner=earlier)
        pending = early_inventory._pending
        early_inventory.claim(this)  # pytest_configure of the next run
        assert early_inventory._pending is None
        with pytest.raises(ChildProcessError):
            os.waitpid(pending.pid, 0)
    finally:
        early_inventory.discard()


@pytest.mark.testbed
def test_a_killed_run_leaves_no_child_behind(tmp_path):
    """pytest killed (SIGKILL: no atexit, no unconfigure) while the child waits on a slow vault script:
    the child sees the pipe it watches close and kills its process group, the script with it."""
    import signal
    import time

    root = inventory(tmp_path / "inv")
    script = slow_script(root, sleep=60)
    env = {**os.environ, "RAILIANCE_EARLY_INVENTORY": "1"}
    command = [sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-m", "S1", "--ansible-inventory",
               str(root / "hosts.ini"), "--vault-password-file", str(script), "--report-dir", str(tmp_path / "r"),
               "--history", "none", "--connect-timeout", "3"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (root / "script-pids").exists() and time.monotonic() < deadline:  # the script runs
            time.sleep(0.1)
        assert (root / "script-pids").exists()
        assert processes_naming(str(root))  # the child and its script
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 10
    while processes_naming(str(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_naming(str(root)) == []
