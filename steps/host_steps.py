"""Step definitions for the host features: one Then step per host check kind, generated from the vocabulary.

Steps stay thin: the Given step hands over the host's facts (gathered once per host, in one
SSH command composed from the selected scenarios' facts); each Then sentence is a check kind
(``railiance_conformance.controls.host``) whose params were parsed and validated before any
probe ran (``vocabulary.load_specs``) and are resolved per host here (inventory vars win).
"""
from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then

import railiance_conformance.controls.host  # noqa: F401  (registers the host check kinds)
from railiance_conformance.finding import Outcome
from railiance_conformance.plugin import enforce
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.secret_mask import evaluate_with_secrets
from railiance_conformance.vocabulary import KINDS


@given("the host's facts, gathered in one SSH command", target_fixture="host_facts")
def _(target_host, fact_store) -> HostFacts:
    if target_host is None:
        return HostFacts("(no hosts)", failure="no host targets given: use --hosts URL or --ansible-inventory PATH")
    return fact_store.get(target_host)


@pytest.fixture
def check_host(target_host, host_facts: HostFacts, recorder, check_plan, scenario_control, service_nodeport):
    """Evaluate this scenario's control on this scenario's host, with its params for that host."""
    def check() -> None:
        control_id = scenario_control

        def evaluate() -> Outcome:
            spec = check_plan.spec(control_id)
            params, sources = check_plan.params(control_id, target_host)
            if "nodeport_service" in params and service_nodeport is not None:
                # cross-layer: the Port is the NodePort the cluster reports (it wins over the inventory's)
                service = params["nodeport_service"]
                params = {**params, "port": service_nodeport(service)}
                sources = {**sources, "port": f"Service {service} (the cluster)"}
            secret = check_plan.secret_params(control_id, target_host)
            outcome = evaluate_with_secrets(KINDS[spec.kind].evaluate, host_facts, params, secret)
            # a Finding says where its expected value came from (the feature's line or the inventory's)
            return Outcome(outcome.status, outcome.expected, outcome.observed, outcome.reason,
                           (*outcome.evidence, ("expected_from", dict(sorted(sources.items())))))
        enforce(recorder.evaluate(control_id, host_facts.target, evaluate))
    return check


for _kind in [k for k in KINDS.values() if k.target == "host"]:
    @then(parsers.re(_kind.sentence.pattern))
    def _(check_host, **_params):
        check_host()
