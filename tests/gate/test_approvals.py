"""gate.approval: the signed, hash-chained record of a GO, checked with the real ssh-keygen.

Every tampering the issue names is done here as someone holding the SQLite file would do it (plain
sqlite3, triggers dropped and re-created) and must be caught by ``verify_chain`` naming the row.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from railiance_conformance.gate import archive, identity
from railiance_conformance.gate.approval import GENESIS, NAMESPACE, Approval, ApprovalRefused, NotApproved
from railiance_conformance.gate.approval_signature import sign
from railiance_conformance.gate.approval_table import SCHEMA, TABLE
from railiance_conformance.gate.approval_verify import verify_chain
from railiance_conformance.gate.approvals import ApprovalChain, RepoHeadError, repo_heads
from railiance_conformance.gate.cutover import GateVerdict
from railiance_conformance.history import History
from railiance_conformance.reporting import Run, write_reports

HEAD = "8563afaeb06d22f93750575361571832f494e0fa"
TASK = "RAIL-HO-WP-0004-T09"
from tests.gate.conftest import ADA


def git(cwd: Path, *argv: str) -> str:
    return subprocess.run(["git", "-c", "user.name=gate", "-c", "user.email=gate@example.invalid", *argv], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def history(tmp_path) -> Path:
    return tmp_path / "reports" / "history.sqlite"


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


def test_a_signature_by_a_key_not_in_allowed_signers_is_caught(history, keys):
    rows = chain_of_three(history, keys)
    template = forge(history, 4, gate_run(history), rows[-1].row_hash)
    insert(history, signed(template, keys["eve"]))
    found = problems(history, keys)
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(keys["eve"]) + ".pub"], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    assert found == [f"row #4: signed by key {fingerprint}, which {keys['allowed']} does not allow to approve as "
                     f"{ADA!r} at {template.approved_at_utc}"]


def test_recording_with_a_key_not_in_allowed_signers_is_refused(history, keys):
    with pytest.raises(ApprovalRefused, match=f"may not approve as '{ADA}'"):
        approve(history, keys, key="eve")
    assert ApprovalChain(history).list() == []
    assert verify_chain(history, keys["allowed"], expect_head=GENESIS).ok  # "no approval was ever made": true


def test_an_approval_of_a_no_go_run_is_caught(history, keys):
    first = approve(history, keys)
    run_id, digest = gate_run(history, verdict="NO-GO")
    template = forge(history, 2, (run_id, digest), first.row_hash)
    insert(history, signed(template, keys["ada"]))  # an allowed key, a consistent chain: only the run is wrong
    found = problems(history, keys)
    assert f"row #2: approves run {run_id}, whose verdict was NO-GO, not GO" in found
    assert f"row #2: the approved report is of run {run_id} ({TASK}: NO-GO), not of a GO of run {run_id}" in found
    assert len(found) == 2


def test_recording_a_no_go_run_is_refused(history, keys):
    run_id, digest = gate_run(history, verdict="NO-GO")
    with pytest.raises(NotApproved, match="only a GO"):
        ApprovalChain(history).record(task=TASK, run_id=run_id, approver=ADA, report_digest=digest, repo_heads={},
                                      signing_key=keys["ada"], allowed_signers=keys["allowed"],
                                      history_verdict="NO-GO")


def test_a_changed_archived_report_is_caught(history, keys):
    approval = approve(history, keys)
    report = archive.report_path(history, approval.report_digest)
    report.chmod(0o644)
    report.write_text(report.read_text().replace('"GO"', '"GO" '))
    assert problems(history, keys) == [f"row #1: the archived report {report.name} no longer has the digest the "
                                       "approval recorded: it was changed"]


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


@pytest.mark.parametrize("changes, message", [
    ({"approver": " "}, "needs a task, a run id and an approver"),
    ({"report_digest": "ab" * 32}, "report_digest"),
    ({"repo_heads": {"infra": "main"}}, "full commit ids"),
])
def test_bad_fields_are_refused(history, keys, changes, message):
    run_id, digest = gate_run(history)
    args = dict(task=TASK, run_id=run_id, approver=ADA, report_digest=digest, repo_heads={},
                signing_key=keys["ada"], allowed_signers=keys["allowed"]) | changes
    with pytest.raises(ValueError, match=message):
        ApprovalChain(history).record(**args)
    assert ApprovalChain(history).list() == []


def test_a_missing_signing_key_is_refused_without_key_material(history, keys, tmp_path):
    with pytest.raises(ApprovalRefused, match="ssh-keygen -Y sign with .*nokey failed"):
        approve(history, {**keys, "ada": tmp_path / "nokey"})


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


@pytest.fixture
def checkout(tmp_path) -> Path:
    repo = tmp_path / "railiance-infra"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "converge")
    return repo


def test_repo_heads_reads_each_checkout(checkout, monkeypatch):
    here = Path(__file__).resolve().parents[2]
    expected = {str(checkout): git(checkout, "rev-parse", "HEAD"), str(here): git(here, "rev-parse", "HEAD")}
    monkeypatch.setenv("GIT_DIR", str(here / ".git"))  # must not steer git to another repository
    assert repo_heads([checkout, str(here)]) == expected


def test_repo_heads_names_a_path_that_is_not_a_checkout(tmp_path, checkout):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepoHeadError, match=f"^{plain} is not a git checkout"):
        repo_heads([checkout, plain])
    (checkout / "sub").mkdir()
    with pytest.raises(RepoHeadError, match=f"inside the checkout {checkout}"):
        repo_heads([checkout / "sub"])
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(RepoHeadError, match="no commit yet"):
        repo_heads([empty])


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


def test_an_approval_names_the_cluster_of_its_run(history, keys):
    approval = approve(history, keys, run=gate_run(history, cluster_uid="d8fb827e-c443-99c2-af4b-d1ae7000c9b7"))
    assert approval.cluster_id == "d8fb827e-c443-99c2-af4b-d1ae7000c9b7"
    assert verify_chain(history, keys["allowed"], cluster_id=approval.cluster_id).ok
    assert [str(p) for p in verify_chain(history, keys["allowed"], cluster_id="another-uid").problems] == [
        "row #1: it approves a run against cluster d8fb827e-c443-99c2-af4b-d1ae7000c9b7, not the cluster targeted "
        "now (another-uid)"]
    forged = signed(forge(history, 2, gate_run(history, cluster_uid="uid-of-the-run"), approval.row_hash),
                    keys["ada"], cluster_id="uid-of-another-cluster")
    insert(history, forged)
    assert "row #2: it was signed for cluster uid-of-another-cluster, but the history records run " \
           f"{forged.run_id} gated cluster uid-of-the-run" in problems(history, keys)


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


def test_recording_reads_the_verdict_and_task_from_the_history(history, keys):
    with pytest.raises(NotApproved, match="is recorded as NO-GO"):
        approve(history, keys, run=gate_run(history, verdict="NO-GO"))  # the caller's history_verdict says GO
    with pytest.raises(NotApproved, match="for RAIL-HO-WP-0004-T10"):
        approve(history, keys, run=gate_run(history, task="RAIL-HO-WP-0004-T10"))
    assert ApprovalChain(history).list() == []


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
