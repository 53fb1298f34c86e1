"""A run killed with SIGKILL (also while writing) never corrupts or truncates earlier reports or history."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import jsonschema

from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from tests.suite_runner import REPO, run_suite

SCHEMA = json.loads((REPO / "railiance_conformance" / "reporting" / "schemas" / "findings.schema.json").read_text())


def intact(reports: Path, runs_before: int) -> int:
    """Every report parses completely and the history is consistent; returns the run count."""
    jsonschema.validate(json.loads((reports / "findings.json").read_text()), SCHEMA)
    assert (reports / "junit.xml").read_text().rstrip().endswith("</testsuites>")
    assert (reports / "report.html").read_text().rstrip().endswith("</html>")
    with sqlite3.connect(reports / "history.sqlite") as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        runs = db.execute("select count(*) from runs").fetchone()[0]
        orphans = db.execute("select count(*) from findings where seq not in (select seq from runs)").fetchone()[0]
    assert runs >= runs_before and orphans == 0
    return runs


def test_sigkill_at_any_moment_leaves_reports_and_history_intact(tmp_path):
    reports = tmp_path / "reports"
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP])) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kc")
        args = ["-m", "cluster", "--kubeconfig", str(kubeconfig)]
        started = time.monotonic()
        assert run_suite(*args, report_dir=reports).returncode == 0
        duration = time.monotonic() - started
        runs = intact(reports, 1)
        # kill at moments spread over a whole run, the last ones inside the report-writing tail
        for fraction in (0.3, 0.6, 0.8, 0.9, 0.94, 0.97, 0.99, 1.0):
            proc = subprocess.Popen([sys.executable, "-m", "pytest", "features/", "-p", "no:randomly",
                                     "--report-dir", str(reports), *args], cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(duration * fraction)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            runs = intact(reports, runs)


def test_a_writer_killed_mid_file_leaves_the_old_file(tmp_path):
    report = tmp_path / "findings.json"
    report.write_text('{"old": true}\n')
    code = ("import sys; from pathlib import Path; from railiance_conformance.reporting import atomic_write; "
            "atomic_write(Path(sys.argv[1]), 'x' * 400_000_000)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(report)], cwd=REPO)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".findings.json.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert report.read_text() == '{"old": true}\n'
