"""gate.approval: the history an approval belongs to, and what the history file alone cannot tell.

An approval copied into another history, or left behind when the history's identity was replaced, is
caught; the identity is fixed when the history is made. A dropped approval table beside GO runs does not
verify; a chain cut from its end is caught against the head kept elsewhere (``gate --verify-approvals
--expect-head``). A history of the first format (rows without an identity) stays readable, and is bound
from then on.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from railiance_conformance.gate import archive
from railiance_conformance.gate.approval import GENESIS, Approval
from railiance_conformance.gate.approval_table import TABLE
from railiance_conformance.gate.approval_verify import verify_chain
from railiance_conformance.gate.approvals import ApprovalChain
from railiance_conformance.history import History
from tests.gate.approval_history import (
    TASK,
    approve,
    chain_of_three,
    gate_run,
    history_id,
    insert,
    problems,
    signed,
    utc,
    without_triggers,
)
from tests.gate.conftest import ADA


def copy_into(source: Path, target: Path, approval: Approval) -> None:
    """Copy a signed row with its run (runs row), archived report and receipt into another history."""
    with sqlite3.connect(target) as con:
        con.execute("ATTACH DATABASE ? AS a", (str(source),))
        con.execute("INSERT INTO runs (run_id, started_at, finished_at, partial, targets, counts, meta) SELECT "
                    "run_id, started_at, finished_at, partial, targets, counts, meta FROM a.runs WHERE run_id = ?",
                    (approval.run_id,))
    insert(target, approval)
    report = archive.report_path(source, approval.report_digest)
    archive.store_report(target, report)
    archive.write_receipt(target, approval.seq, approval.to_dict())


def test_an_approval_copied_into_another_history_is_caught(tmp_path, keys):
    made, elsewhere = tmp_path / "a" / "history.sqlite", tmp_path / "b" / "history.sqlite"
    approval = approve(made, keys)
    History(elsewhere)
    ApprovalChain(elsewhere)  # another cutover's history: the gate gives it its own identity on first use
    copy_into(made, elsewhere, approval)
    assert verify_chain(made, keys["allowed"]).ok
    assert problems(elsewhere, keys) == [f"row #1: it was made in history {history_id(made)}, not in this one "
                                         f"({history_id(elsewhere)}): an approval copied from another history "
                                         "approves nothing here"]


@pytest.mark.parametrize("statement", ["UPDATE history_identity SET history_id = 'another'",
                                       "DELETE FROM history_identity",
                                       "INSERT INTO history_identity VALUES (2, 'another', 'x', 0)"])
def test_the_history_identity_is_fixed_when_the_history_is_made(history, keys, statement):
    approval = approve(history, keys)
    with sqlite3.connect(history) as con, pytest.raises(sqlite3.DatabaseError, match="fixed|CHECK"):
        con.execute(statement)
    assert history_id(history) == approval.history_id and verify_chain(history, keys["allowed"]).ok


def test_a_replaced_history_identity_is_reported(history, keys):
    approval = approve(history, keys)
    with sqlite3.connect(history) as con:
        con.execute("DROP TRIGGER history_identity_no_delete")
        con.execute("DELETE FROM history_identity")
    ApprovalChain(history)  # opening it gives it a new identity: the old rows no longer match it
    found = problems(history, keys)
    assert "the history identity's trigger history_identity_no_delete is missing: someone dropped it; the identity " \
           "may have been replaced" in found
    assert f"row #1: it was made in history {approval.history_id}, not in this one ({history_id(history)}): an " \
           "approval copied from another history approves nothing here" in found


def test_a_dropped_approval_table_beside_go_runs_does_not_verify(history, keys):
    chain_of_three(history, keys)
    with sqlite3.connect(history) as con:
        con.execute(f"DROP TABLE {TABLE}")  # its triggers go with it
    for receipt in archive.receipts(history).values():
        receipt.unlink()
    report = verify_chain(history, keys["allowed"])
    assert (report.ok, report.rows, report.go_runs) == (False, 0, 3)
    [problem] = [str(p) for p in report.problems]
    assert problem.startswith("the approval table is missing, yet the history holds 3 gate run(s) with GO (the "
                              "latest ") and "3 archived GO report(s)" in problem and "--expect-head" in problem


def verify_cli(capsys, history: Path, keys, *extra: str) -> tuple[int, str]:
    from railiance_conformance.__main__ import main

    code = main(["gate", "--verify-approvals", "--history", str(history), "--allowed-signers", str(keys["allowed"]),
                 *extra])
    return code, capsys.readouterr().out


def test_a_truncated_chain_fails_against_the_head_kept_elsewhere(history, keys, capsys):
    rows = chain_of_three(history, keys)
    without_triggers(history, f"DELETE FROM {TABLE} WHERE seq = 3",
                     f"UPDATE sqlite_sequence SET seq = 2 WHERE name = '{TABLE}'")
    archive.receipts(history)[3].unlink()
    assert verify_chain(history, keys["allowed"]).ok  # the file alone cannot tell (docs/gate.md)
    code, out = verify_cli(capsys, history, keys, "--expect-head", rows[2].row_hash)
    assert code == 1, out
    assert f"the chain head kept elsewhere, {rows[2].row_hash}, is in none of the 2 rows (head now " \
           f"{rows[1].row_hash}): rows were cut from the end of the chain" in out
    assert out.rstrip().splitlines()[-1].startswith("approval chain does NOT verify (1 problems): 2 rows")
    code, out = verify_cli(capsys, history, keys, "--expect-head", rows[0].row_hash)
    assert code == 0 and "the head kept elsewhere is row #1; 1 rows were appended after it" in out, out
    code, out = verify_cli(capsys, history, keys, "--expect-head", "sha256:abc")
    assert code == 3


def test_an_empty_chain_beside_a_go_run_says_so_and_the_empty_head_vouches_for_it(history, keys, capsys):
    gate_run(history)
    code, out = verify_cli(capsys, history, keys)
    assert code == 1 and "the approval table is empty, yet the history holds 1 gate run(s) with GO" in out, out
    code, out = verify_cli(capsys, history, keys, "--expect-head", GENESIS)
    assert code == 0 and out.rstrip().splitlines()[-1].startswith("approval chain verifies: 0 rows"), out


OLD_SCHEMA = f"""CREATE TABLE {TABLE} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, run_id TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict = 'GO'), approver TEXT NOT NULL, approved_at_utc TEXT NOT NULL,
  report_digest TEXT NOT NULL, repo_heads TEXT NOT NULL, prev_hash TEXT NOT NULL, signature TEXT NOT NULL,
  row_hash TEXT NOT NULL);
CREATE TRIGGER approval_chain_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: UPDATE refused'); END;
CREATE TRIGGER approval_chain_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: DELETE refused'); END;
CREATE TRIGGER approval_chain_no_replace BEFORE INSERT ON {TABLE}
WHEN EXISTS (SELECT 1 FROM {TABLE} WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: an INSERT may not replace an approval'); END;"""


def old_row(history: Path, keys, seq: int, prev_hash: str) -> Approval:
    """A row of the first format (no history identity, no run end), as the gate signed it before."""
    run_id, digest = gate_run(history, identify=False)
    row = Approval(seq, TASK, run_id, "GO", ADA, utc(datetime.now(timezone.utc)), digest, {}, prev_hash, "", "")
    row = signed(row, keys["ada"])
    with sqlite3.connect(history) as con:
        names = [n for n in row.to_dict() if n not in ("run_finished_at_utc", "history_id", "cluster_id")]
        values = [json.dumps(row.repo_heads) if n == "repo_heads" else getattr(row, n) for n in names]
        con.execute(f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values)
    archive.write_receipt(history, seq, {k: v for k, v in row.to_dict().items() if k in names})
    return row


def test_an_old_history_stays_readable_and_is_bound_from_then_on(history, keys, capsys):
    History(history)
    with sqlite3.connect(history) as con:
        con.executescript(OLD_SCHEMA)
    first = old_row(history, keys, 1, GENESIS)
    second = old_row(history, keys, 2, first.row_hash)
    third = approve(history, keys)  # opening it adds the columns and the identity: rows #1, #2 stay as they were
    assert [a.bound for a in ApprovalChain(history).list()] == [False, False, True]
    assert ApprovalChain(history).list()[:2] == [first, second]
    report = verify_chain(history, keys["allowed"])
    assert (report.ok, report.rows, report.unbound, report.problems) == (True, 3, 2, ())
    code, out = verify_cli(capsys, history, keys)
    assert code == 0 and "note: 2 rows were signed before approvals carried their history's identity" in out
    insert(history, signed(Approval(4, TASK, third.run_id, "GO", ADA, utc(datetime.now(timezone.utc)),
                                    third.report_digest, {}, third.row_hash, "", ""), keys["ada"]))
    assert any(p.startswith("row #4: it does not carry the history's identity, though every row after #2 must")
               for p in problems(history, keys))
