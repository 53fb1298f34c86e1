"""gate.approval: what a row approves: a GO run of its task recorded in this history, the report archived
for it, the cluster it gated, the repositories' heads.

An approval of a NO-GO run, of a changed archived report or signed for another cluster is caught;
recording one for a NO-GO run, another task, or with malformed fields is refused; ``repo_heads`` reads
each checkout's HEAD with the real git and names a path that is not a checkout.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from railiance_conformance.gate import archive
from railiance_conformance.gate.approval import NotApproved
from railiance_conformance.gate.approval_verify import verify_chain
from railiance_conformance.gate.approvals import ApprovalChain, RepoHeadError, repo_heads
from tests.gate.approval_history import TASK, approve, forge, gate_run, insert, problems, signed
from tests.gate.conftest import ADA


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


def test_recording_reads_the_verdict_and_task_from_the_history(history, keys):
    with pytest.raises(NotApproved, match="is recorded as NO-GO"):
        approve(history, keys, run=gate_run(history, verdict="NO-GO"))  # the caller's history_verdict says GO
    with pytest.raises(NotApproved, match="for RAIL-HO-WP-0004-T10"):
        approve(history, keys, run=gate_run(history, task="RAIL-HO-WP-0004-T10"))
    assert ApprovalChain(history).list() == []


def test_a_changed_archived_report_is_caught(history, keys):
    approval = approve(history, keys)
    report = archive.report_path(history, approval.report_digest)
    report.chmod(0o644)
    report.write_text(report.read_text().replace('"GO"', '"GO" '))
    assert problems(history, keys) == [f"row #1: the archived report {report.name} no longer has the digest the "
                                       "approval recorded: it was changed"]


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
