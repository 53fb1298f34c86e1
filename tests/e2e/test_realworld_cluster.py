"""Cluster configurations as operators write them, through the real client.

Each case mutates the conformant dump the way a real cluster holds it, serves it with the API
stand-in, runs ``pytest features/ -m "cluster and not X"`` and asserts the control's verdict,
what the finding says, and that no planted secret reaches any output or the history.
"""
from __future__ import annotations

import base64
import copy
import sqlite3

import yaml

from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from railiance_testbed.kubeapi.helm_release import decode_release, encode_release
from tests.suite_runner import run_suite

SENTINEL = "SNTLcl9Secret"


def _find(objects, kind, namespace, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace
                and o["metadata"]["name"] == name)


def _set_ini(objects, section: str, text: str) -> None:
    secret = _find(objects, "Secret", "gitea", "gitea-inline-config")
    secret["data"][section] = base64.b64encode(text.encode()).decode()


def _ini(objects, section: str) -> str:
    return base64.b64decode(_find(objects, "Secret", "gitea", "gitea-inline-config")["data"][section]).decode()


def serve_and_run(tmp_path, mutate):
    objects = copy.deepcopy(load_dump([CONFORMANT_DUMP]))
    mutate(objects)
    dump = tmp_path / "dump.yaml"
    dump.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
    with KubeAPIStandIn(load_dump([dump])) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        run = run_suite("-m", "cluster and not X", "--kubeconfig", str(kubeconfig), report_dir=tmp_path / "reports")
    return run, {f["control_id"]: f for f in run.findings()}


def assert_no_leak(run, *secrets):
    outputs = {p.name: p.read_bytes() for p in run.report_dir.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    outputs["stdout"], outputs["stderr"] = run.stdout.encode(), run.stderr.encode()
    with sqlite3.connect(run.report_dir / "history.sqlite") as db:
        outputs["history"] = repr([row for table, in db.execute("select name from sqlite_master where type='table'")
                                   for row in db.execute(f"select * from {table}")]).encode()
    for secret in secrets:
        leaked = [name for name, data in outputs.items() if secret.encode() in data]
        assert not leaked, f"{secret!r} leaked into {leaked}"


def test_every_secret_form_in_gitea_config_passes_where_equal_and_leaks_nowhere(tmp_path):
    """The old go-redis form with password=, URL userinfo, ?password=, DSN keywords, PASSWD (kinds 1 and 3)."""
    def mutate(objects):
        _set_ini(objects, "cache", "ADAPTER=redis\nHOST=network=tcp,addr=valkey.platform.svc.cluster.local:6379,"
                                   f"password={SENTINEL},db=0,pool_size=100,idle_timeout=180\n")
        _set_ini(objects, "session", "PROVIDER=redis\nPROVIDER_CONFIG=redis://valkey.platform:6379/1"
                                     f"?password={SENTINEL}&pool_size=10\n")
        # '/' and '@' in a password percent-encoded, as Go's url.Parse needs them (unencoded: see the '#' case)
        _set_ini(objects, "queue", f"TYPE=redis\nCONN_STR=redis://default:{SENTINEL}%2Fx%40y@valkey.platform.svc:6379/2\n")
        database = _ini(objects, "database")
        database = "\n".join(line for line in database.splitlines() if not line.startswith(("HOST", "PASSWD")))
        _set_ini(objects, "database", database + f"\nHOST=gitea-db-rw.databases\nPASSWD=\"{SENTINEL}\"\n"
                                      f"; host=gitea-db-rw user=gitea password={SENTINEL}\n")
    run, found = serve_and_run(tmp_path, mutate)
    assert found["cluster.gitea.cache"]["status"] == "pass", found["cluster.gitea.cache"]
    assert found["cluster.gitea.database"]["status"] == "pass", found["cluster.gitea.database"]
    assert_no_leak(run, SENTINEL, "x%40y")


def test_a_different_endpoint_is_drift_named_as_the_client_resolves_it(tmp_path):
    def mutate(objects):
        database = _ini(objects, "database")
        _set_ini(objects, "database", "\n".join(
            "HOST=gitea-postgresql-ha-pgpool.gitea" if line.startswith("HOST") else line for line in database.splitlines()))
        _set_ini(objects, "cache", "ADAPTER=redis\nHOST=redis://valkey.platform.svc.cluster.local/0\n")
    run, found = serve_and_run(tmp_path, mutate)
    database = found["cluster.gitea.database"]
    assert database["status"] == "drift"
    assert database["observed"]["database"]["HOST"] == "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432"
    cache = found["cluster.gitea.cache"]
    assert cache["status"] == "drift" and "no port" in cache["observed"]["cache"]["HOST"]


def test_derived_values_image_catalog_helm_deep_merge_and_allowed_instances(tmp_path):
    """imageCatalogRef major 16, auth.enabled from the chart's defaults, 3 healthy instances (kinds 8, 10)."""
    def mutate(objects):
        cluster = _find(objects, "Cluster", "databases", "gitea-db")
        del cluster["spec"]["imageName"]
        cluster["spec"]["imageCatalogRef"] = {"apiGroup": "postgresql.cnpg.io", "kind": "ClusterImageCatalog",
                                              "name": "postgresql", "major": 16}
        cluster["spec"]["instances"] = 3
        cluster["status"]["instances"] = cluster["status"]["readyInstances"] = 3
        objects.append({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ClusterImageCatalog",
                        "metadata": {"name": "postgresql"},
                        "spec": {"images": [{"major": 15, "image": "ghcr.io/cloudnative-pg/postgresql:15.10"},
                                            {"major": 16, "image": "ghcr.io/cloudnative-pg/postgresql:16.6"}]}})
        for secret in objects:
            if secret["kind"] == "Secret" and secret.get("type") == "helm.sh/release.v1" \
                    and secret["metadata"]["labels"].get("name") == "valkey":
                release = decode_release(secret["data"]["release"])
                release["chart"]["values"] = {**(release["chart"].get("values") or {}),
                                              "auth": {"enabled": True, "existingSecret": ""}}
                release["config"] = {"auth": {"existingSecret": "valkey"}}
                secret["data"]["release"] = encode_release(release)
    run, found = serve_and_run(tmp_path, mutate)
    for control in ("cluster.gitea_db.spec", "cluster.gitea_db.healthy", "cluster.valkey.release"):
        assert found[control]["status"] == "pass", found[control]
    assert found["cluster.gitea_db.spec"]["observed"]["spec.instances"] == 3
    assert found["cluster.gitea_db.spec"]["observed"]["PostgreSQL major"] == 16


def test_an_unavailable_workload_names_its_object_and_the_kubelets_cause(tmp_path):
    """Observed names Deployment gitea/gitea, an omitted count is absent, CrashLoopBackOff/OOMKilled shown (kind 11)."""
    def mutate(objects):
        deployment = _find(objects, "Deployment", "gitea", "gitea")
        status = deployment["status"]
        status.pop("availableReplicas", None)
        status.pop("readyReplicas", None)
        for cond in status.get("conditions", []):
            if cond["type"] == "Available":
                cond["status"] = "False"
        labels = deployment["spec"]["selector"]["matchLabels"]
        objects.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "gitea-7d9f-abcde", "namespace": "gitea", "labels": dict(labels)},
                        "spec": {"containers": [{"name": "gitea", "image": "gitea/gitea:1.25.1"}]},
                        "status": {"phase": "Running", "containerStatuses": [{
                            "name": "gitea", "ready": False, "restartCount": 7, "image": "gitea/gitea:1.25.1",
                            "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}})
    run, found = serve_and_run(tmp_path, mutate)
    finding = found["cluster.gitea.available"]
    assert finding["status"] == "drift"
    observed = finding["observed"]
    assert observed["object"] == "Deployment gitea/gitea"
    assert observed["available"] == "absent" and observed["ready"] == "absent"
    assert any("CrashLoopBackOff" in c and "OOMKilled" in c for c in observed["causes"]), observed


def test_an_unreachable_api_has_a_remedy_for_reachability_not_the_drift_fix(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], "users": [{"name": "u", "user": {}}]}))
    run = run_suite("-m", "cluster and not X", "--kubeconfig", str(kubeconfig), "--api-timeout", "3",
                    report_dir=tmp_path / "reports")
    errors = [f for f in run.findings() if f["status"] == "error"]
    assert errors
    for finding in errors:
        assert "converge" not in finding["remediation"] and "helm" not in finding["remediation"].lower(), finding
        assert "API" in finding["remediation"]


def _helm_records_as_configmaps(objects, release_name: str) -> None:
    """Move a release's records from Secrets (Helm's default driver) to ConfigMaps, as ``HELM_DRIVER=configmap
    helm install`` writes them: same labels (owner=helm, name, status, version), ``data.release`` base64 once
    (pkg/storage/driver/cfgmaps.go newConfigMapsObject)."""
    for secret in [o for o in objects if o["kind"] == "Secret" and o.get("type") == "helm.sh/release.v1"
                   and o["metadata"]["labels"].get("name") == release_name]:
        objects.remove(secret)
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": secret["metadata"]["name"], "namespace": secret["metadata"]["namespace"],
                                     "labels": dict(secret["metadata"]["labels"])},
                        "data": {"release": base64.b64decode(secret["data"]["release"]).decode()}})


def test_a_release_recorded_by_helms_configmap_driver_is_found_and_named(tmp_path):
    run, found = serve_and_run(tmp_path, lambda objects: _helm_records_as_configmaps(objects, "valkey"))
    finding = found["cluster.valkey.release"]
    assert finding["status"] == "pass", finding
    assert "ConfigMap platform/sh.helm.release.v1.valkey.v" in finding["evidence"]["storage"]
    assert "configmap driver" in finding["evidence"]["storage"]


def test_helm_driver_secret_does_not_read_configmap_records(tmp_path, monkeypatch):
    monkeypatch.setenv("HELM_DRIVER", "secret")
    run, found = serve_and_run(tmp_path, lambda objects: _helm_records_as_configmaps(objects, "valkey"))
    finding = found["cluster.valkey.release"]
    assert finding["status"] == "drift" and "no Helm release valkey" in str(finding["observed"])


def test_helm_driver_memory_is_an_error_that_says_where_releases_are(tmp_path, monkeypatch):
    monkeypatch.setenv("HELM_DRIVER", "memory")
    run, found = serve_and_run(tmp_path, lambda objects: None)
    finding = found["cluster.valkey.release"]
    assert finding["status"] == "error" and "HELM_DRIVER=memory" in finding["reason"]


def test_a_hash_in_a_redis_password_sends_gitea_to_its_default(tmp_path):
    """Go's url.Parse cuts at the '#', the authority is no host:port, Parse fails and Gitea's ToRedisURI
    falls back to redis://127.0.0.1:6379/0: the cache points nowhere."""
    def mutate(objects):
        _set_ini(objects, "cache", "ADAPTER=redis\nHOST=redis://:SNTLpw#hash@valkey.platform.svc.cluster.local:6379/0\n")
    run, found = serve_and_run(tmp_path, mutate)
    cache = found["cluster.gitea.cache"]
    assert cache["status"] == "drift", cache
    observed = cache["observed"]["cache"]["HOST"]
    assert observed.startswith("redis://127.0.0.1:6379/0") and "url.Parse" in observed, observed
    assert_no_leak(run, "SNTLpw", "hash@valkey")
