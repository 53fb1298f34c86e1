"""The drift overlays in ``railiance_testbed/kubeapi/dumps/drifted/<scenario>/``: the cluster controls'
fail fixtures (the conformant dump is their pass fixture), as ansible-lint keeps rule-*-pass/fail.

Each scenario directory holds overlay YAML (objects replacing conformant ones, ``delete:``
documents, ``patch:`` documents: RFC 7386 merge patches of conformant objects) and an ``expected.yaml``: a one-line ``description``, the ``drift`` list of cluster
control ids that must drift when the overlay is layered over ``dumps/conformant``, and for the
cross-layer case ``cross_layer``. Checked here, for every scenario directory found:

* it layers cleanly over the conformant dump and ``expected.yaml`` is well formed;
* it drifts EXACTLY the controls it lists, as the suite's own check kinds evaluate them
  in-process (``check_kinds()[spec.kind].evaluate(ClusterSnapshot.from_objects(objects), params)`` with the
  params the bundled features state; no subprocess, no API server), and every other cluster
  control passes -- so an overlay that also breaks a neighbouring control fails here;
* every secret value it adds or changes is a ``DRIFT-SECRET-VALUE-<scenario>-<what>`` marker;
* served by the stand-in API, the unmodified ``kubernetes`` client (built from an explicit
  ``config_file=``, never $KUBECONFIG) reads back every object the overlay changes or deletes,
  and, for the scenarios written to a brief, the change the brief describes.

``expected.yaml`` is not a dump document, so the overlay is layered as its dump files
(``overlay_files``): ``load_dump`` reads every ``*.yaml`` of a directory it is given.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import NotFoundError

from railiance_conformance.checks import bundled_plan
from railiance_conformance.controls.cluster import service_nodeport
from railiance_conformance.finding import Status
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.vocabulary import check_kinds
from railiance_testbed.kubeapi import CONFORMANT_DUMP, DUMPS_DIR, KubeAPIStandIn, load_dump
from railiance_testbed.kubeapi.dump import DUMP_SUFFIXES, object_key
from railiance_testbed.kubeapi.helm_release import decode_release
from railiance_testbed.kubeapi.proxy import resolver

DRIFTED_DIR = DUMPS_DIR / "drifted"
EXPECTED_FILE = "expected.yaml"
PLAN = bundled_plan()
# every cluster control the features state (the catalog's cluster.* ids that are not pending)
CLUSTER_CONTROLS = tuple(sorted(c for c in PLAN.specs if c.startswith("cluster.") and not PLAN.catalog[c].pending))
CONFORMANT_SSH_NODEPORT = 30022
SCENARIOS = sorted(p.name for p in DRIFTED_DIR.iterdir() if p.is_dir())

# The scenarios written to a brief, and what each must drift (new scenarios are held to their expected.yaml).
BRIEF = {
    "cnpg-operator-down": {"cluster.cnpg.operator"},
    "gitea-db-spec-drift": {"cluster.gitea_db.spec", "cluster.gitea_db.status"},  # its WAL archiving fails too
    "gitea-db-degraded": {"cluster.gitea_db.healthy", "cluster.gitea_db.status", "cluster.gitea.db_health"},
    "gitea-db-credentials-missing": {"cluster.gitea_db.credentials"},
    "postgresql-ha-leftover": {"cluster.postgresql_ha.absent"},
    "gitea-on-internal-db": {"cluster.gitea.database"},
    "gitea-unavailable": {"cluster.gitea.available"},
    "redis-cluster-leftover": {"cluster.redis_cluster.absent"},
    "gitea-cache-on-redis-cluster": {"cluster.gitea.cache"},
    "valkey-release-failed": {"cluster.valkey.release"},
    "gitea-ssh-nodeport-changed": set(),
    "gitea-cache-down": {"cluster.gitea.cache_health"},
    "gitea-db-archiving-failing": {"cluster.gitea_db.status"},
}
CROSS_LAYER = {"gitea-ssh-nodeport-changed": {"gitea_ssh_nodeport": 30122}}

MARKER = re.compile(r"DRIFT-SECRET-VALUE-[A-Za-z0-9._-]+")
CONFORMANT_MARKER = "CONFORMANT-SECRET-VALUE-"


def overlay_files(scenario_dir: Path) -> list[Path]:
    """The dump files of a scenario directory, in the order load_dump reads a directory."""
    return sorted(p for p in scenario_dir.iterdir()
                  if p.is_file() and p.suffix in DUMP_SUFFIXES and p.name != EXPECTED_FILE)


@functools.cache
def conformant() -> list[dict]:
    """The conformant dump, loaded once; callers only read it."""
    return load_dump(CONFORMANT_DUMP)


@functools.cache
def layered(scenario: str) -> list[dict]:
    """The conformant dump with the scenario's overlay layered on, loaded once; callers only read it."""
    return load_dump([CONFORMANT_DUMP, *overlay_files(DRIFTED_DIR / scenario)])


def expected(scenario: str) -> dict:
    return yaml.safe_load((DRIFTED_DIR / scenario / EXPECTED_FILE).read_text(encoding="utf-8"))


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


def _ns(obj: dict) -> str:
    return obj["metadata"].get("namespace") or ""


def _find(objects, kind, namespace, name) -> dict | None:
    return next((o for o in objects if (o["kind"], _ns(o), o["metadata"]["name"]) == (kind, namespace, name)), None)


def _secret_text(secret: dict, key: str) -> str:
    return base64.b64decode((secret.get("data") or {}).get(key, "")).decode()


def _ini(secret: dict | None, key: str) -> dict[str, str]:
    if secret is None:
        return {}
    pairs = (line.split("=", 1) for line in _secret_text(secret, key).splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def _inline_config(objects) -> dict | None:
    return _find(objects, "Secret", "gitea", "gitea-inline-config")


# --- the scenario directories ------------------------------------------------------------------
def test_every_scenario_has_an_overlay_directory_and_nothing_else_is_there():
    assert sorted(p.name for p in DRIFTED_DIR.iterdir()) == SCENARIOS
    assert set(BRIEF) <= set(SCENARIOS)
    for name in SCENARIOS:
        files = {p.name for p in (DRIFTED_DIR / name).iterdir()}
        assert EXPECTED_FILE in files and overlay_files(DRIFTED_DIR / name), name


def test_every_cluster_control_passes_on_the_conformant_dump():
    objects = conformant()
    assert evaluate(objects) == {c: Status.PASS for c in CLUSTER_CONTROLS}
    assert gitea_ssh_nodeport(objects) == CONFORMANT_SSH_NODEPORT


def test_every_cluster_control_has_a_fail_fixture():
    drifted = set().union(*(set(expected(s)["drift"]) for s in SCENARIOS))
    assert drifted == set(CLUSTER_CONTROLS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_expected_yaml_is_well_formed(scenario):
    spec = expected(scenario)
    assert isinstance(spec, dict) and {"description", "drift"} <= set(spec) <= {"description", "drift", "cross_layer"}
    assert isinstance(spec["description"], str) and spec["description"].strip()
    assert "\n" not in spec["description"].strip()
    assert isinstance(spec["drift"], list) and len(set(spec["drift"])) == len(spec["drift"])
    assert set(spec["drift"]) <= set(CLUSTER_CONTROLS), set(spec["drift"]) - set(CLUSTER_CONTROLS)
    if scenario in BRIEF:
        assert set(spec["drift"]) == BRIEF[scenario]
    assert spec.get("cross_layer") == CROSS_LAYER.get(scenario)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlay_layers_over_the_conformant_dump(scenario):
    base = {object_key(o): o for o in conformant()}
    objects = load_dump([CONFORMANT_DUMP, *overlay_files(DRIFTED_DIR / scenario)])  # not the cached copy
    assert objects
    mine = {object_key(o): o for o in objects}
    assert mine != base, "the overlay changes nothing"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlay_drifts_exactly_the_expected_controls(scenario):
    objects = layered(scenario)
    spec = expected(scenario)
    assert drifted_controls(objects) == set(spec["drift"])
    nodeport = (spec.get("cross_layer") or {}).get("gitea_ssh_nodeport", CONFORMANT_SSH_NODEPORT)
    assert gitea_ssh_nodeport(objects) == nodeport


def _secret_payloads(secret: dict) -> dict[str, str]:
    """Every secret value of a Secret, decoded; a Helm release contributes its values' strings."""
    if secret.get("type") == "helm.sh/release.v1":
        release = decode_release(secret["data"]["release"])
        found: dict[str, str] = {}

        def walk(node, path):
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value, f"{path}.{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{path}[{i}]")
            elif isinstance(node, str) and re.search(r"password|secret|token|key$", path, re.I):
                found[path] = node

        walk(release.get("config") or {}, "config")
        return found
    return {key: _secret_text(secret, key) for key in secret.get("data") or {}}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secret_values_the_overlay_adds_are_scenario_markers(scenario):
    base = {object_key(o): o for o in conformant() if o["kind"] == "Secret"}
    prefix = f"DRIFT-SECRET-VALUE-{scenario}-"
    for obj in layered(scenario):
        if obj["kind"] != "Secret":
            continue
        before = _secret_payloads(base[object_key(obj)]) if object_key(obj) in base else {}
        for key, value in _secret_payloads(obj).items():
            where = f"{_ns(obj)}/{obj['metadata']['name']}:{key}"
            for marker in MARKER.findall(value):
                assert marker.startswith(prefix) and len(marker) > len(prefix), (where, marker)
            if before.get(key) == value:
                continue  # carried over unchanged from the conformant dump
            if obj.get("type") == "helm.sh/release.v1":
                assert prefix in value or CONFORMANT_MARKER in value, where
            else:
                assert prefix in value, f"{where}: a new or changed secret value without a {prefix}... marker"


def test_the_redis_urls_of_the_cache_scenario_carry_the_password():
    secret = _inline_config(layered("gitea-cache-on-redis-cluster"))
    urls = [_ini(secret, "cache")["HOST"], _ini(secret, "session")["PROVIDER_CONFIG"], _ini(secret, "queue")["CONN_STR"]]
    for url in urls:
        assert re.match(r"redis(\+cluster)?://:DRIFT-SECRET-VALUE-gitea-cache-on-redis-cluster-[a-z-]+@"
                        r"gitea-redis-cluster-headless\.gitea\.svc\.cluster\.local:6379/", url), url


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
