"""repo.goss.swap and repo.goss.nproc on fixture checkouts, in-process: railiance-infra's
goss files test each value T01/T02 state, read as goss resources (file size, kernel-param, command stdout,
limits.conf contents); the params are those features/X/goss.feature states."""
from __future__ import annotations

import subprocess

import pytest

from railiance_conformance.checks import evaluate_control
from railiance_conformance.finding import Status
from railiance_conformance.vocabulary import check_kinds
from railiance_testbed.repos import build_repos

SWAP = {"/swapfile is 4 GiB": "tested", "vm.swappiness is 10": "tested"}
NPROC = {"tegwick's nproc is soft 512 and hard 1024": "tested"}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("goss")
    return {v: build_repos(root / v, v) for v in ("conformant", "drifted")}


def test_conformant_goss_files_test_every_value(repos):
    swap = evaluate_control("repo.goss.swap", repos["conformant"])
    assert (swap.status, swap.observed) == (Status.PASS, SWAP)
    assert dict(swap.evidence)["tested_in"] == {"/swapfile is 4 GiB": ["goss/swapfile.yaml"],
                                                 "vm.swappiness is 10": ["goss/swapfile.yaml"]}
    nproc = evaluate_control("repo.goss.nproc", repos["conformant"])
    assert (nproc.status, nproc.observed) == (Status.PASS, NPROC)


def test_drifted_goss_files_miss_the_size_and_the_hard_limit(repos):
    swap = evaluate_control("repo.goss.swap", repos["drifted"])
    assert (swap.status, swap.observed) == (Status.DRIFT, {"/swapfile is 4 GiB": "no goss test",
                                                           "vm.swappiness is 10": "tested"})
    nproc = evaluate_control("repo.goss.nproc", repos["drifted"])
    assert (nproc.status, nproc.observed) == (
        Status.DRIFT, {"tegwick's nproc is soft 512 and hard 1024": "only the soft limit is tested"})


def commit(repo, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)


def test_limits_contents_count_and_a_templated_file_is_named(tmp_path):
    repos = build_repos(tmp_path, "conformant")
    infra = repos["railiance-infra"]
    (infra / "goss" / "limits.yaml").unlink()
    commit(infra, {"roles/security/files/limits.goss.yaml":
                   "file:\n  /etc/security/limits.conf:\n    exists: true\n"
                   "    contents: ['/^tegwick\\s+soft\\s+nproc\\s+512/', '/^tegwick\\s+hard\\s+nproc\\s+1024/']\n",
                   "goss/templated.yaml": "file:\n  /swapfile:\n    size: {{ .Vars.swap_bytes }}\n"})
    nproc = evaluate_control("repo.goss.nproc", repos)
    assert nproc.status is Status.PASS, nproc
    assert dict(nproc.evidence)["tested_in"] == {"tegwick's nproc is soft 512 and hard 1024":
                                                 ["roles/security/files/limits.goss.yaml"]}
    assert dict(nproc.evidence)["not_yaml"] == ["goss/templated.yaml"]


def test_other_values_drift_and_no_checkout_is_an_error(repos):
    changed = evaluate_control("repo.goss.nproc", repos["conformant"], {})
    assert changed.status is Status.PASS
    outcome = check_kinds()["repo.goss.tests"].evaluate(repos["conformant"], {"repo": "railiance-infra", "tests": [
        {"nproc_user": "tegwick", "soft": 256, "hard": 1024}, {"kernel_param": "vm.swappiness", "value": 60}]})
    assert outcome.status is Status.DRIFT
    assert outcome.observed == {"tegwick's nproc is soft 256 and hard 1024": "only the hard limit is tested",
                                "vm.swappiness is 60": "no goss test"}
    missing = check_kinds()["repo.goss.tests"].evaluate({}, {"repo": "railiance-infra", "tests": [
        {"kernel_param": "vm.swappiness", "value": 10}]})
    assert missing.status is Status.ERROR and "no checkout of railiance-infra" in missing.reason
