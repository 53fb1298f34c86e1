"""Repo hygiene, layer boundaries with waivers, and the workplan's claims against reality."""
from __future__ import annotations

from pathlib import Path

import pytest

from railiance_testbed import SEED_WORKPLAN as SEED  # noqa: E402  (the bundled copy of shared/seed)
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from railiance_testbed.repos import PLAINTEXT_SENTINEL, build_repos
from tests.suite_runner import run_suite

REPO_CONTROLS = {"repo.make.targets", "repo.sops.encrypted", "repo.workplan.superseded", "repo.deploy_stack.doc",
                 "boundary.values.location", "repo.goss.swap", "repo.goss.nproc"}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    return {variant: Path(next(iter(build_repos(root / variant, variant).values()))).parent
            for variant in ("conformant", "drifted")}


@pytest.fixture
def kubeconfig(tmp_path):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP])) as api:
        yield api.write_kubeconfig(tmp_path / "kc")


def test_conformant_repos_pass_every_repo_control(repos, tmp_path):
    run = run_suite("-m", "repos", "--repos", str(repos["conformant"]), report_dir=tmp_path / "r")
    assert {f["control_id"]: f["status"] for f in run.findings("repos")} == {c: "pass" for c in REPO_CONTROLS}


def test_drifted_repos_drift_exactly_on_the_repo_controls(repos, tmp_path):
    run = run_suite("-m", "repos", "--repos", str(repos["drifted"]), report_dir=tmp_path / "r")
    findings = {f["control_id"]: f for f in run.findings("repos")}
    assert {c: f["status"] for c, f in findings.items()} == {c: "drift" for c in REPO_CONTROLS}
    assert findings["repo.sops.encrypted"]["observed"] == {
        "railiance-platform/helm/valkey-values.sops.yaml": {"problems": [], "plaintext_keys": ["auth.password"]}}
    for finding in findings.values():
        assert finding["expected"] is not None and finding["observed"] is not None and finding["remediation"]
    output = run.stdout + "".join(p.read_bytes().decode("utf-8", "replace") for p in run.report_dir.iterdir())
    assert PLAINTEXT_SENTINEL not in output


def test_missing_repos_are_an_error_not_a_pass(tmp_path):
    run = run_suite("-m", "repos", report_dir=tmp_path / "r")
    assert {f["status"] for f in run.findings("repos")} == {"error"}
    assert "--repos DIR" in run.findings("repos")[0]["reason"]


def boundary(run) -> dict[str, dict]:
    return {f["control_id"]: f for f in run.findings() if f["control_id"].startswith("boundary.")}


def test_known_violations_are_waived_and_still_evaluated(kubeconfig, tmp_path):
    run = run_suite("-m", "X and cluster", "--kubeconfig", str(kubeconfig), report_dir=tmp_path / "r")
    found = boundary(run)
    assert {c: f["status"] for c, f in found.items()} == {
        "boundary.namespace.owned": "pass", "boundary.component.layer": "waived",
        "boundary.component.manager": "waived"}
    layer = found["boundary.component.layer"]
    assert set(layer["observed"]) == {"argocd/argocd", "cnpg-system/cnpg"}  # the observed value stays
    assert "worsch" in layer["reason"] and "2027-03-31" in layer["reason"] and "RAIL-PL-WP-0002" in layer["reason"]
    assert run.returncode == 0


def test_without_waivers_the_violations_drift(kubeconfig, tmp_path):
    run = run_suite("-m", "X and cluster", "--kubeconfig", str(kubeconfig), "--waivers", "none",
                    report_dir=tmp_path / "r")
    assert {c: f["status"] for c, f in boundary(run).items()} == {
        "boundary.namespace.owned": "pass", "boundary.component.layer": "drift", "boundary.component.manager": "drift"}


def waivers_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text("kind: Waivers\nversion: 1\nwaivers:\n" + text)
    return path


WAIVER = """  - control: {control}
    target: {target}
    justification: the operator stays in S2 until the CRD migration window
    approved_by: worsch
    expires: {expires}
    link: railiance-platform/workplans/RAIL-PL-WP-0002-cnpg-operator-to-s3.md
"""


def test_an_expired_waiver_is_drift_again(kubeconfig, tmp_path):
    path = waivers_file(tmp_path, WAIVER.format(control="boundary.component.layer", target="cnpg-system/cnpg",
                                                expires="2026-01-31"))
    run = run_suite("-m", "X and cluster", "--kubeconfig", str(kubeconfig), "--waivers", str(path),
                    report_dir=tmp_path / "r")
    layer = boundary(run)["boundary.component.layer"]
    assert layer["status"] == "drift" and "expired on 2026-01-31" in layer["reason"]


def test_a_waiver_for_an_unknown_control_stops_the_run(tmp_path):
    path = waivers_file(tmp_path, WAIVER.format(control="boundary.no_such_control", target="cnpg-system/cnpg",
                                                expires="2027-01-31"))
    run = run_suite("--waivers", str(path), report_dir=tmp_path / "r")
    assert run.returncode == 4
    assert f"{path}: waivers[0].control: unknown control id 'boundary.no_such_control'" in run.stderr


def test_a_waiver_file_that_fails_its_schema_stops_the_run_before_any_probe(tmp_path):
    path = waivers_file(tmp_path, WAIVER.format(control="boundary.component.layer", target="cnpg-system/cnpg",
                                                expires="2027-01-31").replace("    approved_by: worsch\n", ""))
    run = run_suite("--waivers", str(path), "--hosts", "ssh://tegwick@127.0.0.1:9", report_dir=tmp_path / "r")
    assert run.returncode == 4 and f"{path}: waivers[0]" in run.stderr and "approved_by" in run.stderr
    assert not (tmp_path / "r").exists()


def test_one_task_runs_alone_by_its_tag(kubeconfig, repos, tmp_path):
    run = run_suite("-m", "T03", "--kubeconfig", str(kubeconfig), "--repos", str(repos["conformant"]),
                    report_dir=tmp_path / "r")
    assert {f["task"] for f in run.findings()} == {"RAIL-HO-WP-0004-T03"}
    from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
    t03 = {c.id for c in load_catalog(DEFAULT_POLICY_DIR).controls.values() if c.task == "T03"
           and (c.id.startswith("cluster.") or c.id == "repo.workplan.superseded")}
    assert {f["control_id"] for f in run.findings()} == t03  # T03's cluster controls and the superseded workplan


def test_claims_against_the_seed_workplan_and_the_drifted_testbed(testbed, cluster_api, repos, tmp_path):
    run = run_suite("--workplan", str(SEED), "--ansible-inventory", str(testbed.inventory), "--ssh-config",
                    str(testbed.ssh_config), "--kubeconfig", str(cluster_api[1]), "--repos", str(repos["conformant"]),
                    report_dir=tmp_path / "r")
    claims = {c["task"]: c for c in run.document["run"]["claims"]}
    assert claims["RAIL-HO-WP-0004-T01"]["verdict"] == "claimed done, drifted"  # the drifted host
    assert "host.swap.fstab@drifted" in claims["RAIL-HO-WP-0004-T01"]["drifted"]
    assert claims["RAIL-HO-WP-0004-T04"]["verdict"] == "claimed done, verified"
    assert claims["RAIL-HO-WP-0004-T09"]["verdict"] == "pending"
    assert run.document["run"]["claims"][0]["verdict"] == "claimed done, drifted"  # loudest first
    assert "Workplan claims vs. reality" in run.stdout and "claimed done, drifted" in run.stdout
    # the Done-when coverage: every clause of every task, in the run record and the terminal
    coverage = {row["task"][-3:]: row for row in run.document["run"]["coverage"]}
    assert sum(row["total"] for row in coverage.values()) == 31
    t01 = {c["clause"]: c["state"] for c in coverage["T01"]["clauses"]}
    assert t01 == {"Convergence runs without errors": "not verifiable read-only",
                   "free -h on CoulombCore shows 4 GB swap": "drifted",  # the drifted host has no swap
                   "Goss verify passes": "drifted"}
    assert {c["state"] for c in coverage["T08"]["clauses"]} == {"verified", "not verifiable read-only"}
    assert "Done when: 0 of 3 verified, 1 not verifiable read-only" in run.stdout
    assert "### Done when: clauses verified per task" in (run.report_dir / "summary.md").read_text()
