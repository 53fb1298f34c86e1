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

from tests.suite_runner import REPO

pytestmark = pytest.mark.testbed  # runs the suite end to end against the API stand-in


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


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
        tree = [proc.pid, *_descendants(proc.pid)]
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
    # nothing left over writes a report or asks the API afterwards
    written, requests = report.stat().st_mtime_ns, len(api.requests())
    time.sleep(5)
    assert report.stat().st_mtime_ns == written and len(api.requests()) == requests
