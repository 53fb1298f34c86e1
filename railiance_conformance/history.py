"""Run history in one embedded SQLite file: what drifted since the last run, and for how long.

Each ``record`` is one transaction (run row and findings together, or nothing), in WAL mode with a
busy timeout so that concurrent writers wait for each other. Runs are ordered by when they were
recorded; findings are keyed by ``control_id@target`` (the louder status, ``Status.loudness``, if one
run has a key twice: ``Run.one_per_key``).
Example: ``History(Path("history.sqlite")).diff_latest().to_dict()["new_drift"]`` -> ``["host.swap.file@a"]``.
"""
from __future__ import annotations

import errno
import json
import sqlite3
import time
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from railiance_conformance.finding import Status
from railiance_conformance.run import FindingHistory, Run, RunDiff, RunInfo, StatusChange, Trend  # noqa: F401 - re-exported

BUSY_TIMEOUT_MS = 60_000
_KEYS_PER_QUERY = 500  # bound parameters per query (SQLite's limit is 32766 since 3.32, 999 before)
# 2: findings_by_key_status, so that the trend and each key's status are read from the index alone (the table's
# rows hold the evidence: reading them cost ~3 ms per host and run at 30 runs of history). A file of version 1
# gets the index when first opened (CREATE INDEX IF NOT EXISTS; an older suite opening a version 2 file keeps it).
SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE, started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL, partial INTEGER NOT NULL, targets TEXT NOT NULL, counts TEXT NOT NULL,
  meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
  seq INTEGER NOT NULL REFERENCES runs(seq) ON DELETE CASCADE, key TEXT NOT NULL,
  control_id TEXT NOT NULL, target TEXT NOT NULL, task TEXT NOT NULL, layer TEXT NOT NULL,
  severity TEXT NOT NULL, status TEXT NOT NULL, expected TEXT, observed TEXT, reason TEXT NOT NULL,
  evidence TEXT NOT NULL, PRIMARY KEY (seq, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS findings_by_key ON findings (key, seq);
CREATE INDEX IF NOT EXISTS findings_by_key_status ON findings (key, seq, status);
"""


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    return (keys[start:start + _KEYS_PER_QUERY] for start in range(0, len(keys), _KEYS_PER_QUERY))


# json.dumps(value, sort_keys=True, default=str) builds this same encoder on every call; one is kept instead
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


# what the trend's aggregate puts between two runs' numbers and statuses (the ASCII unit separator)
_SEP = "\x1f"


def _json(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, default=str)``: a finding's expected/observed/evidence as stored."""
    return "null" if value is None else _ENCODER.encode(value)


@contextmanager
def open_database(path: Path, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> Iterator[sqlite3.Connection]:
    """A connection to the SQLite file (created on first use) in WAL mode with a busy timeout
    (seconds another process's lock is waited for), in autocommit mode so callers open their own
    ``BEGIN IMMEDIATE`` transactions. Shared by the history and the approvals (same file).
    Raises ``sqlite3.Error`` (``HistoryError.describe`` names the cause) or ``OSError``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)) as con:
        con.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        deadline = time.monotonic() + busy_timeout_s
        while True:  # switching to WAL needs a moment without other connections' locks
            try:
                con.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        con.execute("PRAGMA foreign_keys = ON")
        yield con


def error_cause(exc: BaseException, busy_timeout_s: float) -> str:
    """Why the history file could not be used, for an operator: ``"locked by another process for more
    than 60 s (busy timeout)"``; the file is never replaced or repaired."""
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        cause = "not a SQLite database (overwritten or corrupt); left as it is: move it aside to start a new history"
    elif "locked" in text or "busy" in text:
        cause = f"locked by another process for more than {busy_timeout_s:g} s (busy timeout)"
    elif "full" in text:
        cause = "disk full (ENOSPC)"
    elif "readonly" in text or "read-only" in text.lower():
        cause = "read-only (EROFS or no write permission)"
    elif isinstance(exc, OSError):
        cause = f"{exc.strerror or exc} ({errno.errorcode.get(exc.errno or 0, 'OSError')})"
    else:
        cause = f"{type(exc).__name__}: {text}"
    return cause


class PendingRecord:
    """A run inserted in an open ``BEGIN IMMEDIATE`` transaction: what the reports need (the diff,
    each finding's history) is read on the same connection, then ``commit()`` or ``rollback()``.
    Made by ``History.begin_record``; the lock is held until one of the two is called."""

    def __init__(self, history: "History", stack, con: sqlite3.Connection):
        self.history, self._stack, self.con = history, stack, con

    def diff_latest(self) -> RunDiff | None:
        return self.history._diff_latest(self.con)

    def finding_history(self, key: str) -> FindingHistory | None:
        return self.history._finding_history(self.con, key)

    def finding_histories(self, keys: Iterable[str]) -> dict[str, FindingHistory]:
        return self.history._finding_histories(self.con, keys)

    def trend(self, limit: int = 30) -> Trend:
        return self.history._trend(self.con, limit)

    def commit(self) -> None:
        try:
            self.con.execute("COMMIT")
        finally:
            self._close()

    def rollback(self) -> None:
        try:
            if self.con.in_transaction:
                self.con.execute("ROLLBACK")
        finally:
            self._close()

    def _close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()


class History:
    """``History(path)``: the file is created on first use; every call opens its own connection."""

    def __init__(self, path: Path | str, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        with self._connect() as con:
            if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                con.executescript(f"BEGIN IMMEDIATE;{SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")

    def _connect(self):
        return open_database(self.path, self.busy_timeout_s)

    def record(self, run: Run) -> None:
        """Store the run and its findings in one transaction: all of it or, if killed, nothing."""
        self.begin_record(run).commit()

    def begin_record(self, run: Run) -> PendingRecord:
        """Insert the run in an open transaction; nothing is visible to others until ``commit()``.
        ValueError if the run id is already recorded; ``sqlite3.Error``/``OSError`` as ``open_database``."""
        rows = ((f.key, f.control_id, f.target, f.task, f.layer, f.severity, f.status.value,
                 _json(f.expected), _json(f.observed), f.reason, _json(dict(f.evidence)))
                for f in run.one_per_key())
        stack = ExitStack()
        con = stack.enter_context(self._connect())
        try:
            con.execute("BEGIN IMMEDIATE")
            if con.execute("SELECT 1 FROM runs WHERE run_id = ?", (run.run_id,)).fetchone():
                raise ValueError(f"run {run.run_id!r} is already recorded in {self.path}")
            seq = con.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, partial, targets, counts, meta)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, run.started_at, run.finished_at, int(run.partial), _json(list(run.targets)),
                 _json(run.counts()), _json(run.details()))).lastrowid
            con.executemany(f"INSERT INTO findings VALUES ({seq}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            try:
                if con.in_transaction:
                    con.execute("ROLLBACK")
            finally:
                stack.close()
            raise
        return PendingRecord(self, stack, con)

    def runs(self) -> list[RunInfo]:
        """Every recorded run, oldest first."""
        with self._connect() as con:
            rows = con.execute("SELECT run_id, started_at, finished_at, partial, targets, counts"
                               " FROM runs ORDER BY seq").fetchall()
        return [RunInfo(r[0], r[1], r[2], bool(r[3]), tuple(json.loads(r[4])), json.loads(r[5])) for r in rows]

    def statuses(self, run_id: str) -> dict[str, str]:
        """``{"host.swap.file@a": "drift", ...}`` for one run; KeyError if it was never recorded."""
        with self._connect() as con:
            return self._statuses(con, run_id)

    def _statuses(self, con: sqlite3.Connection, run_id: str) -> dict[str, str]:
        found = con.execute("SELECT seq FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if found is None:
            raise KeyError(f"run {run_id!r} is not in {self.path}")
        return dict(con.execute("SELECT key, status FROM findings WHERE seq = ?", found))

    def diff(self, run_a_id: str, run_b_id: str) -> RunDiff:
        """What changed from run A (earlier) to run B (later)."""
        with self._connect() as con:
            return self._diff(con, run_a_id, run_b_id)

    def _diff(self, con: sqlite3.Connection, run_a_id: str, run_b_id: str) -> RunDiff:
        before, after = self._statuses(con, run_a_id), self._statuses(con, run_b_id)
        drift = Status.DRIFT.value
        return RunDiff(
            from_run=run_a_id, to_run=run_b_id,
            new_drift=tuple(sorted(k for k, s in after.items() if s == drift and before.get(k) != drift)),
            fixed=tuple(sorted(k for k, s in after.items() if s == Status.PASS.value and before.get(k) == drift)),
            persisting=tuple(sorted(k for k, s in after.items() if s == drift and before.get(k) == drift)),
            status_changes=tuple(StatusChange(k, before[k], s) for k, s in sorted(after.items())
                                 if k in before and before[k] != s))

    def diff_latest(self) -> RunDiff | None:
        """The latest recorded run against the one before it; None with fewer than two runs."""
        with self._connect() as con:
            return self._diff_latest(con)

    def _diff_latest(self, con: sqlite3.Connection) -> RunDiff | None:
        ids = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY seq DESC LIMIT 2")]
        return self._diff(con, ids[1], ids[0]) if len(ids) == 2 else None

    def finding_history(self, key: str) -> FindingHistory | None:
        """First and last sighting of ``control_id@target`` and its drift streak; None if never seen."""
        with self._connect() as con:
            return self._finding_history(con, key)

    def _finding_history(self, con: sqlite3.Connection, key: str) -> FindingHistory | None:
        rows = con.execute("SELECT r.run_id, r.started_at, f.status FROM runs r LEFT JOIN findings f"
                           " ON f.seq = r.seq AND f.key = ? ORDER BY r.seq", (key,)).fetchall()
        seen = [r for r in rows if r[2] is not None]
        if not seen:
            return None
        streak = 0
        for _, _, status in reversed(rows):  # a run without the key ends the streak too
            if status != Status.DRIFT.value:
                break
            streak += 1
        return FindingHistory(key, seen[0][0], seen[0][1], seen[-1][0], seen[-1][1], seen[-1][2], streak, len(seen))

    def finding_histories(self, keys: Iterable[str]) -> dict[str, FindingHistory]:
        """``finding_history`` of each of ``keys`` (key -> FindingHistory; a key never seen is left out),
        read with one aggregate per chunk of keys instead of one query per key and run."""
        with self._connect() as con:
            return self._finding_histories(con, keys)

    def _finding_histories(self, con: sqlite3.Connection, keys: Iterable[str]) -> dict[str, FindingHistory]:
        # Only the index on (key, seq) is read for every run; the table's rows (large: they hold the evidence)
        # only at each key's latest run and, for a key in drift there, back along its streak.
        runs = {seq: (run_id, started_at) for seq, run_id, started_at in
                con.execute("SELECT seq, run_id, started_at FROM runs ORDER BY seq")}
        order = list(runs)
        wanted = sorted(set(keys))
        spans: dict[str, tuple[int, int, int]] = {}
        for chunk in _chunks(wanted):
            for key, first, last, seen in con.execute(
                    "SELECT key, min(seq), max(seq), count(*) FROM findings"
                    f" WHERE key IN ({','.join('?' * len(chunk))}) GROUP BY key", chunk):
                spans[key] = (first, last, seen)
        latest: dict[int, list[str]] = {}
        for key, (_, last, _) in spans.items():
            latest.setdefault(last, []).append(key)
        status: dict[str, str] = {}
        for seq, named in latest.items():
            for chunk in _chunks(named):
                status.update(con.execute(f"SELECT key, status FROM findings WHERE seq = ? AND key IN "
                                          f"({','.join('?' * len(chunk))})", (seq, *chunk)))
        found = {}
        for key, (first, last, seen) in spans.items():
            streak = 0
            if last == order[-1]:  # counted back from the latest run; a run without the key ends it too
                for seq in reversed(order):
                    row = (status[key],) if seq == last else con.execute(
                        "SELECT status FROM findings WHERE seq = ? AND key = ?", (seq, key)).fetchone()
                    if row is None or row[0] != Status.DRIFT.value:
                        break
                    streak += 1
            found[key] = FindingHistory(key, *runs[first], *runs[last], status[key], streak, seen)
        return found

    def trend(self, limit: int = 30) -> Trend:
        """The last ``limit`` recorded runs (oldest first) and every key's status in each; read only."""
        with self._connect() as con:
            return self._trend(con, limit)

    def _trend(self, con: sqlite3.Connection, limit: int) -> Trend:
        rows = con.execute("SELECT seq, run_id, started_at, finished_at, partial, targets, counts FROM runs"
                           " ORDER BY seq DESC LIMIT ?", (max(1, int(limit)),)).fetchall()[::-1]
        runs = tuple(RunInfo(r[1], r[2], r[3], bool(r[4]), tuple(json.loads(r[5])), json.loads(r[6])) for r in rows)
        column = {r[0]: index for index, r in enumerate(rows)}
        statuses: dict[str, tuple[str | None, ...]] = {}
        if rows:
            # one row per key, its runs and statuses concatenated in one aggregate pass (so they pair up, in
            # whatever order SQLite visits them): ~60,000 rows fetched one by one at 100 hosts and 30 runs were
            # most of this read. A key found in every run in order (the usual one) is its statuses as they come.
            every = _SEP.join(str(r[0]) for r in rows)
            for key, seqs, found in con.execute(
                    f"SELECT key, group_concat(seq, '{_SEP}'), group_concat(status, '{_SEP}') FROM findings"
                    " WHERE seq >= ? GROUP BY key ORDER BY key", (rows[0][0],)):
                each = found.split(_SEP)
                if seqs == every and len(each) == len(rows):
                    statuses[key] = tuple(each)
                    continue
                numbers = seqs.split(_SEP)
                if len(each) == len(numbers):
                    pairs: Iterable[tuple[Any, str]] = zip(numbers, each, strict=True)
                else:  # a status holding the separator: this key's rows one by one
                    pairs = con.execute("SELECT seq, status FROM findings WHERE key = ? AND seq >= ?",
                                        (key, rows[0][0])).fetchall()
                row: list[str | None] = [None] * len(rows)
                for seq, status in pairs:
                    row[column[int(seq)]] = status
                statuses[key] = tuple(row)
        return Trend(runs, statuses)
