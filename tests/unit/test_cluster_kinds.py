"""Cluster and boundary check kinds in-process: pass and fail fixtures per kind, evaluated on plain
objects with ``ClusterSnapshot.from_objects`` (no API server, no subprocess). The overlays of the
testbed dump (tests/testbed/test_drift_overlays_*.py) are the per-control fail fixtures; these are the
per-kind edge cases: what a sentence parses to, and what a finding says."""
from __future__ import annotations

import base64
import json

import pytest

from railiance_conformance.controls.cluster import ClusterEnv, service_nodeport
from railiance_conformance.finding import Status
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.vocabulary import check_kinds, match
from railiance_testbed.kubeapi.helm_release import release_secret


def deployment(ns, name, *, replicas=1, ready=1, labels=None, annotations=None):
    status = {"replicas": replicas, "conditions": [{"type": "Available", "status": "True" if ready == replicas else "False"}]}
    if ready:
        status.update(availableReplicas=ready, readyReplicas=ready)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": ns, "name": name, "labels": labels or {"app": name}, "annotations": annotations or {}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels or {"app": name}}}, "status": status}


def statefulset(ns, name, *, ready=1, labels=None):
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"namespace": ns, "name": name, "labels": labels or {}},
            "spec": {"replicas": 1}, "status": {"replicas": 1, "readyReplicas": ready, "availableReplicas": ready}}


def secret(ns, name, **data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": ns, "name": name}, "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def check(sentence: str, objects: list[dict], env: ClusterEnv | None = None):
    found = match(sentence)
    assert found is not None, sentence
    kind, params = found
    snap = ClusterSnapshot.from_objects(objects)
    outcome = kind.evaluate(snap, params, env) if env is not None else kind.evaluate(snap, params)
    assert set(k.split("?")[0] for k in snap.listed) <= set(kind.reads(params)), (snap.listed, kind.reads(params))
    return outcome


def test_a_workload_by_name_passes_and_names_its_object_when_it_fails():
    sentence = "Deployment gitea/gitea is available with every replica ready"
    assert check(sentence, [deployment("gitea", "gitea")]).status is Status.PASS
    down = check(sentence, [deployment("gitea", "gitea", ready=0)])
    assert down.status is Status.DRIFT
    assert down.observed == {"object": "Deployment gitea/gitea", "replicas": 1, "available": "absent",
                             "ready": "absent", "Available": "False"}
    assert check(sentence, []).observed == "no Deployment gitea in gitea"


def test_a_workload_by_label_selector():
    sentence = "the Deployment labelled app.kubernetes.io/name=cloudnative-pg in cnpg-system is available with every replica ready"
    labels = {"app.kubernetes.io/name": "cloudnative-pg"}
    assert check(sentence, [deployment("cnpg-system", "cnpg", labels=labels)]).status is Status.PASS
    assert check(sentence, [deployment("cnpg-system", "cnpg", labels={"app": "other"})]).observed == \
        "no Deployment labelled app.kubernetes.io/name=cloudnative-pg in cnpg-system"


def test_every_workload_of_a_namespace():
    sentence = "every Deployment and StatefulSet in argocd is available with every replica ready"
    objects = [deployment("argocd", "argocd-server"), statefulset("argocd", "argocd-application-controller")]
    assert check(sentence, objects).status is Status.PASS
    objects[1] = statefulset("argocd", "argocd-application-controller", ready=0)
    outcome = check(sentence, objects)
    assert outcome.status is Status.DRIFT
    assert outcome.observed["StatefulSet argocd/argocd-application-controller"]["ready"] == 0
    assert check(sentence, []).status is Status.DRIFT


def test_objects_absent_by_name_or_label_in_any_or_one_namespace():
    leftover = statefulset("gitea", "gitea-postgresql-ha-postgresql")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "old", "name": "x-0",
                                                           "labels": {"app.kubernetes.io/name": "postgresql-ha"}}}
    anywhere = "no pod or StatefulSet of postgresql-ha is left in any namespace"
    assert check(anywhere, []).status is Status.PASS
    assert check(anywhere, [leftover, pod]).observed == ["pod old/x-0", "statefulset gitea/gitea-postgresql-ha-postgresql"]
    assert check("no pod of postgresql-ha is left in namespace gitea", [leftover, pod]).status is Status.PASS


def test_object_present():
    assert check("a Service gitea/gitea-ssh exists", [{"apiVersion": "v1", "kind": "Service",
                                                       "metadata": {"namespace": "gitea", "name": "gitea-ssh"}}]).status is Status.PASS
    assert check("a Service gitea/gitea-ssh exists", []).status is Status.DRIFT


CLUSTER = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"namespace": "databases", "name": "db"},
           "spec": {"instances": 3, "imageName": "ghcr.io/cloudnative-pg/postgresql:16.6", "storage": {"size": "10240Mi"}},
           "status": {"phase": "Cluster in healthy state", "readyInstances": 2, "phaseReason": "one is starting"}}


def test_fields_of_a_custom_resource_with_ranges_quantities_and_a_derived_major():
    sentence = "Cluster databases/db has spec.instances 1 to 3, PostgreSQL major 16 and spec.storage.size 10Gi"
    outcome = check(sentence, [CLUSTER])
    assert outcome.status is Status.PASS, outcome
    assert outcome.observed == {"object": "Cluster databases/db", "spec.instances": 3, "PostgreSQL major": 16,
                                "spec.storage.size": "10Gi"}
    drift = check("Cluster databases/db has spec.instances one of 1, 2 and spec.bootstrap.initdb.owner gitea", [CLUSTER])
    assert drift.status is Status.DRIFT
    assert drift.observed == {"object": "Cluster databases/db", "spec.instances": 3, "spec.bootstrap.initdb.owner": "absent"}


def test_a_cnpg_cluster_not_ready_shows_the_operators_reason():
    outcome = check('Cluster databases/db is in phase "Cluster in healthy state" with every instance ready', [CLUSTER])
    assert outcome.status is Status.DRIFT
    assert outcome.observed == {"object": "Cluster databases/db", "phase": "Cluster in healthy state",
                                "readyInstances": 2, "phaseReason": "one is starting"}


def test_secret_keys_by_name_never_values():
    sentence = "Secret databases/creds has the keys username and password"
    outcome = check(sentence, [secret("databases", "creds", username="gitea", password="SNTLkindPW")])
    assert outcome.status is Status.PASS and "SNTLkindPW" not in repr(outcome)
    assert check(sentence, [secret("databases", "creds", username="gitea")]).observed == \
        {"secret": "creds", "keys_present": ["username"]}


def _release(status="deployed", config=None, chart_values=None):
    obj = release_secret(name="valkey", namespace="platform", revision=1, chart="valkey", chart_version="1.0.0",
                         app_version="8", config=config or {}, deployed_at="2026-01-01T00:00:00Z", status=status)
    return obj


def test_helm_release_values_deep_merged_and_workloads_ready():
    from railiance_testbed.kubeapi.helm_release import decode_release, encode_release

    release = _release(config={"auth": {"existingSecret": "valkey"}})
    decoded = decode_release(release["data"]["release"])
    decoded["chart"]["values"] = {"auth": {"enabled": True}}
    release["data"]["release"] = encode_release(decoded)
    workload = statefulset("platform", "valkey-primary", labels={"app.kubernetes.io/instance": "valkey"})
    sentence = "Helm release platform/valkey of chart valkey is deployed and ready, with auth.enabled=true"
    outcome = check(sentence, [release, workload])
    assert outcome.status is Status.PASS, outcome
    assert outcome.observed["values"] == {"auth.enabled": True}
    down = check(sentence, [release, statefulset("platform", "valkey-primary", ready=0,
                                                 labels={"app.kubernetes.io/instance": "valkey"})])
    assert down.status is Status.DRIFT and list(down.observed["workloads"]) == ["StatefulSet platform/valkey-primary"]
    assert check(sentence, [release]).observed["workloads"] == "no workload of the release"
    assert check(sentence, []).observed == "no Helm release valkey in platform"


def test_a_failed_release_drifts_on_its_status():
    outcome = check("Helm release platform/valkey of chart valkey is deployed", [_release(status="failed")])
    assert outcome.status is Status.DRIFT and outcome.observed["status"] == "failed"


def test_gitea_app_ini_endpoints_as_the_client_resolves_them_with_the_cluster_domain():
    ini = secret("gitea", "cfg", database="DB_TYPE=postgres\nHOST=gitea-db-rw.databases\nPASSWD=SNTLini\n",
                 cache="ADAPTER=redis\nHOST=redis://:SNTLini@valkey.platform:6379/0\n")
    sentence = ("Gitea's app.ini in Secret gitea/cfg has [database] DB_TYPE postgres and HOST "
                "gitea-db-rw.databases.svc.{domain}:5432; [cache] ADAPTER redis and HOST redis://valkey.platform.svc.{domain}:6379/0")
    local = check(sentence.format(domain="cluster.local"), [ini])
    assert local.status is Status.PASS, local
    other = check(sentence.format(domain="example.internal"), [ini])
    assert other.status is Status.DRIFT  # the short names complete with cluster.local by default
    assert check(sentence.format(domain="example.internal"), [ini], ClusterEnv("example.internal")).status is Status.PASS
    assert "SNTLini" not in repr(local) + repr(other)


def test_service_nodeport():
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "gitea", "name": "gitea-ssh"},
               "spec": {"type": "NodePort", "ports": [{"name": "ssh", "port": 22, "nodePort": 30022}]}}
    assert service_nodeport(ClusterSnapshot.from_objects([service]), "gitea", "gitea-ssh") == 30022
    with pytest.raises(LookupError, match="no Service gitea-ssh in gitea"):
        service_nodeport(ClusterSnapshot.from_objects([]), "gitea", "gitea-ssh")


LAYERS = {"repo_label": "railiance.io/repo",
          "layers": {"S1": {"title": "", "repo": "infra"}, "S2": {"title": "", "repo": "cluster"},
                     "S3": {"title": "", "repo": "platform"}, "S4": {"title": "", "repo": None},
                     "S5": {"title": "", "repo": "apps"}},
          "namespaces": {"kube-system": "S2", "gitea": "S5"}, "components": {"gitea/gitea": {"repo": "apps"}},
          "managers": {"argocd_tracking_method": "annotation", "argocd_instance_label": "app.kubernetes.io/instance"}}


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def test_boundary_kinds_read_the_layer_map_from_the_env():
    env = ClusterEnv(layer_map=LAYERS)
    owned = "every namespace is owned by a layer of policies/layers.yaml"
    assert check(owned, [namespace("gitea"), namespace("kube-system")], env).status is Status.PASS
    assert check(owned, [namespace("scratch")], env).observed == {"scratch": "not in the layer map"}
    layer = "the namespaces kube-system and gitea exist and belong to layer S2 in policies/layers.yaml"
    outcome = check(layer, [namespace("kube-system")], env)
    assert outcome.observed == {"kube-system": "present, layer S2", "gitea": "absent, layer S5"}
    managed = "every workload is managed by Helm or its operator"
    helm = deployment("gitea", "gitea", annotations={"meta.helm.sh/release-name": "gitea"})
    assert check(managed, [helm], env).status is Status.PASS
    assert check("every workload is managed by Argo CD", [helm], env).expected == {"gitea/gitea": "managed by argocd"}
    components = "every component is deployed from the repo of its namespace's layer in policies/layers.yaml"
    assert check(components, [helm], env).status is Status.PASS


def test_every_cluster_kind_declares_what_it_reads():
    for kind in check_kinds().values():
        if kind.target == "cluster":
            assert kind.reads is not None, kind.name


# --- kubectl cnpg status, and a health endpoint through the service proxy --------------------------
CNPG_STATUS = ("Cluster databases/gitea-db reports every instance ready, a current primary, continuous archiving "
               "working and a completed backup in the last 24 hours")


def cnpg_cluster(*, instances=1, ready=1, primary="gitea-db-1", target=None, archiving="True"):
    status = {"readyInstances": ready, "instanceNames": [f"gitea-db-{i + 1}" for i in range(instances)],
              "phase": "Cluster in healthy state",
              "conditions": [{"type": "ContinuousArchiving", "status": archiving,
                              "reason": "ContinuousArchivingSuccess" if archiving == "True" else "ContinuousArchivingFailing",
                              "message": "Continuous archiving is working" if archiving == "True" else
                              "unexpected failure invoking barman-cloud-wal-archive: exit status 4 "
                              "(s3://AKIAEXAMPLE:sekrit@bucket.example/gitea-db)"}]}
    if primary:
        status.update(currentPrimary=primary, targetPrimary=target or primary)
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"namespace": "databases", "name": "gitea-db"},
            "spec": {"instances": instances}, "status": status}


def cnpg_backup(name, *, hours_ago, phase="completed", cluster="gitea-db"):
    from datetime import datetime, timedelta, timezone
    when = (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup", "metadata": {"namespace": "databases", "name": name},
            "spec": {"cluster": {"name": cluster}}, "status": {"phase": phase, "stoppedAt": when}}


def test_cnpg_status_passes_when_the_plugin_would_say_healthy():
    outcome = check(CNPG_STATUS, [cnpg_cluster(), cnpg_backup("b1", hours_ago=30), cnpg_backup("b2", hours_ago=3)])
    assert outcome.status is Status.PASS
    assert outcome.observed == {"object": "Cluster databases/gitea-db", "ready instances": 1,
                                "current primary": "an instance of the cluster, no switchover pending",
                                "continuous archiving": "True", "newest backup": "completed within 24 h"}
    assert dict(outcome.evidence)["currentPrimary"] == "gitea-db-1"


def test_cnpg_status_names_each_failure():
    fresh = cnpg_backup("b2", hours_ago=3)
    archiving = check(CNPG_STATUS, [cnpg_cluster(archiving="False"), fresh])
    assert archiving.status is Status.DRIFT and archiving.observed["continuous archiving"] == "False"
    detail = dict(archiving.evidence)["continuous archiving"]
    assert detail.startswith("ContinuousArchivingFailing: unexpected failure") and "sekrit" not in detail
    not_ready = check(CNPG_STATUS, [cnpg_cluster(instances=3, ready=2), fresh])
    assert (not_ready.expected["ready instances"], not_ready.observed["ready instances"]) == (3, 2)
    assert check(CNPG_STATUS, [cnpg_cluster(primary=None), fresh]).observed["current primary"] == "none"
    switching = check(CNPG_STATUS, [cnpg_cluster(instances=2, primary="gitea-db-1", target="gitea-db-2"), fresh])
    assert switching.observed["current primary"] == "gitea-db-1 (switching over to gitea-db-2)"
    stale = check(CNPG_STATUS, [cnpg_cluster(), cnpg_backup("b1", hours_ago=30)])
    assert stale.status is Status.DRIFT and "30.0 h old" in stale.observed["newest backup"]
    failed = check(CNPG_STATUS, [cnpg_cluster(), fresh, cnpg_backup("b3", hours_ago=1, phase="failed")])
    assert failed.observed["newest backup"] == "the newest backup b3 is failed, not completed"
    other_cluster = check(CNPG_STATUS, [cnpg_cluster(), cnpg_backup("x", hours_ago=1, cluster="state-hub-db")])
    assert other_cluster.observed["newest backup"].startswith("no backup at all")
    missing = check(CNPG_STATUS, [])
    assert missing.status is Status.DRIFT and missing.observed == "no Cluster databases/gitea-db"


HEALTH = ("Service gitea/gitea-http answers GET /api/healthz on port 3000 through the API server's service proxy "
          "with the health checks database:ping and cache:ping passing")
HEALTH_KEY = ("gitea", "http:gitea-http:3000", "/api/healthz")


def gitea_health(database="pass", cache="pass", *, code=None, extra=None):
    from railiance_conformance.probes.cluster import ProxyAnswer
    checks = {"database:ping": [{"status": database, "time": "2026-11-27T10:00:00Z"}]}
    if cache is not None:
        checks["cache:ping"] = [{"status": cache, "time": "2026-11-27T10:00:00Z", **(extra or {})}]
    overall = "pass" if database == "pass" and cache in ("pass", None) else "fail"
    body = {"status": overall, "description": "Gitea: Git with a cup of tea", "checks": checks}
    return ProxyAnswer(code or (200 if overall == "pass" else 424), "application/json", json.dumps(body))


def check_health(sentence, answer):
    found = match(sentence)
    assert found is not None
    kind, params = found
    snap = ClusterSnapshot.from_objects([], proxied={HEALTH_KEY: answer} if answer else {})
    assert kind.reads(params) == ["services/proxy"]
    return kind.evaluate(snap, params), snap


def test_gitea_health_passes_when_every_named_check_passes_and_is_read_once():
    outcome, snap = check_health(HEALTH, gitea_health())
    assert outcome.status is Status.PASS
    assert outcome.observed == {"object": "Service gitea/gitea-http GET /api/healthz", "database:ping": "pass",
                                "cache:ping": "pass"}
    assert dict(outcome.evidence)["http_status"] == 200
    kind, params = match(HEALTH)
    kind.evaluate(snap, params)
    assert snap.requests == 1  # cached for the run


def test_gitea_health_drifts_on_the_failing_check_only():
    cache_down = gitea_health(cache="fail", extra={"output": "dial tcp redis://:pw@valkey:6379: connection refused"})
    outcome, _ = check_health(HEALTH, cache_down)
    assert outcome.status is Status.DRIFT and outcome.observed["cache:ping"] == "fail"
    assert dict(outcome.evidence)["http_status"] == 424 and dict(outcome.evidence)["status"] == "fail"
    assert ":pw@" not in json.dumps(dict(outcome.evidence)["cache:ping output"])
    database_only = HEALTH.replace("checks database:ping and cache:ping", "check database:ping")
    assert check_health(database_only, cache_down)[0].status is Status.PASS  # the cache has its own control
    omitted, _ = check_health(HEALTH, gitea_health(cache=None))  # Gitea omits cache:ping with the cache off
    assert omitted.status is Status.DRIFT and omitted.observed["cache:ping"] == "absent"


def test_gitea_health_that_is_not_a_health_answer_drifts_and_a_refusal_is_unavailable():
    from railiance_conformance.probes.cluster import ClusterUnavailable, ProxyAnswer
    page, _ = check_health(HEALTH, ProxyAnswer(404, "text/plain; charset=utf-8", "404 page not found\n"))
    assert page.status is Status.DRIFT and page.observed.startswith("not a health answer: HTTP 404")
    with pytest.raises(ClusterUnavailable, match="no such Service or path"):
        check_health(HEALTH, None)


def test_a_proxied_get_is_forgotten_by_its_reads_name_for_a_settle_re_probe():
    answer = gitea_health()
    snap = ClusterSnapshot.from_objects([], proxied={HEALTH_KEY: answer})
    assert snap.proxy_get(*HEALTH_KEY) is snap.proxy_get(*HEALTH_KEY) and snap.requests == 1
    snap.forget(["clusters.postgresql.cnpg.io"])
    snap.proxy_get(*HEALTH_KEY)
    assert snap.requests == 1
    snap.forget(match(HEALTH)[0].reads({}))  # what settle forgets for a failing health control
    snap.proxy_get(*HEALTH_KEY)
    assert snap.requests == 2
