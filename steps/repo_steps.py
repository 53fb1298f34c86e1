"""Step definitions for the repo checks and the layer boundaries (T03, T06, T08).

The repo checkouts come from ``--repos DIR`` (the railiance-* checkouts side by side); the layer
map from ``policies/layers.yaml``. Each Then step evaluates one control through the recorder.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import given, then

import railiance_conformance.controls.boundary  # noqa: F401  (registers the boundary evaluators)
import railiance_conformance.controls.repo  # noqa: F401  (registers the repo evaluators)
from railiance_conformance.controls import EVALUATORS
from railiance_conformance.plugin import enforce
from railiance_conformance.probes.host_facts import FactUnavailable

REPOS_TARGET = "repos"


@given("the railiance-* repo checkouts", target_fixture="repos")
def _(suite_state) -> dict[str, Path] | FactUnavailable:
    if suite_state.repos_dir is None:
        return FactUnavailable("no repo checkouts given: use --repos DIR (the railiance-* checkouts side by side)")
    names = suite_state.layer_map["repos"]["names"]
    return {name: suite_state.repos_dir / name for name in names}


@pytest.fixture
def check_repos(repos, suite_state, recorder):
    def check(control_id: str) -> None:
        def evaluate():
            if isinstance(repos, Exception):
                raise repos
            return EVALUATORS[control_id](repos, suite_state.layer_map)
        enforce(recorder.evaluate(control_id, REPOS_TARGET, evaluate))
    return check


@pytest.fixture
def check_boundary(cluster, suite_state, recorder):
    def check(control_id: str) -> None:
        enforce(recorder.evaluate(control_id, cluster.name,
                                  lambda: EVALUATORS[control_id](cluster, suite_state.layer_map)))
    return check


@then("the db, valkey, gitea and deploy-stack targets exist in make's database")
def _(check_repos):
    check_repos("repo.make.targets")


@then("every *.sops.yaml file is SOPS-encrypted with a mac and no plaintext value")
def _(check_repos):
    check_repos("repo.sops.encrypted")


@then("RAIL-PL-WP-0001 says it is superseded")
def _(check_repos):
    check_repos("repo.workplan.superseded")


@then("docs/deploy-stack.md is complete and deploy-stack prints S1 to S5 in order")
def _(check_repos):
    check_repos("repo.deploy_stack.doc")


@then("gitea-values.sops.yaml is in railiance-apps with a tombstone in railiance-cluster")
def _(check_repos):
    check_repos("boundary.values.location")


@then("every namespace of the cluster is declared in the layer map")
def _(check_boundary):
    check_boundary("boundary.namespace.owned")


@then("every component is deployed from the repo of its namespace's layer")
def _(check_boundary):
    check_boundary("boundary.component.layer")


@then("every workload is managed by Helm, Argo CD or its operator")
def _(check_boundary):
    check_boundary("boundary.component.manager")
