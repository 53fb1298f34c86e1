"""gate.approval: the append-only SQLite record of a GO, and the repo heads it pins."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from railiance_conformance.gate.approvals import (
    Approval,
    Approvals,
    NotApproved,
    RepoHeadError,
    file_digest,
    repo_heads,
)

DIGEST = "sha256:" + "ab" * 32
HEAD = "8563afaeb06d22f93750575361571832f494e0fa"
TASK = "RAIL-HO-WP-0004-T09"


def git(cwd: Path, *argv: str) -> str:
    return subprocess.run(["git", "-c", "user.name=gate", "-c", "user.email=gate@example.invalid", *argv], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    repo = tmp_path / "railiance-infra"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "converge")
    return repo


def test_record_then_list(tmp_path):
    approvals = Approvals(tmp_path / "gate" / "approvals.sqlite")
    recorded = approvals.record(TASK, "tegwick", "2026-11-27T10:30:00+01:00", DIGEST, {"railiance-infra": HEAD})
    second = approvals.record(TASK, "ops2", "2026-11-27T10:00:00Z", DIGEST, {})
    assert approvals.list() == [recorded, second]
    assert recorded == Approval(1, TASK, "tegwick", "2026-11-27T09:30:00Z", DIGEST, {"railiance-infra": HEAD}, "GO",
                                recorded.recorded_at_utc)
    assert recorded.recorded_at_utc.endswith("Z")
    assert Approvals(tmp_path / "gate" / "approvals.sqlite").list() == [recorded, second]  # reopened


@pytest.mark.parametrize("verdict", ["NO-GO", "go", ""])
def test_only_a_go_is_recorded(tmp_path, verdict):
    approvals = Approvals(tmp_path / "a.sqlite")
    with pytest.raises(NotApproved, match="only a GO is recorded"):
        approvals.record(TASK, "tegwick", "2026-11-27T09:30:00Z", DIGEST, {}, verdict=verdict)
    assert approvals.list() == []


@pytest.mark.parametrize("field, args, message", [
    ("approver", (TASK, " ", "2026-11-27T09:30:00Z", DIGEST, {}), "needs a task and an approver"),
    ("decided_at", (TASK, "tegwick", "2026-11-27T09:30:00", DIGEST, {}), "no UTC offset"),
    ("digest", (TASK, "tegwick", "2026-11-27T09:30:00Z", "ab" * 32, {}), "report_digest"),
    ("heads", (TASK, "tegwick", "2026-11-27T09:30:00Z", DIGEST, {"infra": "main"}), "full commit ids"),
])
def test_bad_fields_are_refused(tmp_path, field, args, message):
    approvals = Approvals(tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match=message):
        approvals.record(*args)
    assert approvals.list() == []


@pytest.mark.parametrize("statement", [
    "UPDATE approvals SET approver = 'mallory'",
    "UPDATE approvals SET verdict = 'GO' WHERE seq = 1",
    "DELETE FROM approvals",
    "DELETE FROM approvals WHERE seq = 1",
    "INSERT OR REPLACE INTO approvals VALUES (1, 'T', 'mallory', 'x', 'x', '{}', 'GO', 'x')",
    ("INSERT INTO approvals VALUES (1, 'T', 'mallory', 'x', 'x', '{}', 'GO', 'x') "
     "ON CONFLICT (seq) DO UPDATE SET approver = 'mallory'"),
])
def test_the_database_itself_refuses_changing_an_approval(tmp_path, statement):
    path = tmp_path / "a.sqlite"
    approvals = Approvals(path)
    original = approvals.record(TASK, "tegwick", "2026-11-27T09:30:00Z", DIGEST, {"infra": HEAD})
    con = sqlite3.connect(path)  # plain sqlite3, as anyone with the file could
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(statement)
        con.commit()
    finally:
        con.close()
    assert approvals.list() == [original]


def test_a_no_go_row_is_refused_by_the_database_too(tmp_path):
    path = tmp_path / "a.sqlite"
    Approvals(path)
    with sqlite3.connect(path) as con, pytest.raises(sqlite3.IntegrityError, match="CHECK constraint"):
        con.execute("INSERT INTO approvals (task, approver, decided_at_utc, report_digest, repo_heads, verdict, "
                    "recorded_at_utc) VALUES ('T', 'x', 'x', 'x', '{}', 'NO-GO', 'x')")


def test_two_processes_append_at_once(tmp_path):
    path, go = tmp_path / "approvals.sqlite", tmp_path / "go"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from railiance_conformance.gate.approvals import Approvals
        approvals = Approvals({str(path)!r})
        while not Path({str(go)!r}).exists():
            time.sleep(0.005)
        for i in range(50):
            approvals.record("T09", sys.argv[1], "2026-11-27T09:30:00Z", {DIGEST!r}, {{"n": {HEAD!r}}})
        """)
    workers = [subprocess.Popen([sys.executable, "-c", script, name], stderr=subprocess.PIPE, text=True)
               for name in ("alice", "bob")]
    go.touch()
    errors = [(w.wait(timeout=120), w.stderr.read()) for w in workers]
    assert errors == [(0, ""), (0, "")]
    recorded = Approvals(path).list()
    assert [a.seq for a in recorded] == list(range(1, 101))
    assert sorted(a.approver for a in recorded) == ["alice"] * 50 + ["bob"] * 50
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_repo_heads_reads_each_checkout(checkout, monkeypatch):
    here = Path(__file__).resolve().parents[2]
    expected = {str(checkout): git(checkout, "rev-parse", "HEAD"), str(here): git(here, "rev-parse", "HEAD")}
    assert expected[str(checkout)] != expected[str(here)]
    monkeypatch.setenv("GIT_DIR", str(here / ".git"))  # must not steer git to another repository
    assert repo_heads([checkout, str(here)]) == expected


def test_repo_heads_names_a_path_that_is_not_a_checkout(tmp_path, checkout):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepoHeadError, match=f"^{plain} is not a git checkout"):
        repo_heads([checkout, plain])
    with pytest.raises(RepoHeadError, match=f"^{tmp_path / 'missing'} is not a git checkout"):
        repo_heads([tmp_path / "missing"])
    (checkout / "sub").mkdir()
    with pytest.raises(RepoHeadError, match=f"inside the checkout {checkout}"):
        repo_heads([checkout / "sub"])
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(RepoHeadError, match="no commit yet"):
        repo_heads([empty])


def test_file_digest_is_the_form_record_takes(tmp_path):
    report = tmp_path / "findings.json"
    report.write_bytes(b"{}")
    digest = file_digest(report)
    assert digest == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    Approvals(tmp_path / "a.sqlite").record(TASK, "tegwick", "2026-11-27T09:30:00Z", digest, {})
