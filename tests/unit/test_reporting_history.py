"""history: runs in SQLite, diffs between runs, drift streaks; atomic and safe for concurrent writers."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.finding import Status
from railiance_conformance.history import History, RunDiff, StatusChange
from railiance_conformance.reporting.markdown_report import render as render_markdown
from tests.unit.reporting_samples import FINDINGS, sample_run

ROOT = Path(__file__).resolve().parents[2]
KEYS = [f.key for f in FINDINGS]


def with_status(status_by_key: dict[str, Status]):
    return tuple(replace(f, status=status_by_key.get(f.key, f.status)) for f in FINDINGS)


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "history.sqlite")


def python(script: str, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def test_wal_mode_and_schema(history: History) -> None:
    with sqlite3.connect(history.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    History(history.path)  # opening again is harmless


def test_a_version_1_history_gets_the_status_index_and_reads_the_same(tmp_path: Path) -> None:
    """A file written before findings_by_key_status (schema version 1) gets it when first opened; what it
    answers is the same, and the trend and each key's status are then read from that index alone."""
    from railiance_conformance.history import SCHEMA

    path = tmp_path / "history.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript(SCHEMA.replace("CREATE INDEX IF NOT EXISTS findings_by_key_status ON findings "
                                         "(key, seq, status);", "") + "PRAGMA user_version = 1;")
    old = History.__new__(History)  # as the earlier suite opened it: no migration
    old.path, old.busy_timeout_s = path, 1.0
    old.record(sample_run("run-1"))
    old.record(sample_run("run-2", findings=with_status({KEYS[0]: Status.PASS})))
    before = (old.trend(), old.diff_latest(), {k: old.finding_history(k) for k in KEYS})
    history = History(path)
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        plan = con.execute("EXPLAIN QUERY PLAN SELECT seq, key, status FROM findings WHERE seq >= 1 ORDER BY key")
        assert "COVERING INDEX findings_by_key_status" in str(plan.fetchall())
    assert (history.trend(), history.diff_latest(), {k: history.finding_history(k) for k in KEYS}) == before
    assert history.finding_histories(KEYS) == {k: v for k, v in before[2].items() if v is not None}


def test_record_and_runs(history: History) -> None:
    history.record(sample_run("run-a", partial=True))
    history.record(sample_run("run-b", findings=FINDINGS[:2]))
    a, b = history.runs()
    assert (a.run_id, a.partial, a.started_at, a.finished_at) == ("run-a", True, "2026-11-27T03:27:00Z",
                                                                  "2026-11-27T03:27:05Z")
    assert a.targets == ("ampere", "coulombcore", "railiance-prod", "volta")
    assert a.counts == {"pass": 2, "drift": 3, "error": 2, "waived": 1, "pending": 1}
    assert (b.run_id, b.partial, b.counts["drift"]) == ("run-b", False, 1)
    assert history.statuses("run-a")["host.swap.file@ampere"] == "drift"
    assert len(history.statuses("run-a")) == len(FINDINGS)


def test_recording_a_run_twice_is_refused_and_changes_nothing(history: History) -> None:
    history.record(sample_run("run-a"))
    with pytest.raises(ValueError, match="already recorded"):
        history.record(sample_run("run-a", findings=FINDINGS[:1]))
    assert len(history.statuses("run-a")) == len(FINDINGS) and len(history.runs()) == 1


def test_failure_inside_record_leaves_nothing(history: History) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("cannot serialise")

    history.record(sample_run("run-a"))
    bad = (*FINDINGS, replace(FINDINGS[0], target="zzz", evidence=(("x", Broken()),)))
    with pytest.raises(RuntimeError):
        history.record(sample_run("run-b", findings=bad))
    assert [r.run_id for r in history.runs()] == ["run-a"]
    with pytest.raises(KeyError):
        history.statuses("run-b")


def test_diff(history: History) -> None:
    history.record(sample_run("run-a", findings=with_status({
        "host.swap.file@ampere": Status.DRIFT, "host.swap.file@coulombcore": Status.DRIFT,
        "host.swappiness.live@ampere": Status.PASS, "host.swappiness.live@volta": Status.DRIFT})[:-1]))
    history.record(sample_run("run-b"))  # the sample: swap.file@coulombcore pass, swappiness.live@ampere drift, ...
    diff = history.diff("run-a", "run-b")
    assert diff.new_drift == ("host.swappiness.live@ampere",)
    assert diff.fixed == ("host.swap.file@coulombcore",)
    assert diff.persisting == ("host.limits.nofile@ampere", "host.swap.file@ampere")
    assert diff.status_changes == (
        StatusChange("host.swap.file@coulombcore", "drift", "pass"),
        StatusChange("host.swappiness.live@ampere", "pass", "drift"),
        StatusChange("host.swappiness.live@volta", "drift", "error"),
    )  # cluster.namespaces.labels was not in run-a: no status change, and it is not drift now


def test_new_key_in_drift_is_new_drift(history: History) -> None:
    history.record(sample_run("run-a", findings=FINDINGS[:1]))
    history.record(sample_run("run-b"))
    assert set(history.diff("run-a", "run-b").new_drift) == {f.key for f in FINDINGS if f.status is Status.DRIFT}


def test_diff_of_unknown_run(history: History) -> None:
    history.record(sample_run("run-a"))
    with pytest.raises(KeyError):
        history.diff("run-a", "nope")


def test_diff_latest(history: History) -> None:
    assert history.diff_latest() is None
    history.record(sample_run("run-1"))
    assert history.diff_latest() is None
    history.record(sample_run("run-2", findings=with_status({"host.swap.file@ampere": Status.PASS})))
    history.record(sample_run("run-3"))
    latest = history.diff_latest()
    assert (latest.from_run, latest.to_run, latest.new_drift) == ("run-2", "run-3", ("host.swap.file@ampere",))


def test_to_dict_feeds_the_markdown_summary(history: History) -> None:
    history.record(sample_run("run-1", findings=with_status({"host.swap.file@ampere": Status.PASS})))
    history.record(sample_run("run-2"))
    data = history.diff_latest().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["status_changes"] == [{"key": "host.swap.file@ampere", "from": "pass", "to": "drift"}]
    text = render_markdown(sample_run("run-2", diff=history.diff_latest()))
    assert "- **New drift** (1): `host.swap.file@ampere`" in text and "Compared with run `run-1`." in text
    assert RunDiff("a", "b", (), (), (), ()).to_dict()["new_drift"] == []


def test_finding_history(history: History) -> None:
    key = "host.swap.file@ampere"
    history.record(sample_run("run-1", findings=FINDINGS[:1]))                    # key absent
    history.record(sample_run("run-2", started_at="2026-11-28T00:00:00Z"))         # drift
    history.record(sample_run("run-3", findings=with_status({key: Status.PASS})))  # pass
    history.record(sample_run("run-4"))                                            # drift
    history.record(sample_run("run-5"))                                            # drift
    item = history.finding_history(key)
    assert (item.first_seen, item.first_seen_at, item.last_seen, item.last_status) == (
        "run-2", "2026-11-28T00:00:00Z", "run-5", "drift")
    assert (item.consecutive_drift, item.runs_seen) == (2, 4)
    assert history.finding_history("host.swap.file@coulombcore").consecutive_drift == 0
    assert history.finding_history("nothing@nowhere") is None
    history.record(sample_run("run-6", findings=FINDINGS[:1]))                    # key absent again
    item = history.finding_history(key)
    assert (item.last_seen, item.consecutive_drift) == ("run-5", 0)


def test_duplicate_key_in_one_run_keeps_the_worse_status(history: History) -> None:
    history.record(sample_run("run-a", findings=(FINDINGS[0], replace(FINDINGS[0], status=Status.ERROR))))
    assert history.statuses("run-a") == {FINDINGS[0].key: "error"}


KILLED_WRITER = """
import sys, time
from dataclasses import replace
from railiance_conformance.history import History
from tests.unit.reporting_samples import FINDINGS, sample_run

class Stall:
    def __str__(self):  # serialised last, inside the open transaction
        print("in-transaction", flush=True)
        time.sleep(300)
        return "never"

blob = (("blob", "x" * 2000),)
big = tuple(replace(FINDINGS[1], target=f"h{i:06d}", evidence=blob) for i in range(int(sys.argv[2])))
stall = replace(FINDINGS[1], target="zzz-last", evidence=(("stall", Stall()),))
History(sys.argv[1]).record(sample_run("big", findings=big + (stall,)))
"""


def test_sigkill_during_a_large_write_leaves_the_previous_content(history: History) -> None:
    history.record(sample_run("run-a"))
    before = history.statuses("run-a")
    writer = python(KILLED_WRITER, str(history.path), "20000")
    try:
        assert writer.stdout.readline().strip() == "in-transaction", writer.stderr.read()
        wal = history.path.with_name(history.path.name + "-wal")
        assert wal.stat().st_size > 10 * 2**20  # uncommitted pages did reach the file
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    after = History(history.path)
    assert [r.run_id for r in after.runs()] == ["run-a"]
    assert after.statuses("run-a") == before
    with sqlite3.connect(history.path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM findings").fetchone()[0] == len(FINDINGS)
    after.record(sample_run("run-b"))  # and the file takes the next run
    assert after.diff_latest().persisting


CONCURRENT_WRITER = """
import sys, time
from dataclasses import replace
from pathlib import Path
from railiance_conformance.history import History
from tests.unit.reporting_samples import FINDINGS, sample_run

path, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
history = History(path)
for n in range(8):
    findings = tuple(replace(f, target=f"{f.target}-{i}") for i in range(60) for f in FINDINGS)
    history.record(sample_run(f"{name}-{n}", findings=findings))
print("done", flush=True)
"""


def test_two_processes_recording_at_once_both_succeed(tmp_path: Path) -> None:
    path, go = tmp_path / "fresh" / "history.sqlite", tmp_path / "go"
    writers = [python(CONCURRENT_WRITER, str(path), name, str(go)) for name in ("left", "right")]
    time.sleep(0.3)
    go.touch()
    outcomes = [(w.communicate(timeout=120), w.returncode) for w in writers]
    assert all(code == 0 and out.strip() == "done" for (out, _), code in outcomes), outcomes
    history = History(path)
    ids = [r.run_id for r in history.runs()]
    assert sorted(ids) == sorted(f"{side}-{n}" for side in ("left", "right") for n in range(8))
    assert all(len(history.statuses(run_id)) == 60 * len(FINDINGS) for run_id in ids)


STATUSES = [Status.PASS, Status.DRIFT, Status.ERROR, Status.PENDING]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(STATUSES), max_size=4),
                     min_size=1, max_size=6),
       chunk=st.sampled_from([1, 2, 500]))
def test_the_histories_of_many_keys_are_each_key_s_own_history(tmp_path_factory, monkeypatch, runs, chunk) -> None:
    """``finding_histories`` (the reports' one read of every key) equals ``finding_history`` asked key by key,
    on generated histories: keys missing from runs, drift streaks broken by another status or by absence,
    keys never seen; in chunks of 1, 2 or 500 keys per query."""
    import railiance_conformance.history as history_module

    monkeypatch.setattr(history_module, "_KEYS_PER_QUERY", chunk)
    history = History(tmp_path_factory.mktemp("h") / "history.sqlite")
    for index, statuses in enumerate(runs):
        findings = tuple(replace(FINDINGS[0], target=target, status=status) for target, status in statuses.items())
        history.record(sample_run(f"run-{index}", findings=findings, started_at=f"2026-11-{index + 1:02d}T00:00:00Z"))
    keys = [replace(FINDINGS[0], target=t).key for t in ("a", "b", "c", "d", "never")]
    one_by_one = {key: found for key in keys if (found := history.finding_history(key)) is not None}
    assert history.finding_histories(keys) == one_by_one


def _trend_row_by_row(path: Path, limit: int) -> dict:
    """The trend's statuses as they were read before: every (seq, key, status) row of the last runs, by key."""
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT seq FROM runs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()[::-1]
        column = {seq: index for index, (seq,) in enumerate(rows)}
        statuses: dict = {}
        for seq, key, status in con.execute("SELECT seq, key, status FROM findings WHERE seq >= ? ORDER BY key",
                                            (rows[0][0],)):
            statuses.setdefault(key, [None] * len(rows))[column[seq]] = status
    return {key: tuple(found) for key, found in statuses.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "é", "a\x1fb"]),
                                     st.sampled_from(["pass", "drift", "error", "", "odd\x1fstatus", "x,y"]), max_size=5),
                     min_size=1, max_size=7),
       limit=st.integers(1, 8))
def test_the_trend_reads_what_each_row_says(tmp_path_factory, runs, limit) -> None:
    """The trend's statuses (one aggregate row per key) equal the row-by-row read, keys in the same order, on
    generated histories: keys missing from some runs, statuses and keys holding the aggregate's separator."""
    path = tmp_path_factory.mktemp("h") / "history.sqlite"
    history = History(path)
    for index in range(len(runs)):
        history.record(sample_run(f"run-{index}", findings=(FINDINGS[0],), started_at=f"2026-11-{index + 1:02d}T00:00:00Z"))
    with sqlite3.connect(path) as con:  # each run's rows as generated (any status text, as a damaged file may hold)
        seqs = [seq for (seq,) in con.execute("SELECT seq FROM runs ORDER BY seq")]
        con.execute("DELETE FROM findings")
        con.executemany("INSERT INTO findings VALUES (?, ?, 'c', ?, 'T', 'S1', 'high', ?, NULL, NULL, '', '{}')",
                        [(seq, f"c@{target}", target, status) for seq, statuses in zip(seqs, runs, strict=True)
                         for target, status in statuses.items()])
    expected = _trend_row_by_row(path, limit)
    found = history.trend(limit).statuses
    assert found == expected and list(found) == list(expected)
