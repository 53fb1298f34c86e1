"""The drift scenarios (tests/testbed/drift_scenarios.py) served by the Kubernetes API stand-in: the
unmodified ``kubernetes`` client (built from an explicit ``config_file=``, never $KUBECONFIG) reads back
every object the overlay changes or deletes, and, for the scenarios written to a brief, the change the
brief describes (``SPOT_CHECKS``); the client only ever reads.
"""
from __future__ import annotations

import copy
import json

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import NotFoundError

from railiance_testbed.kubeapi import KubeAPIStandIn
from railiance_testbed.kubeapi.dump import object_key
from railiance_testbed.kubeapi.helm_release import decode_release
from tests.testbed.drift_scenarios import BRIEF, DRIFTED_DIR, SCENARIOS, _ini, layered, overlay_files


# --- read back through the stand-in with the kubernetes client ----------------------------------
def _decoded(secret: client.V1Secret, key: str) -> dict[str, str]:
    return _ini({"data": secret.data}, key)


def _waiting_reasons(pods) -> set[str]:
    return {cs.state.waiting.reason for p in pods for cs in p.status.container_statuses or [] if cs.state.waiting}


def _cnpg_operator_down(api, tmp_path):
    dep = client.AppsV1Api(api).read_namespaced_deployment("cnpg-controller-manager", "cnpg-system")
    assert dep.spec.replicas == 1 and not dep.status.available_replicas and not dep.status.ready_replicas
    assert {c.type: c.status for c in dep.status.conditions}["Available"] == "False"
    pods = client.CoreV1Api(api).list_namespaced_pod("cnpg-system", label_selector="app.kubernetes.io/name=cloudnative-pg")
    assert _waiting_reasons(pods.items) == {"CrashLoopBackOff"}


def _gitea_db_cluster(api, tmp_path):
    dyn = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    return dyn.resources.get(api_version="postgresql.cnpg.io/v1", kind="Cluster").get(namespace="databases",
                                                                                      name="gitea-db")


def _gitea_db_spec_drift(api, tmp_path):
    cluster = _gitea_db_cluster(api, tmp_path)
    assert cluster.spec.imageName == "ghcr.io/cloudnative-pg/postgresql:15.8"
    assert cluster.spec.storage.size == "5Gi" and cluster.spec.instances == 1
    assert cluster.status.phase == "Cluster in healthy state" and cluster.status.readyInstances == 1
    pvc = client.CoreV1Api(api).read_namespaced_persistent_volume_claim("gitea-db-1", "databases")
    assert pvc.status.capacity["storage"] == "5Gi" and pvc.status.phase == "Bound"


def _gitea_db_degraded(api, tmp_path):
    cluster = _gitea_db_cluster(api, tmp_path)
    assert cluster.status.phase == "Waiting for the instances to become active"
    assert cluster.status.readyInstances == 0 and cluster.spec.instances == 1
    assert cluster.spec.imageName == "ghcr.io/cloudnative-pg/postgresql:16.6"
    status, health = _gitea_health(api)
    assert status == 424 and health["checks"]["database:ping"][0]["status"] == "fail"
    assert health["checks"]["cache:ping"][0]["status"] == "pass"


def _gitea_health(api) -> tuple[int, dict]:
    """Gitea's /api/healthz through the stand-in's service proxy, read by the official client
    (CoreV1Api.connect_get_namespaced_service_proxy_with_path: a 424 is an ApiException there)."""
    try:
        raw = client.CoreV1Api(api).connect_get_namespaced_service_proxy_with_path(
            "http:gitea-http:3000", "gitea", "api/healthz", _preload_content=False)
        return raw.status, json.loads(raw.data)
    except ApiException as exc:
        return exc.status, json.loads(exc.body)


def _gitea_cache_down(api, tmp_path):
    status, health = _gitea_health(api)
    assert status == 424 and health["status"] == "fail"
    assert {k: v[0]["status"] for k, v in health["checks"].items()} == {"database:ping": "pass", "cache:ping": "fail"}
    served = client.CoreV1Api(api).read_namespaced_service("gitea-http", "gitea")
    assert not any("railiance" in k for k in served.metadata.annotations)  # the declaration is not served


def _gitea_db_archiving_failing(api, tmp_path):
    cluster = _gitea_db_cluster(api, tmp_path)
    conditions = {c["type"]: c["status"] for c in cluster.status.conditions}
    assert conditions["ContinuousArchiving"] == "False" and cluster.status.phase == "Cluster in healthy state"
    assert cluster.status.readyInstances == 1
    dyn = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    backups = dyn.resources.get(api_version="postgresql.cnpg.io/v1", kind="Backup").get(namespace="databases").items
    newest = max(backups, key=lambda b: b.status.stoppedAt)
    assert newest.status.phase == "failed"


def _gitea_db_credentials_missing(api, tmp_path):
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_secret("gitea-db-credentials", "databases")
    assert raised.value.status == 404
    assert "gitea-db-credentials" not in {s.metadata.name for s in core.list_namespaced_secret("databases").items}


def _leftover(api, app, name, pods):
    statefulsets = client.AppsV1Api(api).list_stateful_set_for_all_namespaces(
        label_selector=f"app.kubernetes.io/name={app}").items
    assert [(s.metadata.namespace, s.metadata.name) for s in statefulsets] == [("gitea", name)]
    assert statefulsets[0].metadata.labels["app.kubernetes.io/instance"] == "gitea"
    assert statefulsets[0].status.ready_replicas == statefulsets[0].spec.replicas == pods
    running = client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector=f"app.kubernetes.io/name={app}").items
    assert sorted(p.metadata.name for p in running) == [f"{name}-{i}" for i in range(pods)]
    assert {p.status.phase for p in running} == {"Running"}


def _postgresql_ha_leftover(api, tmp_path):
    _leftover(api, "postgresql-ha", "gitea-postgresql-ha-postgresql", 1)


def _redis_cluster_leftover(api, tmp_path):
    _leftover(api, "redis-cluster", "gitea-redis-cluster", 3)


def _gitea_still_available(api):
    dep = client.AppsV1Api(api).read_namespaced_deployment("gitea", "gitea")
    assert dep.status.available_replicas == dep.status.ready_replicas == dep.spec.replicas == 1


def _gitea_on_internal_db(api, tmp_path):
    secret = client.CoreV1Api(api).read_namespaced_secret("gitea-inline-config", "gitea")
    database = _decoded(secret, "database")
    assert database["HOST"] == "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432"
    assert database["PASSWD"] == "DRIFT-SECRET-VALUE-gitea-on-internal-db-db-password"
    assert "valkey.platform.svc.cluster.local:6379/0" in _decoded(secret, "cache")["HOST"]
    _gitea_still_available(api)


def _gitea_unavailable(api, tmp_path):
    dep = client.AppsV1Api(api).read_namespaced_deployment("gitea", "gitea")
    assert dep.spec.replicas == 1 and not dep.status.ready_replicas and not dep.status.available_replicas
    pods = client.CoreV1Api(api).list_namespaced_pod("gitea", label_selector="app.kubernetes.io/name=gitea")
    assert _waiting_reasons(pods.items) == {"CrashLoopBackOff"}


def _gitea_cache_on_redis_cluster(api, tmp_path):
    secret = client.CoreV1Api(api).read_namespaced_secret("gitea-inline-config", "gitea")
    for key, field in (("cache", "HOST"), ("session", "PROVIDER_CONFIG"), ("queue", "CONN_STR")):
        url = _decoded(secret, key)[field]
        assert "@gitea-redis-cluster-headless.gitea.svc.cluster.local:6379/" in url, (key, url)
        assert ":DRIFT-SECRET-VALUE-gitea-cache-on-redis-cluster-redis-password@" in url
    assert _decoded(secret, "database")["HOST"] == "gitea-db-rw.databases.svc.cluster.local:5432"
    _gitea_still_available(api)


def _valkey_release_failed(api, tmp_path):
    core = client.CoreV1Api(api)
    releases = core.list_namespaced_secret("platform", label_selector="owner=helm,name=valkey").items
    status = {int(s.metadata.labels["version"]): decode_release(s.data["release"])["info"]["status"] for s in releases}
    assert status == {1: "deployed", 2: "failed"}
    v2 = decode_release(core.read_namespaced_secret("sh.helm.release.v1.valkey.v2", "platform").data["release"])
    assert v2["config"]["auth"]["enabled"] is True and v2["info"]["description"].startswith('Upgrade "valkey" failed')
    sts = client.AppsV1Api(api).read_namespaced_stateful_set("valkey-primary", "platform")
    assert sts.spec.replicas == 1 and not sts.status.ready_replicas
    pvc = core.read_namespaced_persistent_volume_claim("valkey-data-valkey-primary-0", "platform")
    assert pvc.status.phase == "Pending" and not pvc.status.capacity
    assert "valkey-password" in core.read_namespaced_secret("valkey", "platform").data


def _gitea_ssh_nodeport_changed(api, tmp_path):
    port = client.CoreV1Api(api).read_namespaced_service("gitea-ssh", "gitea").spec.ports[0]
    assert (port.name, port.port, port.node_port) == ("ssh", 22, 30122)


def _read_back(api, tmp_path, scenario):
    """Every object the overlay writes is served as written; every object it deletes is gone."""
    dyn = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    objects = {object_key(o): o for o in layered(scenario)}
    for path in overlay_files(DRIFTED_DIR / scenario):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc:
                continue
            for entry in doc.get("delete") or []:
                resource = dyn.resources.get(api_version=entry.get("apiVersion", "v1"), kind=entry["kind"])
                with pytest.raises(NotFoundError):
                    resource.get(namespace=entry.get("namespace"), name=entry["name"])
            if "kind" in doc:
                written = doc.get("items", [doc])
            else:  # a patch: document changes earlier objects (an RFC 7386 merge patch each)
                written = doc["patch"] if isinstance(doc.get("patch"), list) else [doc["patch"]] if doc.get("patch") else []
            for obj in written:
                want = objects[object_key(obj)]
                served = dyn.resources.get(api_version=want["apiVersion"], kind=want["kind"]).get(
                    namespace=want["metadata"].get("namespace"), name=want["metadata"]["name"]).to_dict()
                for part in ("spec", "status", "data"):
                    assert served.get(part) == want.get(part), (scenario, want["kind"], want["metadata"]["name"], part)


SPOT_CHECKS = {
    "cnpg-operator-down": _cnpg_operator_down,
    "gitea-db-spec-drift": _gitea_db_spec_drift,
    "gitea-db-degraded": _gitea_db_degraded,
    "gitea-db-credentials-missing": _gitea_db_credentials_missing,
    "postgresql-ha-leftover": _postgresql_ha_leftover,
    "gitea-on-internal-db": _gitea_on_internal_db,
    "gitea-unavailable": _gitea_unavailable,
    "redis-cluster-leftover": _redis_cluster_leftover,
    "gitea-cache-on-redis-cluster": _gitea_cache_on_redis_cluster,
    "valkey-release-failed": _valkey_release_failed,
    "gitea-ssh-nodeport-changed": _gitea_ssh_nodeport_changed,
    "gitea-cache-down": _gitea_cache_down,
    "gitea-db-archiving-failing": _gitea_db_archiving_failing,
}


assert set(SPOT_CHECKS) == set(BRIEF)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_kubernetes_client_reads_the_drift_from_the_stand_in(request, tmp_path, scenario):
    standin = KubeAPIStandIn(copy.deepcopy(layered(scenario)))
    request.addfinalizer(standin.stop)  # registered before start: stopped even if the test fails
    standin.start()
    api = config.new_client_from_config(config_file=str(standin.write_kubeconfig(tmp_path / "kubeconfig")))
    request.addfinalizer(api.close)
    _read_back(api, tmp_path, scenario)
    if scenario in SPOT_CHECKS:
        SPOT_CHECKS[scenario](api, tmp_path)
    assert {r.method for r in standin.request_log} == {"GET"}
