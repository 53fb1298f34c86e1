"""Approval chains in a real history file, made and tampered with as the approvals tests need them.

``gate_run`` records a gate run in the history and archives its findings.json; ``approve`` appends a
signed row the gate's way (``ApprovalChain.record``, the real ssh-keygen). ``forge`` and ``signed`` make
a row by hand, ``insert`` appends it with plain sqlite3 and ``without_triggers`` changes the table behind
its append-only triggers, as someone holding the SQLite file would; ``problems`` is what
``verify_chain`` then reports, as text.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from railiance_conformance.gate import archive
from railiance_conformance.gate.approval import Approval
from railiance_conformance.gate.approval_signature import sign
from railiance_conformance.gate.approval_table import SCHEMA, TABLE
from railiance_conformance.gate.approval_verify import verify_chain
from railiance_conformance.gate.approvals import ApprovalChain
from railiance_conformance.gate.cutover import GateVerdict
from railiance_conformance.history import History
from railiance_conformance.reporting import Run, write_reports
from tests.gate.conftest import ADA

HEAD = "8563afaeb06d22f93750575361571832f494e0fa"
TASK = "RAIL-HO-WP-0004-T09"


def utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def gate_run(history: Path, verdict: str = "GO", task: str = TASK, finished: datetime | None = None,
             cluster_uid: str | None = None, identify: bool = True) -> tuple[str, str]:
    """A gate run recorded in the history and its findings.json archived: (run id, report digest).
    It ended at ``finished`` (default 2026-11-27T09:01:00Z), on the cluster ``cluster_uid``."""
    ended = finished or datetime(2026, 11, 27, 9, 1, tzinfo=timezone.utc)
    run = Run(run_id=uuid.uuid4().hex[:12], started_at=utc(ended - timedelta(minutes=1)), finished_at=utc(ended),
              findings=(), workplan="RAIL-HO-WP-0004", gate=GateVerdict(task, go=verdict == "GO",
                                                                        cluster_uid=cluster_uid))
    History(history).record(run)
    if identify:
        ApprovalChain(history)  # as the gate does after each run: the history's identity
    written = write_reports(run, history.parent / run.run_id, ["json"])
    return run.run_id, archive.store_report(history, written[0])


def approve(history: Path, keys, run: tuple[str, str] | None = None, approver: str = ADA, key: str = "ada",
            heads: dict | None = None, now: datetime | None = None) -> Approval:
    run_id, digest = run or gate_run(history)
    return ApprovalChain(history).record(task=TASK, run_id=run_id, approver=approver, report_digest=digest,
                                         repo_heads=heads or {}, signing_key=keys[key],
                                         allowed_signers=keys["allowed"], now=now)


def history_id(history: Path) -> str:
    with sqlite3.connect(history) as con:
        return con.execute("SELECT history_id FROM history_identity").fetchone()[0]


def run_end(history: Path, run_id: str) -> str:
    with sqlite3.connect(history) as con:
        return con.execute("SELECT finished_at FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]


def forge(history: Path, seq: int, run: tuple[str, str], prev_hash: str, approved_at: str | None = None,
          approver: str = ADA, **changes) -> Approval:
    """An unsigned row as the gate would write it (this history's identity, the run's recorded end), made
    by hand; ``approved_at`` defaults to now. Sign it with ``signed``."""
    return Approval(seq, TASK, run[0], "GO", approver, approved_at or utc(datetime.now(timezone.utc)), run[1], {},
                    prev_hash, "", "", run_end(history, run[0]), history_id(history), None, **changes)


def chain_of_three(history: Path, keys) -> list[Approval]:
    return [approve(history, keys, heads={"railiance-infra": HEAD}) for _ in range(3)]


def insert(history: Path, approval: Approval) -> None:
    """Append a row with plain sqlite3, as anyone with write access to the file could."""
    row = approval.to_dict()
    row["repo_heads"] = json.dumps(row["repo_heads"], sort_keys=True)
    with sqlite3.connect(history) as con:
        con.execute(f"INSERT INTO {TABLE} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def without_triggers(history: Path, *statements: str) -> None:
    """Drop the append-only triggers, run the statements, re-create the triggers (leaving no trace there)."""
    with sqlite3.connect(history) as con:
        for name in ("approval_chain_no_update", "approval_chain_no_delete", "approval_chain_no_replace"):
            con.execute(f"DROP TRIGGER {name}")
        for statement in statements:
            con.execute(statement)
        con.executescript(SCHEMA)


def problems(history: Path, keys) -> list[str]:
    report = verify_chain(history, keys["allowed"])
    return [str(p) for p in report.problems]


def signed(approval: Approval, key: Path, **changes) -> Approval:
    """A row with the given changes, (re-)signed with ``key`` and with a consistent row hash."""
    values = Approval(**{**approval.to_dict(), **changes})
    forged = Approval(**{**values.to_dict(), "signature": sign(values.payload(), key), "row_hash": ""})
    return Approval(**{**forged.to_dict(), "row_hash": forged.computed_hash()})
