"""Repo checkouts as operators write them, through the CLI (``-m repos``): make's own rules and YAML as
its producers write it.

The conformant checkouts are rewritten the way real repos hold the same content:

* railiance-platform's ``db-status`` and ``valkey-status`` come from one ``%-status:`` pattern rule;
* railiance-infra's ``deploy-stack`` loops over ``$(LAYERS)`` (``make -s deploy-stack`` prints S1…S5);
* railiance-cluster's backup credentials are one SOPS file with two Secret documents, each with its
  own ``sops:`` block (what ``sops`` writes for a multi-document file);
* railiance-platform's superseded workplan starts with a UTF-8 byte-order mark.

Every repo control must pass, and a plaintext leaf in the *second* document must still be found.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from railiance_testbed.repos import build_repos, sops_file
from tests.suite_runner import run_suite

REPO_CONTROLS = {"repo.make.targets", "repo.sops.encrypted", "repo.workplan.superseded", "repo.deploy_stack.doc",
                 "boundary.values.location", "repo.goss.swap", "repo.goss.nproc"}
PATTERN_RULES = ("db-status valkey-status: STATUS_NAMESPACE = databases\n"
                 "%-status: ## status of a component (db, valkey)\n"
                 "\t@echo \"status of $*\"\n\tkubectl get pods -n $(STATUS_NAMESPACE) -l app.kubernetes.io/instance=$*\n")
LAYERED = ("LAYERS := S1 S2 S3 S4 S5\n"
           "deploy-stack: ## print the S1→S5 deploy sequence (runs nothing)\n"
           "\t@echo \"Railiance stack, S1→S5 in dependency order\"\n"
           "\t@for l in $(LAYERS); do \\\n\t  echo \"$$l: make $$l-deploy\"; \\\n\tdone\n")


def _commit(repo: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@x", "commit", "--allow-empty", "-qm", "real-world"],
                   check=True, capture_output=True)


def _replace_rules(makefile: Path, targets: list[str], replacement: str) -> None:
    """Drop the rules of ``targets`` (head line and recipe) and append ``replacement``."""
    out, skipping = [], False
    for line in makefile.read_text().splitlines(keepends=True):
        if not line.startswith("\t"):
            skipping = any(line.startswith(t + ":") for t in targets)
        if not skipping:
            out.append(line)
    makefile.write_text("".join(out) + "\n" + replacement)


def _two_documents(plaintext_in_second: bool) -> str:
    first = sops_file({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backup-s3-credentials"},
                       "stringData": {"ACCESS_KEY_ID": "AKIA0000"}}, "doc1", rule="data")
    second = sops_file({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backup-s3-secret"},
                        "stringData": {"ACCESS_SECRET_KEY": "x"}}, "doc2", rule="data",
                       leave_plain={"stringData": {"ACCESS_SECRET_KEY": "SNTLplainrw"}} if plaintext_in_second else None)
    return first + "---\n" + second


def _realworld(root: Path, plaintext_in_second: bool = False) -> Path:
    repos = build_repos(root, "conformant")
    platform, infra, cluster = repos["railiance-platform"], repos["railiance-infra"], repos["railiance-cluster"]
    _replace_rules(platform / "Makefile", ["db-status", "valkey-status"], PATTERN_RULES)
    _replace_rules(infra / "Makefile", ["deploy-stack"], LAYERED)
    (cluster / "secrets/backup-s3-credentials.sops.yaml").write_text(_two_documents(plaintext_in_second))
    workplan = next((platform / "workplans").glob("RAIL-PL-WP-0001*.md"))
    workplan.write_bytes(b"\xef\xbb\xbf" + workplan.read_bytes())
    for repo in repos.values():
        _commit(repo)
    return platform.parent


@pytest.fixture(scope="module")
def realworld(tmp_path_factory):
    return _realworld(tmp_path_factory.mktemp("rw-repos"))


def test_the_inputs_are_what_the_components_read(realworld):
    """Guards the fixture: make itself prints S1…S5 and knows db-status; PyYAML reads two documents."""
    done = subprocess.run(["make", "-s", "deploy-stack"], cwd=realworld / "railiance-infra", capture_output=True, text=True)
    assert [line.split(":")[0] for line in done.stdout.splitlines()[1:]] == ["S1", "S2", "S3", "S4", "S5"]
    assert subprocess.run(["make", "-n", "db-status"], cwd=realworld / "railiance-platform",
                          capture_output=True).returncode == 0
    text = (realworld / "railiance-cluster/secrets/backup-s3-credentials.sops.yaml").read_text()
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(text)] == ["backup-s3-credentials", "backup-s3-secret"]


def test_every_repo_control_passes_on_real_world_forms(realworld, tmp_path):
    run = run_suite("-m", "repos", "--repos", str(realworld), report_dir=tmp_path / "r")
    findings = {f["control_id"]: f for f in run.findings("repos")}
    assert {c: f["status"] for c, f in findings.items()} == {c: "pass" for c in REPO_CONTROLS}, findings
    assert findings["repo.make.targets"]["evidence"]["made_by_pattern_rules"]["railiance-platform"] == \
        ["db-status", "valkey-status"]


def test_a_plaintext_leaf_in_the_second_document_is_found(tmp_path):
    root = _realworld(tmp_path / "repos", plaintext_in_second=True)
    run = run_suite("-m", "repos", "--repos", str(root), report_dir=tmp_path / "r")
    finding = next(f for f in run.findings("repos") if f["control_id"] == "repo.sops.encrypted")
    assert finding["status"] == "drift"
    assert finding["observed"] == {"railiance-cluster/secrets/backup-s3-credentials.sops.yaml": {
        "problems": [], "plaintext_keys": ["[document 2] stringData.ACCESS_SECRET_KEY"]}}
    output = run.stdout + "".join(p.read_bytes().decode("utf-8", "replace") for p in run.report_dir.iterdir()
                                  if p.is_file())
    assert "SNTLplainrw" not in output
