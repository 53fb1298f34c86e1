"""Step definitions for the cluster features (S2 baseline, T03 CloudNativePG, T04 Gitea on cnpg, T05
Valkey, T06 layer boundaries, T09/T10 pending): one Then step per cluster check kind, generated from
the vocabulary; and the cross-layer NodePort used by the host T07 check.

The Given step hands over the cluster snapshot (read lazily: only the kinds the selected scenarios'
check kinds read, one LIST per kind per run); each Then sentence is a check kind
(``railiance_conformance.controls.cluster`` / ``.boundary``) whose params were parsed and validated
before any probe ran (``vocabulary.load_specs``).
"""
from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then

import railiance_conformance.controls.boundary  # noqa: F401  (registers the boundary check kinds)
from railiance_conformance.controls.cluster import ClusterEnv, service_nodeport as nodeport_of
from railiance_conformance.finding import Outcome
from railiance_conformance.plugin import enforce
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.probes.host_facts import FactUnavailable
from railiance_conformance.vocabulary import KINDS


@given("the cluster, read through the Kubernetes API", target_fixture="cluster")
def _(cluster_snapshot) -> ClusterSnapshot:
    return cluster_snapshot


@pytest.fixture(scope="session")
def cluster_env(cluster_policy, layer_map) -> ClusterEnv:
    """What is not a sentence: the cluster domain (policies/cluster.yaml) and the layer map (policies/layers.yaml)."""
    return ClusterEnv(cluster_domain=(cluster_policy or {}).get("cluster_domain", "cluster.local"), layer_map=layer_map)


@pytest.fixture
def check_cluster(cluster: ClusterSnapshot, cluster_env: ClusterEnv, recorder, check_plan, scenario_control):
    """Evaluate this scenario's control on the cluster with the params its sentence states."""
    def check() -> None:
        control_id = scenario_control

        def evaluate() -> Outcome:
            spec = check_plan.spec(control_id)
            params, sources = check_plan.params(control_id, None)
            outcome = KINDS[spec.kind].evaluate(cluster, params, cluster_env)
            return Outcome(outcome.status, outcome.expected, outcome.observed, outcome.reason,
                           (*outcome.evidence, ("expected_from", dict(sorted(sources.items())))))
        enforce(recorder.evaluate(control_id, cluster.name, evaluate))
    return check


@pytest.fixture(scope="session")
def service_nodeport(cluster_configured, cluster_snapshot):
    """``service_nodeport("gitea/gitea-ssh")`` -> the NodePort the cluster reports, for host checks whose
    sentence says "Port the NodePort of Service NS/NAME". None without cluster access (the host's
    inventory var then gives the port); a Service the cluster cannot tell about raises FactUnavailable.
    """
    if not cluster_configured:
        return None

    def lookup(service: str) -> int:
        namespace, _, name = service.partition("/")
        try:
            return nodeport_of(cluster_snapshot, namespace, name)
        except (FactUnavailable, LookupError) as exc:
            raise FactUnavailable(f"the NodePort of Service {service} from the cluster: {exc}") from None
    return lookup


for _kind in [k for k in KINDS.values() if k.target == "cluster"]:
    @then(parsers.re(_kind.sentence.pattern))
    def _(check_cluster, **_params):
        check_cluster()
