"""The ``approval_chain`` table in the history's SQLite file, and the runs it approves.

Shape: ``SCHEMA`` (the table, a CHECK admitting only GO, and its append-only triggers),
``read_rows`` (every row as an ``Approval``, oldest first; columns of a newer format read as NULL),
``next_link`` (the next seq and prev_hash), ``run_facts`` (each gate run as the history recorded it).
Reads only; ``con`` is an open ``sqlite3.Connection`` (``history.open_database``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from railiance_conformance.gate.approval import BINDING, COLUMNS, GENESIS, MAX_CLOCK_SKEW_S, Approval, parse_time

TABLE = "approval_chain"
TRIGGERS = ("approval_chain_no_update", "approval_chain_no_delete", "approval_chain_no_replace")
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, run_id TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict = 'GO'), approver TEXT NOT NULL, approved_at_utc TEXT NOT NULL,
  report_digest TEXT NOT NULL, repo_heads TEXT NOT NULL, prev_hash TEXT NOT NULL, signature TEXT NOT NULL,
  row_hash TEXT NOT NULL, run_finished_at_utc TEXT, history_id TEXT, cluster_id TEXT);
CREATE TRIGGER IF NOT EXISTS approval_chain_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS approval_chain_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS approval_chain_no_replace BEFORE INSERT ON {TABLE}
WHEN EXISTS (SELECT 1 FROM {TABLE} WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: an INSERT may not replace an approval'); END;
"""


def has_table(con, name: str) -> bool:
    """True when the database has a table ``name``."""
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def table_columns(con) -> set[str]:
    """The column names ``approval_chain`` has (a table of the first format lacks ``BINDING``)."""
    return {r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")}


def read_rows(con) -> list[Approval]:
    """Every row, oldest first, as stored ([] without the table); unparsable ``repo_heads`` are kept as text."""
    if not has_table(con, TABLE):
        return []
    present = table_columns(con)
    chosen = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
    out = []
    for row in con.execute(f"SELECT {chosen} FROM {TABLE} ORDER BY seq").fetchall():
        values = dict(zip(COLUMNS, row, strict=True))
        try:
            heads = json.loads(values["repo_heads"])
        except (TypeError, ValueError):
            heads = {"(unreadable)": str(values["repo_heads"])}
        text = {name: str(values[name]) for name in COLUMNS}
        binding = {name: None if values[name] is None else str(values[name]) for name in BINDING}
        out.append(Approval(values["seq"], text["task"], text["run_id"], text["verdict"], text["approver"],
                            text["approved_at_utc"], text["report_digest"], heads, text["prev_hash"],
                            text["signature"], text["row_hash"], run_finished_at_utc=binding["run_finished_at_utc"],
                            history_id=binding["history_id"], cluster_id=binding["cluster_id"]))
    return out


def next_link(con) -> tuple[int, str]:
    """``(seq, prev_hash)`` of the next row: above the last row and the AUTOINCREMENT high-water mark."""
    rows = read_rows(con)
    high = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE,)).fetchone()
    seq = max([rows[-1].seq if rows else 0, high[0] if high else 0]) + 1
    return seq, rows[-1].row_hash if rows else GENESIS


@dataclass(frozen=True, slots=True)
class RunFacts:
    """One gate run as the history recorded it (``runs`` row and its ``meta.gate``)."""

    run_id: str
    task: str
    verdict: str
    finished_at: str
    cluster_uid: str | None
    ended_later_before: tuple[str, str] | None = None  # (run id, end) of a run recorded before it that ended
    #                                                    more than MAX_CLOCK_SKEW_S after it: its end was dated back


def run_facts(con) -> dict[str, RunFacts]:
    """``{run_id: RunFacts}`` from the history's runs (``meta.gate``)."""
    if not has_table(con, "runs"):
        return {}
    out = {}
    latest: tuple[datetime, str, str] | None = None  # the latest end among the runs recorded so far
    for run_id, finished_at, meta in con.execute("SELECT run_id, finished_at, meta FROM runs ORDER BY seq"):
        try:
            gate = json.loads(meta).get("gate") or {}
        except (TypeError, ValueError, AttributeError):
            gate = {}
        if not isinstance(gate, dict):
            gate = {}
        uid = gate.get("cluster_uid")
        ended = parse_time(str(finished_at))
        earlier = None
        if ended is not None and latest is not None and (latest[0] - ended).total_seconds() > MAX_CLOCK_SKEW_S:
            earlier = (latest[1], latest[2])
        if ended is not None and (latest is None or ended > latest[0]):
            latest = (ended, str(run_id), str(finished_at))
        out[run_id] = RunFacts(run_id, str(gate.get("task", "")), str(gate.get("verdict", "")), str(finished_at),
                               str(uid) if uid else None, earlier)
    return out


def legacy_count(con) -> int:
    """Rows of the pre-chain ``approvals`` table (0 without it)."""
    if not has_table(con, "approvals"):
        return 0
    return con.execute("SELECT count(*) FROM approvals").fetchone()[0]
