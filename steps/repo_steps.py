"""Step definitions for the repo checks (T03, T06, T08): one Then step per repo check kind, generated
from the vocabulary (``railiance_conformance.controls.repo``).

The repo checkouts come from ``--repos DIR`` (the railiance-* checkouts side by side, named in
``policies/layers.yaml`` repos.names); what each must hold is stated by the feature's sentence.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then

import railiance_conformance.controls.repo  # noqa: F401  (registers the repo check kinds)
from railiance_conformance.finding import Outcome
from railiance_conformance.plugin import enforce
from railiance_conformance.probes.host_facts import FactUnavailable
from railiance_conformance.vocabulary import KINDS

REPOS_TARGET = "repos"


@given("the railiance-* repo checkouts", target_fixture="repos")
def _(repos_dir, layer_map) -> dict[str, Path] | FactUnavailable:
    if repos_dir is None:
        return FactUnavailable("no repo checkouts given: use --repos DIR (the railiance-* checkouts side by side)")
    names = layer_map["repos"]["names"]
    return {name: repos_dir / name for name in names}


@pytest.fixture
def check_repos(repos, recorder, check_plan, scenario_control):
    """Evaluate this scenario's control on the checkouts with the params its sentence states."""
    def check() -> None:
        control_id = scenario_control

        def evaluate() -> Outcome:
            if isinstance(repos, Exception):
                raise repos
            spec = check_plan.spec(control_id)
            params, sources = check_plan.params(control_id, None)
            outcome = KINDS[spec.kind].evaluate(repos, params)
            return Outcome(outcome.status, outcome.expected, outcome.observed, outcome.reason,
                           (*outcome.evidence, ("expected_from", dict(sorted(sources.items())))))
        enforce(recorder.evaluate(control_id, REPOS_TARGET, evaluate))
    return check


for _kind in [k for k in KINDS.values() if k.target == "repo"]:
    @then(parsers.re(_kind.sentence.pattern))
    def _(check_repos, **_params):
        check_repos()
