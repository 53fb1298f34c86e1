"""repo.* and boundary.values.location on fixture checkouts, in-process: conformant passes, drifted drifts
exactly. Each control is evaluated by its check kind with the params its sentence in
features/X/repos.feature states (the bundled plan), as the suite does."""
from __future__ import annotations

import json
import subprocess

import pytest

from railiance_conformance.checks import bundled_plan
from railiance_conformance.finding import Status
from railiance_conformance.vocabulary import check_kinds
from railiance_testbed.repos import PLAINTEXT_SENTINEL, build_repos

CONTROLS = ["repo.make.targets", "repo.sops.encrypted", "repo.workplan.superseded", "repo.deploy_stack.doc",
            "boundary.values.location"]
SOPS_WANT = "sops metadata with a mac; every leaf ENC[...] unless sops' own rules leave it plain"
DOC = {"pre-conditions checklist": "present", "State Hub tunnel bring-up (ops-bridge)": "present",
       "recovery runbook pointer (INC-002)": "present"}
PLATFORM_TARGETS = ["db-deploy", "db-shell", "db-status", "valkey-deploy", "valkey-status"]
TOMBSTONE = "a line naming gitea-values.sops.yaml → railiance-apps"



def evaluate(control_id: str, repos):
    spec = bundled_plan().spec(control_id)
    return check_kinds()[spec.kind].evaluate(repos, spec.params)


DRIFT = {  # control -> (expected, observed) on the drifted checkouts
    "repo.make.targets": (
        {"railiance-platform": PLATFORM_TARGETS, "railiance-apps": ["gitea-deploy", "gitea-status"],
         "railiance-infra": ["deploy-stack"]},
        {"railiance-platform": PLATFORM_TARGETS[:-1], "railiance-apps": ["gitea-deploy", "gitea-status"],
         "railiance-infra": ["deploy-stack"]}),
    "repo.sops.encrypted": (
        {"railiance-platform/helm/valkey-values.sops.yaml": SOPS_WANT},
        {"railiance-platform/helm/valkey-values.sops.yaml": {"problems": [], "plaintext_keys": ["auth.password"]}}),
    "repo.workplan.superseded": (
        {"railiance-platform/workplans/RAIL-PL-WP-0001-platform-baseline.md": "superseded"},
        {"railiance-platform/workplans/RAIL-PL-WP-0001-platform-baseline.md": "active"}),
    "repo.deploy_stack.doc": (
        {"railiance-infra/docs/deploy-stack.md": DOC, "make deploy-stack prints": ["S1", "S2", "S3", "S4", "S5"]},
        {"railiance-infra/docs/deploy-stack.md": DOC, "make deploy-stack prints": ["S1", "S3", "S2", "S4", "S5"]}),
    "boundary.values.location": (
        {"railiance-apps/helm/gitea-values.sops.yaml": "present",
         "railiance-cluster: copies of gitea-values.sops.yaml": [], "railiance-cluster/helm/MOVED.md": TOMBSTONE},
        {"railiance-apps/helm/gitea-values.sops.yaml": "missing",
         "railiance-cluster: copies of gitea-values.sops.yaml": ["helm/gitea-values.sops.yaml"],
         "railiance-cluster/helm/MOVED.md": "missing"}),
}


def test_conformant_checkouts_pass_every_control(conformant_repos, layer_map):
    outcomes = {c: evaluate(c, conformant_repos) for c in CONTROLS}
    assert {c: o.status for c, o in outcomes.items()} == {c: Status.PASS for c in CONTROLS}
    assert all(o.expected == o.observed and not o.reason for o in outcomes.values())
    assert dict(outcomes["repo.sops.encrypted"].evidence)["files_checked"] == 5


@pytest.mark.parametrize("control_id", CONTROLS)
def test_drifted_checkouts_drift_exactly(drifted_repos, layer_map, control_id):
    outcome = evaluate(control_id, drifted_repos)
    assert (outcome.status, outcome.expected, outcome.observed, outcome.reason) == (Status.DRIFT, *DRIFT[control_id], "")


def test_plaintext_value_never_reaches_an_outcome(drifted_repos, layer_map):
    planted = (drifted_repos["railiance-platform"] / "helm/valkey-values.sops.yaml").read_text()
    assert PLAINTEXT_SENTINEL in planted  # the leaf is really there
    for control_id in CONTROLS:
        outcome = evaluate(control_id, drifted_repos)
        text = repr(outcome) + json.dumps([outcome.expected, outcome.observed, dict(outcome.evidence)], default=str)
        assert PLAINTEXT_SENTINEL not in text and "plaintext-sops-leaf" not in text, control_id


@pytest.mark.parametrize("variant", ["conformant", "drifted"])
def test_checkouts_are_left_untouched(tmp_path, layer_map, variant):
    repos = build_repos(tmp_path, variant)
    for control_id in CONTROLS:
        evaluate(control_id, repos)
    for path in repos.values():
        status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=path, capture_output=True,
                                text=True, check=True).stdout
        assert status == "", f"{path.name}: {status}"


def test_missing_checkout_is_could_not_verify(conformant_repos, layer_map):
    repos = {k: v for k, v in conformant_repos.items() if k != "railiance-apps"}
    outcome = evaluate("repo.make.targets", repos)
    assert (outcome.status, outcome.reason) == (Status.ERROR, "no checkout of railiance-apps given")
    located = evaluate("boundary.values.location", repos)
    assert located.status is Status.ERROR and "no checkout of railiance-apps given" in located.reason


def test_drift_wins_over_a_missing_checkout(drifted_repos, layer_map):
    repos = {k: v for k, v in drifted_repos.items() if k != "railiance-apps"}
    outcome = evaluate("repo.make.targets", repos)
    assert outcome.status is Status.DRIFT and outcome.reason == "no checkout of railiance-apps given"
    assert outcome.observed["railiance-platform"] == PLATFORM_TARGETS[:-1]


def test_doc_sections_report_what_is_missing(tmp_path, layer_map):
    repos = build_repos(tmp_path, "conformant")
    doc = repos["railiance-infra"] / "docs/deploy-stack.md"
    text = doc.read_text().replace("INC-002", "the incident").replace("## State Hub tunnel bring-up (ops-bridge)",
                                                                       "## Networking")
    doc.write_text(text.replace("- [ ] the operator's age key in `~/.config/sops/age/keys.txt`\n", ""))
    outcome = evaluate("repo.deploy_stack.doc", repos)
    assert outcome.status is Status.DRIFT
    assert outcome.observed["railiance-infra/docs/deploy-stack.md"] == {
        "pre-conditions checklist": "section 'Pre-conditions checklist': missing age",
        "State Hub tunnel bring-up (ops-bridge)": "no heading matching /state.?hub|tunnel|ops-bridge/",
        "recovery runbook pointer (INC-002)": "section 'Recovery': missing INC-002"}


def test_tombstone_needs_the_arrow_to_the_new_repo(tmp_path, layer_map):
    repos = build_repos(tmp_path, "conformant")
    (repos["railiance-cluster"] / "helm/MOVED.md").write_text("gitea-values.sops.yaml was deleted\n")
    outcome = evaluate("boundary.values.location", repos)
    assert outcome.observed["railiance-cluster/helm/MOVED.md"] == "no line naming gitea-values.sops.yaml → railiance-apps"


def test_files_that_only_look_like_sops_files_are_not_checked(tmp_path, layer_map):
    """The repo-root .sops.yaml is sops' configuration (creation_rules), never encrypted."""
    repos = build_repos(tmp_path, "conformant")
    infra = repos["railiance-infra"]
    (infra / ".sops.yaml").write_text("creation_rules:\n  - path_regex: .*\\.sops\\.yaml$\n    age: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n")
    (infra / "helm").mkdir(exist_ok=True)
    (infra / "helm" / ".sops.yaml").write_text("creation_rules:\n  - age: age1xyz\n")
    subprocess.run(["git", "-C", str(infra), "add", "-A"], check=True, capture_output=True)
    outcome = evaluate("repo.sops.encrypted", repos)
    assert outcome.status is Status.PASS, outcome
    skipped = dict(outcome.evidence)["skipped"]
    assert "railiance-infra/.sops.yaml: sops' configuration, never encrypted" in skipped
    assert "railiance-infra/helm/.sops.yaml: sops' configuration, never encrypted" in skipped
