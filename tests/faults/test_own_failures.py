"""Kind 1: the run's own failures change the verdict. A history that is not a database or is locked
past the busy timeout, a report directory that is full (ENOSPC) or read-only (EROFS): this run's
reports are still written somewhere and name the failure, the exit status says so (suite 6,
nightly 5), the history never has a run the report directory does not show, and nightly never
judges a findings.json left from an earlier run."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from railiance_conformance.reporting.output import fallback_dir
from tests.faults.conftest import document, nightly, suite

DRIFT = "gitea-unavailable"  # one drifted control: a green verdict here is always wrong


def runs_in(history: Path) -> list[str]:
    with sqlite3.connect(history) as db:
        return [r[0] for r in db.execute("select run_id from runs order by seq")]


@contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def first_run(standin, report_dir: Path) -> tuple[str, list[str]]:
    """A conformant run recorded before the fault: its findings.json is what a stale read would see."""
    _, kubeconfig = standin()
    done, _ = nightly(report_dir, "-m", "cluster", "--kubeconfig", str(kubeconfig))
    assert done.returncode == 0, done.stderr[-2000:]
    before = document(report_dir / "findings.json")
    return before["run"]["id"], sorted({f["target"] for f in before["findings"]})


def drifted_targets(doc: dict) -> tuple[set[str], list[dict]]:
    return {f["target"] for f in doc["findings"]}, [f for f in doc["findings"] if f["status"] == "drift"]


def test_a_history_overwritten_with_random_bytes_is_named_and_the_reports_are_this_runs(standin, tmp_path):
    reports = tmp_path / "reports"
    old_id, targets = first_run(standin, reports)
    garbage = os.urandom(8192)
    (reports / "history.sqlite").write_bytes(garbage)
    for suffix in ("-wal", "-shm"):
        Path(f"{reports / 'history.sqlite'}{suffix}").unlink(missing_ok=True)
    _, kubeconfig = standin(DRIFT)
    done, took = nightly(reports, "-m", "cluster", "--kubeconfig", str(kubeconfig))
    assert done.returncode == 5, done.stderr[-2000:]
    assert "history.sqlite: not a SQLite database" in done.stderr
    doc = document(reports / "findings.json")
    assert doc["run"]["id"] != old_id and any("not a SQLite database" in f for f in doc["run"]["output_failures"])
    found_targets, drift = drifted_targets(doc)
    assert sorted(found_targets) == targets and [f["control_id"] for f in drift] == ["cluster.gitea.available"]
    assert (reports / "history.sqlite").read_bytes() == garbage  # never repaired, never replaced
    assert "drift" in done.stderr and took < 120


def test_a_history_locked_past_the_busy_timeout_is_named_and_not_recorded(standin, tmp_path):
    reports = tmp_path / "reports"
    old_id, targets = first_run(standin, reports)
    history = reports / "history.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(history)!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        _, kubeconfig = standin(DRIFT)
        done, took = suite(reports, "-m", "cluster", "--kubeconfig", str(kubeconfig), "--history-busy-timeout", "1")
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 6, done.stdout[-2000:] + done.stderr[-2000:]
    assert "locked by another process for more than 1 s" in done.stderr
    assert "NOT WRITTEN" in done.stdout
    doc = document(reports / "findings.json")
    found_targets, drift = drifted_targets(doc)
    assert doc["run"]["id"] != old_id and sorted(found_targets) == targets and drift
    assert runs_in(history) == [old_id]  # the report says it is not recorded, and it is not
    assert took < 60


def test_a_full_report_directory_keeps_the_previous_run_whole_and_nightly_exits_5(standin, tmp_path):
    reports = tmp_path / "reports"
    with tmpfs(reports, "2m"):
        old_id, targets = first_run(standin, reports)
        before = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file() and not p.name.startswith(".")}
        filler = reports / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)  # until ENOSPC
        _, kubeconfig = standin(DRIFT)
        done, took = nightly(reports, "-m", "cluster", "--kubeconfig", str(kubeconfig))
        assert done.returncode == 5, done.stderr[-3000:]
        assert "No space left on device (ENOSPC)" in done.stderr and "findings.json" in done.stderr
        # the report directory and the history still agree: both show the previous run only
        assert document(reports / "findings.json")["run"]["id"] == old_id
        filler.unlink()  # SQLite itself needs room to read a WAL database
        assert runs_in(reports / "history.sqlite") == [old_id]
        assert (reports / "summary.md").read_bytes() == before["summary.md"]
        assert not [p for p in reports.iterdir() if p.name.endswith(".tmp")]
        # this run's reports are where the suite said, complete, with the drift and every target
        fallback = [line for line in done.stderr.splitlines() if "its reports are in" in line]
        assert fallback, done.stderr
        new_dir = Path(fallback[0].rsplit("its reports are in ", 1)[1].strip())
        doc = document(new_dir / "findings.json")
        found_targets, drift = drifted_targets(doc)
        assert new_dir == fallback_dir(doc["run"]["id"]) and sorted(found_targets) == targets and drift
        assert {p.name for p in new_dir.iterdir()} >= {"findings.json", "junit.xml", "summary.md", "report.html"}
        assert took < 120


def test_a_read_only_report_directory_is_named_and_never_judged_from_the_old_file(standin, tmp_path):
    reports = tmp_path / "reports"
    with tmpfs(reports, "8m"):
        old_id, targets = first_run(standin, reports)
        subprocess.run(["mount", "-o", "remount,ro", str(reports)], check=True)
        _, kubeconfig = standin(DRIFT)
        done, took = nightly(reports, "-m", "cluster", "--kubeconfig", str(kubeconfig))
        assert done.returncode == 5, done.stderr[-3000:]
        assert "Read-only file system (EROFS)" in done.stderr or "read-only" in done.stderr
        assert document(reports / "findings.json")["run"]["id"] == old_id  # stale and conformant: not judged
        assert "the findings of run" in done.stderr and "say: drift" in done.stderr
        [line] = [x for x in done.stderr.splitlines() if "its reports are in" in x]
        doc = document(Path(line.rsplit("its reports are in ", 1)[1].strip()) / "findings.json")
        assert sorted({f["target"] for f in doc["findings"]}) == targets and doc["run"]["output_failures"]
        assert took < 120


def test_nightly_without_a_report_of_its_own_run_never_reads_the_stale_one(standin, tmp_path):
    reports = tmp_path / "reports"
    old_id, _ = first_run(standin, reports)
    _, kubeconfig = standin(DRIFT)
    # json is not among the formats: no findings.json of this run anywhere, the old one is conformant
    done, _ = nightly(reports, "-m", "cluster", "--kubeconfig", str(kubeconfig), "--report-formats", "junit")
    assert done.returncode == 5
    assert f"is run {old_id!r}, left from an earlier run" in done.stderr
