"""gate.approval: the hash chain itself, checked with the real ssh-keygen.

A genuine chain verifies; rows inserted, edited or deleted with plain sqlite3 behind the gate's back
(the append-only triggers dropped and re-created) are caught by ``verify_chain`` naming the row; the
triggers refuse changes, a dropped trigger is reported, a broken chain takes no further approvals, and
two processes appending at once leave one unbroken chain.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from railiance_conformance.gate import archive
from railiance_conformance.gate.approval import GENESIS, Approval, ApprovalRefused
from railiance_conformance.gate.approval_table import TABLE
from railiance_conformance.gate.approval_verify import verify_chain
from railiance_conformance.gate.approvals import ApprovalChain
from tests.gate.approval_history import (
    HEAD,
    TASK,
    approve,
    chain_of_three,
    gate_run,
    insert,
    problems,
    without_triggers,
)
from tests.gate.conftest import ADA


def test_a_genuine_chain_verifies(history, keys):
    rows = chain_of_three(history, keys)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS and rows[1].prev_hash == rows[0].row_hash
    assert rows[2].approver == ADA and rows[2].verdict == "GO" and rows[2].repo_heads == {"railiance-infra": HEAD}
    report = verify_chain(history, keys["allowed"])
    assert (report.ok, report.rows, report.head, report.problems) == (True, 3, rows[2].row_hash, ())
    assert ApprovalChain(history).list() == rows
    assert sorted(archive.receipts(history)) == [1, 2, 3]


def test_a_forged_insert_is_caught(history, keys):
    rows = chain_of_three(history, keys)
    run_id, digest = gate_run(history)
    forged = Approval(4, "RAIL-HO-WP-0004-T10", run_id, "GO", "Chief Approver", "2026-11-27T10:00:00Z", digest, {},
                      rows[-1].row_hash, rows[-1].signature, "")  # a real signature, but of another row
    insert(history, Approval(**{**forged.to_dict(), "row_hash": forged.computed_hash()}))
    found = problems(history, keys)
    assert any(p.startswith("row #4: its signature does not match its contents") for p in found), found
    assert all(p.startswith("row #4") for p in found), found


def test_a_plain_insert_without_a_valid_hash_is_caught(history, keys):
    chain_of_three(history, keys)
    with sqlite3.connect(history) as con:
        con.execute(f"INSERT INTO {TABLE} (task, run_id, verdict, approver, approved_at_utc, report_digest, "
                    "repo_heads, prev_hash, signature, row_hash) VALUES ('RAIL-HO-WP-0004-T10', 'x', 'GO', "
                    "'Chief Approver', '2026-11-27T10:00:00Z', 'sha256:00', '{}', 'x', 'x', 'x')")
    found = problems(history, keys)
    assert "row #4: its contents do not match its row_hash: edited after it was recorded, or inserted without the gate" \
        in found
    assert any(p.startswith("row #4: its prev_hash") for p in found)
    assert "row #4: approves run x, which is not in the history" in found


def test_an_edited_row_is_caught_though_the_triggers_were_recreated(history, keys):
    chain_of_three(history, keys)
    without_triggers(history, f"UPDATE {TABLE} SET approver = 'mallory@railiance.example' WHERE seq = 2")
    found = problems(history, keys)
    assert "row #2: its contents do not match its row_hash: edited after it was recorded, or inserted without the " \
           "gate" in found
    assert any(p.startswith("row #2: its signature does not match its contents") for p in found)
    assert "row #2: differs from its receipt 00000002.json: edited after it was recorded" in found
    assert not any(p.startswith(("row #1", "row #3")) for p in found), found


def test_an_edit_that_recomputes_the_hash_breaks_the_next_link(history, keys):
    rows = chain_of_three(history, keys)
    edited = Approval(**{**rows[1].to_dict(), "approver": "mallory@railiance.example", "row_hash": ""})
    without_triggers(history, f"UPDATE {TABLE} SET approver = 'mallory@railiance.example', "
                              f"row_hash = '{edited.computed_hash()}' WHERE seq = 2")
    found = problems(history, keys)
    assert any(p.startswith("row #2: its signature does not match its contents") for p in found)
    assert any(p.startswith("row #3: its prev_hash") for p in found)


def test_a_deleted_row_is_caught(history, keys):
    chain_of_three(history, keys)
    without_triggers(history, f"DELETE FROM {TABLE} WHERE seq = 2")
    found = problems(history, keys)
    assert "row #3: the chain jumps from #1 to #3: row(s) #2 deleted" in found
    assert any(p.startswith("row #3: its prev_hash") for p in found)
    assert "row #2: deleted: its receipt 00000002.json is in the archive, the row is not in the table" in found


def test_the_deleted_last_row_is_caught(history, keys):
    chain_of_three(history, keys)
    without_triggers(history, f"DELETE FROM {TABLE} WHERE seq = 3")
    found = problems(history, keys)
    assert "row #3: row(s) #3 deleted: the table's sequence reached #3 but the last row is #2" in found
    assert "row #3: deleted: its receipt 00000003.json is in the archive, the row is not in the table" in found


def test_a_broken_chain_refuses_further_approvals(history, keys):
    chain_of_three(history, keys)
    without_triggers(history, f"DELETE FROM {TABLE} WHERE seq = 2")
    with pytest.raises(ApprovalRefused, match=r"does not verify, nothing was appended: row #3: the chain jumps"):
        approve(history, keys)
    assert [a.seq for a in ApprovalChain(history).list()] == [1, 3]


def test_dropped_triggers_are_reported_and_not_silently_recreated(history, keys):
    approve(history, keys)
    with sqlite3.connect(history) as con:
        con.execute("DROP TRIGGER approval_chain_no_delete")
    ApprovalChain(history)  # opening it again must not hide the evidence
    assert problems(history, keys) == ["the append-only trigger approval_chain_no_delete is missing: someone dropped "
                                       "it; every row after that may have been changed"]


@pytest.mark.parametrize("statement", [
    f"UPDATE {TABLE} SET approver = 'mallory'",
    f"DELETE FROM {TABLE} WHERE seq = 1",
    f"INSERT OR REPLACE INTO {TABLE} (seq, task, run_id, verdict, approver, approved_at_utc, report_digest, "
    "repo_heads, prev_hash, signature, row_hash) VALUES (1, 'T', 'r', 'GO', 'm', 'x', 'x', '{}', 'x', 'x', 'x')",
    f"INSERT INTO {TABLE} (task, run_id, verdict, approver, approved_at_utc, report_digest, repo_heads, prev_hash, "
    "signature, row_hash) VALUES ('T', 'r', 'NO-GO', 'm', 'x', 'x', '{}', 'x', 'x', 'x')",
])
def test_the_database_itself_refuses_changes(history, keys, statement):
    original = approve(history, keys)
    with sqlite3.connect(history) as con, pytest.raises(sqlite3.DatabaseError, match="append-only|CHECK"):
        con.execute(statement)
    assert ApprovalChain(history).list() == [original]


def test_two_processes_append_at_once(history, keys, tmp_path):
    runs = [gate_run(history) for _ in range(2)]
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from railiance_conformance.gate.approvals import ApprovalChain
        chain = ApprovalChain({str(history)!r})
        run_id, digest = sys.argv[1], sys.argv[2]
        while not Path({str(go)!r}).exists():
            time.sleep(0.005)
        for i in range(5):
            chain.record(task={TASK!r}, run_id=run_id, approver={ADA!r}, report_digest=digest, repo_heads={{}},
                         signing_key=Path({str(keys["ada"])!r}), allowed_signers=Path({str(keys["allowed"])!r}))
        """)
    workers = [subprocess.Popen([sys.executable, "-c", script, *run], stderr=subprocess.PIPE, text=True)
               for run in runs]
    go.touch()
    assert [(w.wait(timeout=120), w.stderr.read()) for w in workers] == [(0, ""), (0, "")]
    assert [a.seq for a in ApprovalChain(history).list()] == list(range(1, 11))
    assert verify_chain(history, keys["allowed"]).ok
