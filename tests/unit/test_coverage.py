"""The Done-when coverage map: every clause of every task of RAIL-HO-WP-0004, parsed
from the bundled workplan, is in policies/coverage.yaml exactly once, mapped to controls the catalog
knows or marked not verifiable read-only with a reason; and a run's coverage follows its findings."""
from __future__ import annotations

import pytest

from railiance_conformance.coverage import (
    DRIFTED,
    NOT_MAPPED,
    NOT_VERIFIABLE,
    PENDING,
    UNVERIFIED,
    VERIFIED,
    coverage_table,
    load_coverage,
)
from railiance_conformance.finding import Finding, Status
from railiance_conformance.policy import DEFAULT_POLICY_DIR, PolicyError, load_catalog
from railiance_conformance.workplan import done_when_clauses, parse_workplan
from railiance_testbed import SEED_WORKPLAN

CATALOG = load_catalog(DEFAULT_POLICY_DIR)
MAP = load_coverage(DEFAULT_POLICY_DIR, CATALOG.controls)
WORKPLAN = parse_workplan(SEED_WORKPLAN)


def test_every_done_when_clause_of_the_workplan_is_covered_exactly_once():
    parsed = [(short, clause) for short, task in WORKPLAN.tasks.items() for clause in task.done_when]
    mapped = [(c.task, c.clause) for c in MAP.clauses]
    assert len(parsed) == 31 and set(WORKPLAN.tasks) == {c.task for c in MAP.clauses}
    assert sorted(mapped) == sorted(parsed)          # same clauses, each once, in the workplan's words
    assert len(set(mapped)) == len(mapped)
    for clause in MAP.clauses:
        assert bool(clause.controls) != bool(clause.not_verifiable), clause
        assert all(c in CATALOG.controls for c in clause.controls), clause
    unverifiable = [c for c in MAP.clauses if c.not_verifiable]
    assert len(unverifiable) == 10  # 21 of 31 clauses have controls


def test_the_clauses_are_split_as_the_workplan_writes_them():
    assert WORKPLAN.tasks["T01"].done_when == ("Convergence runs without errors", "free -h on CoulombCore shows 4 GB swap",
                                               "Goss verify passes")
    # T09: one sentence of commas; the sentence after it is a note, not a promise
    assert WORKPLAN.tasks["T09"].done_when == ("the private State Hub endpoint returns healthy",
                                               "MCP tools work against the cluster-backed API",
                                               "WSL2 is retained as documented fallback")
    assert done_when_clauses("**a**; b.") == ("a", "b")


def finding(control: str, status: Status, target: str = "coulombcore") -> Finding:
    control_def = CATALOG.controls[control]
    return Finding(control_id=control, title="", task=f"RAIL-HO-WP-0004-{control_def.task}", layer=control_def.layer,
                   severity=control_def.severity, target=target, status=status, expected=None, observed=None,
                   remediation="")


def clauses(findings) -> dict[str, dict[str, str]]:
    return {row.task[-3:]: {c.clause: c.state for c in row.clauses} for row in coverage_table(WORKPLAN, MAP, findings)}


def test_a_clause_is_verified_only_when_every_finding_of_its_controls_holds():
    table = clauses([finding("host.swap.total", Status.PASS), finding("host.swap.total", Status.PASS, "other"),
                     finding("repo.goss.nproc", Status.DRIFT), finding("host.gitea_ssh.login", Status.ERROR)])
    assert table["T01"] == {"Convergence runs without errors": NOT_VERIFIABLE,
                            "free -h on CoulombCore shows 4 GB swap": VERIFIED, "Goss verify passes": "not checked"}
    assert table["T02"]["Goss test for nproc limit added"] == DRIFTED
    assert table["T07"]["git push from CoulombCore to Gitea succeeds over SSH without prompts"] == UNVERIFIED
    assert table["T09"]["the private State Hub endpoint returns healthy"] == "not checked"
    pending = clauses([finding("cluster.state_hub.deployed", Status.PENDING)])
    assert pending["T09"]["the private State Hub endpoint returns healthy"] == PENDING


def test_the_summary_counts_verified_of_all():
    row = coverage_table(WORKPLAN, MAP, [finding("host.swap.total", Status.PASS)])[0]
    assert row.summary() == "1 of 3 verified, 1 not verifiable read-only"
    assert row.to_dict()["verified"] == 1 and row.to_dict()["total"] == 3


def test_a_clause_the_map_does_not_know_is_reported_never_verified(tmp_path):
    text = SEED_WORKPLAN.read_text().replace("Goss verify passes.", "Goss verify passes; swap survives a reboot.")
    (tmp_path / "wp.md").write_text(text)
    row = coverage_table(parse_workplan(tmp_path / "wp.md"), MAP, [])[0]
    assert [(c.clause, c.state) for c in row.clauses][-1] == ("swap survives a reboot", NOT_MAPPED)


@pytest.mark.parametrize("edit,field", [
    ("controls: [host.swap.total]", "unknown control id 'host.swap.totl'"),
    ("    - clause: Goss verify passes\n", "mapped twice"),
])
def test_a_bad_map_names_the_file_and_field(tmp_path, edit, field):
    for name in ("controls.yaml", "coverage.yaml"):
        (tmp_path / name).write_text((DEFAULT_POLICY_DIR / name).read_text())
    text = (tmp_path / "coverage.yaml").read_text()
    if edit.startswith("controls"):
        text = text.replace(edit, "controls: [host.swap.totl]")
    else:
        text = text.replace(edit, edit.replace("Goss verify passes", "free -h on CoulombCore shows 4 GB swap"), 1)
    (tmp_path / "coverage.yaml").write_text(text)
    with pytest.raises(PolicyError, match=field) as caught:
        load_coverage(tmp_path, CATALOG.controls)
    assert "coverage.yaml" in str(caught.value) and "tasks.T01" in str(caught.value)


def test_a_task_whose_done_when_clause_drifted_is_never_claimed_done_verified():
    """T06's "Gitea operational" is verified by controls of another task (T04's Gitea): when one of them
    drifts, T06 -- whose own controls all pass -- is "claimed done, drifted", not "claimed done, verified"."""
    from railiance_conformance.claims import DRIFTED as CLAIM_DRIFTED
    from railiance_conformance.claims import UNVERIFIED as CLAIM_UNVERIFIED
    from railiance_conformance.claims import claims_table

    own = [finding(c, Status.PASS, "railiance-testbed") for c in CATALOG.controls
           if CATALOG.controls[c].task == "T06" and not CATALOG.controls[c].pending]
    assert own and "cluster.gitea.available" not in {f.control_id for f in own}
    for status, verdict in ((Status.DRIFT, CLAIM_DRIFTED), (Status.ERROR, CLAIM_UNVERIFIED)):
        findings = [*own, finding("cluster.gitea.available", status, "railiance-testbed")]
        coverage = coverage_table(WORKPLAN, MAP, findings)
        by_task = {c.task[-3:]: c.verdict for c in claims_table(WORKPLAN, findings, coverage)}
        assert by_task["T06"] == verdict
        assert {c.task[-3:]: c.verdict for c in claims_table(WORKPLAN, findings)}["T06"] == "claimed done, verified"
