"""Signals end a run cleanly and quickly: SIGTERM to the nightly's pid, or to its whole process group,
stops the run within seconds with a partial report (every control not finished is an error
"interrupted by SIGTERM"), the documented exit status (2: could not verify), no process of the run
left and no report written afterwards. The API stand-in answers slowly so the run is mid-way."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.proc_tree import descendants
from tests.suite_runner import REPO

pytestmark = pytest.mark.testbed  # runs the suite end to end against the API stand-in


def _alive(pids: list[int]) -> list[str]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                alive.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:200])
        except OSError:
            pass
    return alive


@pytest.mark.parametrize("to_group", [False, True], ids=["pid", "group"])
def test_sigterm_to_the_nightly_ends_the_run_with_a_partial_report(standin, tmp_path, to_group):
    api, kubeconfig = standin(latency_s=1.0)
    reports = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "railiance_conformance", "nightly", "--report-dir", str(reports),
                             "--", "-p", "no:randomly", "-m", "cluster", "--kubeconfig", str(kubeconfig)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(api.requests()) < 3 and time.monotonic() < deadline:  # the run is reading the cluster
            time.sleep(0.2)
        assert len(api.requests()) >= 3, "the run never reached the API"
        tree = [proc.pid, *descendants(proc.pid)]
        assert len(tree) >= 2  # nightly and its pytest
        sent = time.monotonic()
        if to_group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert took < 15, f"nightly took {took:.1f} s to stop"
    assert proc.returncode == 2, (proc.returncode, err[-2000:])  # could not verify: a partial run
    assert "interrupted by SIGTERM" in err, err[-2000:]
    assert not _alive(tree), _alive(tree)  # nightly, pytest and anything they started are gone
    report = reports / "findings.json"
    doc = json.loads(report.read_text())
    assert doc["run"]["partial"] is True
    assert "interrupted by SIGTERM" in doc["run"]["deadline"]
    interrupted = [f for f in doc["findings"] if "interrupted by SIGTERM before this control finished" in f["reason"]]
    assert interrupted and all(f["status"] == "error" for f in interrupted)
    assert {f["control_id"] for f in doc["findings"]} >= {f["control_id"] for f in interrupted}
    # nothing left over writes a report or asks the API afterwards; the stand-in records a request when it
    # has answered it, so one that arrived before the signal is counted once its latency (1 s) has passed
    time.sleep(1.5)
    written, requests = report.stat().st_mtime_ns, len(api.requests())
    time.sleep(5)
    assert report.stat().st_mtime_ns == written and len(api.requests()) == requests


def _ssh_clients(root: int) -> list[str]:
    return [c for c in _alive(descendants(root)) if c.split(" ", 1)[0].rsplit("/", 1)[-1] == "ssh"]


@pytest.mark.parametrize("signum, to_group", [(signal.SIGTERM, True), (signal.SIGINT, False), (signal.SIGHUP, False)],
                         ids=["SIGTERM-group", "SIGINT-pid", "SIGHUP-pid"])
def test_a_signal_to_pytest_mid_fact_gathering_ends_the_ssh_sessions_at_once(tmp_path, signum, to_group):
    from tests.faults.fake_hosts import LoopbackSshd

    key = tmp_path / "client_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    hung = LoopbackSshd(tmp_path / "hung", key, "sleep 3600")  # accepts, logs in, never answers
    try:
        known = tmp_path / "known_hosts"
        known.write_text(f"{hung.known_host()}\n")
        config = tmp_path / "ssh_config"
        config.write_text(f"Host hung\n  HostName 127.0.0.1\n  Port {hung.port}\n  IdentityFile {key}\n"
                          f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n")
        reports = tmp_path / "r"
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "features/", "-q", "-p", "no:randomly", "-m", "S1",
                                 "--hosts", "ssh://root@hung", "--ssh-config", str(config), "--report-dir",
                                 str(reports), "--command-timeout", "120"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _ssh_clients(proc.pid):
            time.sleep(0.2)
        time.sleep(2)  # logged in, waiting for the fact script's answer
        tree = [proc.pid, *descendants(proc.pid)]
        assert _ssh_clients(proc.pid), _alive(tree)
        sent = time.monotonic()
        os.killpg(proc.pid, signum) if to_group else proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        hung.stop()
    name = signal.Signals(signum).name
    assert took < 10, f"pytest took {took:.1f} s to stop"
    assert proc.returncode == 2, (proc.returncode, out[-2000:], err[-2000:])
    assert not _alive(tree), _alive(tree)  # the ssh client (its own process group) is gone too
    doc = json.loads((reports / "findings.json").read_text())
    assert doc["run"]["partial"] is True
    findings = [f for f in doc["findings"] if f["status"] != "pending"]
    assert findings and all(f["status"] == "error" for f in findings)
    assert all(f"interrupted by {name} before this control finished" in f["reason"] for f in findings), \
        {f["reason"] for f in findings}
    assert f"interrupted by {name}: partial run" in out


def test_sigterm_to_the_gate_stops_its_suite_and_records_nothing(standin, tmp_path):
    from railiance_testbed import SEED_WORKPLAN

    api, kubeconfig = standin(latency_s=1.0)
    proc = subprocess.Popen([sys.executable, "-m", "railiance_conformance", "gate", "RAIL-HO-WP-0004-T09",
                             "--workplan", str(SEED_WORKPLAN), "--kubeconfig", str(kubeconfig), "--report-dir",
                             str(tmp_path / "gate"), "--history", str(tmp_path / "history.sqlite")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(api.requests()) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        tree = [proc.pid, *descendants(proc.pid)]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 15 and proc.returncode == 1, (took, proc.returncode, err[-2000:])
    assert "gate: interrupted by SIGTERM: NO-GO for RAIL-HO-WP-0004-T09, nothing recorded" in err
    assert not _alive(tree), _alive(tree)
    assert not (tmp_path / "history.sqlite").exists() and not (tmp_path / "gate").exists()
    time.sleep(1.5)  # the stand-in records a request when it has answered it (latency 1 s): let one in flight land
    requests = len(api.requests())
    time.sleep(3)
    assert len(api.requests()) == requests  # nothing left over still reads the cluster


def _catches_sigterm(pid: int) -> bool:
    """Whether ``pid`` has a handler for SIGTERM (proc(5): SigCgt, bit 15 is signal 15)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


@pytest.mark.parametrize("command, code", [("nightly", 5), ("gate", 1)])
def test_sigterm_while_the_command_is_still_starting_is_answered_not_a_bare_143(tmp_path, command, code):
    """A CI job cancelled in the first half second (the command's imports): an exit status of the
    documented table and a message, never death by the signal (143) with nothing said."""
    args = ["nightly", "--report-dir", str(tmp_path / "r"), "--", "-m", "S1"] if command == "nightly" else \
        ["gate", "RAIL-HO-WP-0004-T09", "--report-dir", str(tmp_path / "r")]
    proc = subprocess.Popen([sys.executable, "-m", "railiance_conformance", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _catches_sigterm(proc.pid) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.001)
        assert proc.poll() is None, "the command ended before it caught SIGTERM"
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == code, (proc.returncode, err[-2000:])
    assert "interrupted by SIGTERM" in err, err[-2000:]
    assert not (tmp_path / "r" / "findings.json").exists()
