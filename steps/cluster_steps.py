"""Step definitions for the cluster features (T03 CloudNativePG, T04 Gitea on cnpg, T05 Valkey,
T09/T10 pending) and the cross-layer NodePort used by the host T07 check.

The Given step hands over the cluster snapshot (read lazily, one LIST per kind per run); each
Then step evaluates one control through the recorder.
"""
from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then

import railiance_conformance.controls.cluster  # noqa: F401  (registers the cluster evaluators)
from railiance_conformance.controls import EVALUATORS
from railiance_conformance.controls.cluster import gitea_ssh_nodeport
from railiance_conformance.plugin import enforce
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.probes.host_facts import FactUnavailable


@given("the cluster, read through the Kubernetes API", target_fixture="cluster")
def _(cluster_snapshot) -> ClusterSnapshot:
    return cluster_snapshot


@pytest.fixture
def check_cluster(cluster: ClusterSnapshot, suite_state, recorder):
    """``check_cluster("cluster.gitea_db.healthy")``: evaluate one control on the cluster."""
    def check(control_id: str) -> None:
        finding = recorder.evaluate(control_id, cluster.name,
                                    lambda: EVALUATORS[control_id](cluster, suite_state.cluster_desired))
        enforce(finding)
    return check


@pytest.fixture(scope="session")
def gitea_nodeport(suite_state, cluster_snapshot):
    """Gitea's SSH NodePort as the cluster reports it, for host.gitea_ssh.config.

    Without cluster access configured, the inventory's gitea_ssh_nodeport is used instead ({}).
    If the cluster is configured but cannot tell, the reason becomes the host check's error.
    """
    if not suite_state.cluster_access.configured():
        return {}
    try:
        return {"gitea_ssh_nodeport": gitea_ssh_nodeport(cluster_snapshot, suite_state.cluster_desired)}
    except (FactUnavailable, LookupError) as exc:
        return FactUnavailable(f"Gitea's SSH NodePort from the cluster: {exc}")


@then("the CloudNativePG operator Deployment is available")
def _(check_cluster):
    check_cluster("cluster.cnpg.operator")


@then("Cluster gitea-db has the policy instances, PostgreSQL major, storage and bootstrap")
def _(check_cluster):
    check_cluster("cluster.gitea_db.spec")


@then('gitea-db is "Cluster in healthy state" with every instance ready')
def _(check_cluster):
    check_cluster("cluster.gitea_db.healthy")


@then("Secret gitea-db-credentials has the username and password keys")
def _(check_cluster):
    check_cluster("cluster.gitea_db.credentials")


@then("no postgresql-ha pod or StatefulSet is left in any namespace")
def _(check_cluster):
    check_cluster("cluster.postgresql_ha.absent")


@then("Gitea's database config points at gitea-db-rw in databases")
def _(check_cluster):
    check_cluster("cluster.gitea.database")


@then("the Gitea Deployment is available with all replicas ready")
def _(check_cluster):
    check_cluster("cluster.gitea.available")


@then("the standalone Valkey release in platform is deployed, ready, with auth and its volume bound")
def _(check_cluster):
    check_cluster("cluster.valkey.release")


@then("no redis-cluster pod or StatefulSet is left in any namespace")
def _(check_cluster):
    check_cluster("cluster.redis_cluster.absent")


@then("Gitea's cache, session and queue use Valkey db 0, 1 and 2")
def _(check_cluster):
    check_cluster("cluster.gitea.cache")


@then(parsers.parse('"{control_id}" stays pending until a human approves the task'))
def _(control_id: str, check_cluster):
    check_cluster(control_id)
