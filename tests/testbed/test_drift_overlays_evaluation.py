"""The drift scenarios (tests/testbed/drift_scenarios.py) as the suite's own check kinds evaluate them,
in-process: ``check_kinds()[spec.kind].evaluate(ClusterSnapshot.from_objects(objects), params)`` with the
params the bundled features state; no subprocess, no API server.

Every cluster control passes on the conformant dump and has a fail fixture; each overlay drifts EXACTLY
the controls its ``expected.yaml`` lists and every other cluster control passes -- so an overlay that
also breaks a neighbouring control fails here.
"""
from __future__ import annotations

import copy

import pytest

from railiance_conformance.controls.cluster import service_nodeport
from railiance_conformance.finding import Status
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.vocabulary import check_kinds
from railiance_testbed.kubeapi.proxy import resolver
from tests.testbed.drift_scenarios import (
    CLUSTER_CONTROLS,
    CONFORMANT_SSH_NODEPORT,
    PLAN,
    SCENARIOS,
    conformant,
    expected,
    layered,
)


# --- the suite's own evaluation, in-process -------------------------------------------------------
def evaluate(objects) -> dict[str, Status]:
    """Every cluster control's status on plain objects, with the params its feature states; the service
    proxy answers what the dump declares for a Service (``railiance_testbed.kubeapi.proxy``)."""
    objects = copy.deepcopy(objects)
    snap = ClusterSnapshot.from_objects(objects, proxied=resolver(objects))
    return {c: check_kinds()[PLAN.spec(c).kind].evaluate(snap, PLAN.spec(c).params).status for c in CLUSTER_CONTROLS}


def drifted_controls(objects) -> set[str]:
    statuses = evaluate(objects)
    assert set(statuses.values()) <= {Status.PASS, Status.DRIFT}, statuses  # never could-not-verify here
    return {c for c, status in statuses.items() if status is Status.DRIFT}


def gitea_ssh_nodeport(objects) -> int:
    return service_nodeport(ClusterSnapshot.from_objects(objects), "gitea", "gitea-ssh")


def test_every_cluster_control_passes_on_the_conformant_dump():
    objects = conformant()
    assert evaluate(objects) == {c: Status.PASS for c in CLUSTER_CONTROLS}
    assert gitea_ssh_nodeport(objects) == CONFORMANT_SSH_NODEPORT


def test_every_cluster_control_has_a_fail_fixture():
    drifted = set().union(*(set(expected(s)["drift"]) for s in SCENARIOS))
    assert drifted == set(CLUSTER_CONTROLS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlay_drifts_exactly_the_expected_controls(scenario):
    objects = layered(scenario)
    spec = expected(scenario)
    assert drifted_controls(objects) == set(spec["drift"])
    nodeport = (spec.get("cross_layer") or {}).get("gitea_ssh_nodeport", CONFORMANT_SSH_NODEPORT)
    assert gitea_ssh_nodeport(objects) == nodeport
