"""``./run demo`` in an 80x50 tmux pane, as an operator sees it right after a converge: the last screen holds
the verdict, the counts, the new drift named and where the reports are; pytest's per-item failure blocks
and its short summary are gone (the suite's grouped summary says it); with and without colour.

A first demo run with ``-m cluster`` is the previous run, so the full run's host drift is new."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import uuid

import pytest
from rich.cells import cell_len

from tests.suite_runner import REPO

COLUMNS, ROWS = 80, 50


def tmux(*args: str, timeout: float = 30) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=timeout).stdout


def demo_on_screen(report_dir, *pytest_args: str) -> tuple[list[str], list[str]]:
    """The pane's last screen after ``./run demo`` (plain text), and its lines joined where the terminal wrapped."""
    session, signal = f"demo-{uuid.uuid4().hex[:8]}", f"done-{uuid.uuid4().hex[:8]}"
    command = (f"cd {shlex.quote(str(REPO))} && ./run demo --report-dir {shlex.quote(str(report_dir))} "
               f"{' '.join(map(shlex.quote, pytest_args))}; tmux wait-for -S {signal}; sleep 300")
    tmux("new-session", "-d", "-s", session, "-x", str(COLUMNS), "-y", str(ROWS), command)
    try:
        tmux("wait-for", signal, timeout=600)
        screen = tmux("capture-pane", "-p", "-t", session).rstrip("\n").split("\n")
        joined = tmux("capture-pane", "-p", "-J", "-t", session).rstrip("\n").split("\n")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=30)
    return screen, joined


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("demo-reports")
    done = subprocess.run(["./run", "demo", "-m", "cluster", "--report-dir", str(report_dir)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return report_dir


@pytest.mark.parametrize("colour", ["yes", "no"])
def test_the_last_screen_of_the_demo_holds_the_verdict_counts_new_drift_and_reports(tmp_path, previous_run, colour):
    report_dir = tmp_path / "reports"
    subprocess.run(["cp", "-a", f"{previous_run}/.", str(report_dir)], check=True)
    screen, joined = demo_on_screen(report_dir, f"--color={colour}")
    document = json.loads((report_dir / "findings.json").read_text())
    counts, run = document["summary"], document["run"]
    text = "\n".join(screen)
    assert len(screen) <= ROWS
    assert all(cell_len(line) <= COLUMNS for line in joined), "a line wider than the terminal wrapped"
    assert "\x1b" not in text                                  # capture-pane -p: text only, escapes would be stray
    # the verdict and the counts
    verdict = f"VERDICT: DRIFT — {counts['drift']} drift, {counts['error']} could not verify"
    assert verdict in text, text
    assert (f"{len(document['findings'])} findings on {len(run['targets'])} targets: {counts['pass']} pass, "
            f"{counts['drift']} drift, {counts['error']} error, {counts['waived']} waived, {counts['pending']} "
            f"pending") in text
    # the new drift, named: every new drift's control, on the target it drifted on
    new = run["diff"]["new_drift"]
    assert new and f"new drift ({len(new)}) on drifted:" in text
    shown = re.search(r"new drift \(\d+\) (.*?)\nsince the previous run", text, re.S)[1].replace("\n", " ")
    named = [key.split("@")[0] for key in new if key.split("@")[0] in shown]
    assert len(named) >= min(len(new), 4), shown
    assert f"since the previous run: {len(new)} new drift" in text
    # where the reports are: the last lines
    assert f"reports: {report_dir}/" in text and "summary.md" in text and "report.html" in text
    assert screen.index(next(line for line in screen if line.startswith("VERDICT:"))) > ROWS - 15
    # pytest's per-item failure blocks and short summary are not what is on screen
    assert "short test summary info" not in text and "FAILED " not in text and "_ test_" not in text
    assert re.search(r"=+ \d+ failed, \d+ passed", screen[-1]), screen[-1]


def test_with_v_pytest_keeps_its_own_failure_detail(tmp_path, previous_run):
    report_dir = tmp_path / "reports"
    done = subprocess.run(["./run", "demo", "--report-dir", str(report_dir), "-m", "cluster", "--tb=long"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert "FAILURES" in done.stdout and "short test summary info" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("=")
    assert "VERDICT: DRIFT" in done.stdout[done.stdout.index("short test summary info"):]
