"""gate.approval: the time a row states, and a retired key (``valid-before`` in allowed_signers).

A retired key cannot approve by dating a row back into its validity, through the gate or by hand: time
running backwards along the chain, before the approved run ended, before the history got its identity,
or a run recorded out of order gives it away. A row from the future and a time not in the form the gate
writes are caught too.
"""
from __future__ import annotations

import sqlite3
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from railiance_conformance.gate import identity
from railiance_conformance.gate.approval import GENESIS, NAMESPACE, Approval, ApprovalRefused
from railiance_conformance.gate.approvals import ApprovalChain
from tests.gate.approval_history import TASK, approve, forge, gate_run, insert, problems, run_end, signed, utc
from tests.gate.conftest import ADA


@pytest.fixture
def retired(keys, tmp_path) -> dict[str, Path]:
    """Ada's allowed_signers plus a key retired five days ago (``valid-before``), as docs/gate.md advises."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "old", "-f", str(tmp_path / "old")],
                   check=True)
    expired = (datetime.now(timezone.utc) - timedelta(days=5)).strftime("%Y%m%d")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(keys["allowed"].read_text() + f'{OLD} namespaces="{NAMESPACE}",valid-before="{expired}" '
                       + (tmp_path / "old.pub").read_text())
    return {**keys, "old": tmp_path / "old", "allowed": allowed}


OLD = "old@railiance.example"


def made_days_ago(history: Path, days: float) -> None:
    """A history whose identity was made ``days`` ago (as if the gate had first used it then)."""
    history.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(history) as con:
        for statement in identity.STATEMENTS:
            con.execute(statement)
        con.execute("INSERT INTO history_identity VALUES (1, ?, ?, 0)",
                    (str(uuid.uuid4()), utc(datetime.now(timezone.utc) - timedelta(days=days))))


def backdated_setup(history: Path, keys) -> tuple[Approval, tuple[str, str], str]:
    """A history made a week ago; row #1 approved two days ago; a run that ended a minute ago; a time six
    days ago (the retired key, retired five days ago, was still valid then)."""
    made_days_ago(history, 7)
    now = datetime.now(timezone.utc)
    first = approve(history, keys, run=gate_run(history, finished=now - timedelta(days=2, hours=1)),
                    now=now - timedelta(days=2))
    return first, gate_run(history, finished=now - timedelta(minutes=1)), utc(now - timedelta(days=6))


def test_a_retired_key_cannot_approve_by_backdating_through_the_gate(history, retired):
    first, run, backdated = backdated_setup(history, retired)
    with pytest.raises(ApprovalRefused, match=rf"the approval time {backdated} is before run {run[0]} ended"):
        approve(history, retired, run=run, approver=OLD, key="old", now=datetime.fromisoformat(backdated))
    assert ApprovalChain(history).list() == [first]


@pytest.mark.parametrize("claimed_end", ["recorded", "backdated too"])
def test_a_backdated_row_by_a_retired_key_is_caught(history, retired, claimed_end):
    first, run, backdated = backdated_setup(history, retired)
    row = forge(history, 2, run, first.row_hash, approved_at=backdated, approver=OLD)
    if claimed_end != "recorded":  # the forger also signs a run end before the backdated time
        row = Approval(**{**row.to_dict(), "run_finished_at_utc": utc(datetime.fromisoformat(backdated)
                                                                        - timedelta(hours=1))})
    insert(history, signed(row, retired["old"]))
    found = problems(history, retired)
    ended = run_end(history, run[0])
    assert f"row #2: approved at {backdated}, before row #1 ({first.approved_at_utc}): time runs backwards along " \
           "the chain (a row dated back, e.g. into a retired key's validity)" in found
    if claimed_end == "recorded":
        assert f"row #2: approved at {backdated}, before the run it approves ({run[0]}) ended at {ended}: time " \
               "runs backwards (a row dated back, e.g. into a retired key's validity)" in found
    else:
        assert f"row #2: it was signed for a run that ended at {row.run_finished_at_utc}, but the history records " \
               f"{run[0]} ended at {ended}" in found
        assert f"row #2: it was signed for a run that ended at {row.run_finished_at_utc}, but the approved report " \
               f"says {run[0]} ended at {ended}" in found
    assert not any("signed by key" in p or "signature does not match" in p for p in found), found  # valid then


def test_a_retired_key_dating_the_first_row_and_a_made_up_run_back_is_caught(history, retired):
    """The chain is empty, so no previous row bounds the time: the forger records a GO run of their own
    that 'ended' six days ago (the history and the archive are files they can write), and the retired
    key signs row #1 dated six days ago, inside its validity. The history's identity (made with the
    first genuine run, today) and the order the runs were recorded in still show the date is false."""
    now = datetime.now(timezone.utc)
    gate_run(history, finished=now - timedelta(minutes=30))  # a genuine run today: the history's identity
    made_up = gate_run(history, finished=now - timedelta(days=6, minutes=5))
    backdated = utc(now - timedelta(days=6))
    with pytest.raises(ApprovalRefused, match="before this history got its identity.*claims an earlier end"):
        approve(history, retired, run=made_up, approver=OLD, key="old", now=datetime.fromisoformat(backdated))
    insert(history, signed(forge(history, 1, made_up, GENESIS, approved_at=backdated, approver=OLD), retired["old"]))
    found = problems(history, retired)
    assert any(p.startswith(f"row #1: approved at {backdated}, before this history got its identity") for p in found), \
        found
    recorded_after = f"row #1: approves run {made_up[0]}, which the history recorded after run"
    assert any(p.startswith(recorded_after) for p in found), found
    assert not any("signed by key" in p for p in found), found  # the key was valid at the time the row states


def test_a_row_from_the_future_is_caught(history, keys):
    first = approve(history, keys)
    ahead = utc(datetime.now(timezone.utc) + timedelta(days=365))
    insert(history, signed(forge(history, 2, gate_run(history), first.row_hash, approved_at=ahead), keys["ada"]))
    found = problems(history, keys)
    assert len(found) == 1 and found[0].startswith(f"row #2: approved at {ahead}, 87") and "a row from the future" \
        in found[0], found
    with pytest.raises(ApprovalRefused, match="a row from the future"):
        approve(history, keys)  # nothing is appended after it
    with pytest.raises(ApprovalRefused, match="ahead of this machine's clock"):
        ApprovalChain(history.with_name("other.sqlite")).record(
            task=TASK, run_id=gate_run(history.with_name("other.sqlite"))[0], approver=ADA, report_digest="sha256:"
            + "0" * 64, repo_heads={}, signing_key=keys["ada"], allowed_signers=keys["allowed"],
            now=datetime.now(timezone.utc) + timedelta(hours=1))


@pytest.mark.parametrize("stamp", ["{day}T09:00:00.999Z", "{day}T11:00:00+02:00", "{day} 09:00:00Z", "{day}T09:00Z"])
def test_a_row_time_not_in_the_form_the_gate_writes_is_caught(history, keys, stamp):
    """Each of these is the same instant to ``fromisoformat``; ``-Overify-time`` has whole seconds, so the
    verifier would round a fraction: a row the gate did not write is named, whatever the time means."""
    first = approve(history, keys)
    run = gate_run(history, finished=datetime.now(timezone.utc) - timedelta(hours=3))
    at = stamp.format(day=(datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%d"))
    insert(history, signed(forge(history, 2, run, first.row_hash, approved_at=at), keys["ada"]))
    found = problems(history, keys)
    assert f"row #2: its time {at!r} is not in the form the gate writes (YYYY-MM-DDTHH:MM:SSZ, whole seconds, " \
           "UTC): a row made by hand" in found, found
