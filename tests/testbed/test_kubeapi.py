"""The read-only Kubernetes API stand-in, exercised over real HTTP by the unmodified clients.

Every server listens on a random 127.0.0.1 port and is stopped by its fixture, also when a test
fails. The kubernetes client reads $KUBECONFIG at import, so every client here is built from an
explicit ``config_file=``; kubectl gets ``--kubeconfig`` and its own ``--cache-dir``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

from railiance_testbed.kubeapi import CONFORMANT_DUMP, DEFAULT_USER, DumpError, KubeAPIStandIn, load_dump
from railiance_testbed.kubeapi.helm_release import decode_release
from railiance_testbed.kubeapi.selectors import SelectorError, parse_field_selector, parse_label_selector

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def conformant_objects():
    return load_dump(CONFORMANT_DUMP)


def _started(request, objects, **kwargs) -> KubeAPIStandIn:
    standin = KubeAPIStandIn(objects, **kwargs)
    request.addfinalizer(standin.stop)  # registered before start: stopped even if a test fails
    return standin.start()


@pytest.fixture(scope="module")
def standin(request, conformant_objects):
    return _started(request, conformant_objects)


@pytest.fixture(scope="module")
def kubeconfig(standin, tmp_path_factory):
    return standin.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")


def _api_client(request, kubeconfig_path) -> client.ApiClient:
    api_client = config.new_client_from_config(config_file=str(kubeconfig_path))
    request.addfinalizer(api_client.close)
    return api_client


@pytest.fixture(scope="module")
def api_client(request, kubeconfig):
    return _api_client(request, kubeconfig)


@pytest.fixture
def core(api_client):
    return client.CoreV1Api(api_client)


def _status_body(exc: ApiException) -> dict:
    return json.loads(exc.body)


# --- typed client ----------------------------------------------------------------------------
def test_typed_client_lists_namespaces_and_reads_the_gitea_deployment(api_client, core):
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert names == sorted(["cert-manager", "cnpg-system", "ingress-nginx", "gitea", "argocd", "databases",
                            "platform", "default", "kube-system", "kube-public", "kube-node-lease"])

    gitea = client.AppsV1Api(api_client).read_namespaced_deployment("gitea", "gitea")
    assert gitea.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
    assert gitea.metadata.labels["helm.sh/chart"].startswith("gitea-12.")
    assert gitea.metadata.annotations["meta.helm.sh/release-name"] == "gitea"
    assert gitea.status.available_replicas == gitea.spec.replicas == 1


def test_typed_client_deserialises_every_kind_in_the_dump(api_client, core):
    apps = client.AppsV1Api(api_client)
    counts = {
        "pods": len(core.list_pod_for_all_namespaces().items),
        "secrets": len(core.list_secret_for_all_namespaces().items),
        "services": len(core.list_service_for_all_namespaces().items),
        "pvcs": len(core.list_persistent_volume_claim_for_all_namespaces().items),
        "pvs": len(core.list_persistent_volume().items),
        "nodes": len(core.list_node().items),
        "statefulsets": len(apps.list_stateful_set_for_all_namespaces().items),
        "daemonsets": len(apps.list_daemon_set_for_all_namespaces().items),
        "replicasets": len(apps.list_replica_set_for_all_namespaces().items),
        "crds": len(client.ApiextensionsV1Api(api_client).list_custom_resource_definition().items),
        "ingresses": len(client.NetworkingV1Api(api_client).list_ingress_for_all_namespaces().items),
        "storageclasses": len(client.StorageV1Api(api_client).list_storage_class().items),
        "pdbs": len(client.PolicyV1Api(api_client).list_pod_disruption_budget_for_all_namespaces().items),
        "leases": len(client.CoordinationV1Api(api_client).list_lease_for_all_namespaces().items),
    }
    assert all(counts.values()), counts
    nodeport = core.read_namespaced_service("gitea-ssh", "gitea").spec.ports[0]
    assert (nodeport.port, nodeport.target_port, nodeport.node_port) == (22, 2222, 30022)


# --- dynamic client --------------------------------------------------------------------------
def test_dynamic_client_reads_the_cnpg_cluster(api_client, tmp_path):
    dyn = dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    clusters = dyn.resources.get(api_version="postgresql.cnpg.io/v1", kind="Cluster")
    assert clusters.namespaced and clusters.name == "clusters"
    assert [c.metadata.name for c in clusters.get(namespace="databases").items] == ["gitea-db"]

    gitea_db = clusters.get(namespace="databases", name="gitea-db")
    assert gitea_db.spec.bootstrap.initdb.secret.name == "gitea-db-credentials"
    assert gitea_db.spec.storage.size == "10Gi"
    assert gitea_db.status.phase == "Cluster in healthy state"
    assert gitea_db.status.readyInstances == gitea_db.spec.instances == 1

    backups = dyn.resources.get(api_version="postgresql.cnpg.io/v1", kind="Backup").get(namespace="databases")
    assert {b.status.phase for b in backups.items} == {"completed"}


# --- paging ----------------------------------------------------------------------------------
def test_limit_2_pages_walk_every_pod_exactly_once(core):
    everything = [(p.metadata.namespace, p.metadata.name) for p in core.list_pod_for_all_namespaces().items]
    assert everything == sorted(everything) and len(everything) > 4

    seen, token, remaining = [], None, []
    while True:
        page = core.list_pod_for_all_namespaces(limit=2, _continue=token)
        assert len(page.items) <= 2
        seen += [(p.metadata.namespace, p.metadata.name) for p in page.items]
        token = page.metadata._continue
        if not token:
            assert page.metadata.remaining_item_count is None
            break
        remaining.append(page.metadata.remaining_item_count)
    assert seen == everything
    assert remaining == [len(everything) - 2 * (i + 1) for i in range(len(remaining))]


def test_paging_inside_a_namespace_with_a_selector_omits_remaining_count(core):
    page = core.list_namespaced_pod("argocd", limit=1, label_selector="app.kubernetes.io/name")
    assert len(page.items) == 1 and page.metadata._continue
    assert page.metadata.remaining_item_count is None  # as the apiserver does with a selector
    rest = core.list_namespaced_pod("argocd", limit=100, _continue=page.metadata._continue,
                                    label_selector="app.kubernetes.io/name")
    assert len(rest.items) + 1 == len(core.list_namespaced_pod("argocd").items)


@pytest.mark.parametrize("token", ["not-base64!", base64.urlsafe_b64encode(b'{"v":"v9","rv":1,"start":"a"}').decode()])
def test_an_invalid_continue_token_is_a_400(core, token):
    with pytest.raises(ApiException) as raised:
        core.list_pod_for_all_namespaces(limit=2, _continue=token)
    assert raised.value.status == 400
    body = _status_body(raised.value)
    assert body["reason"] == "BadRequest" and body["message"].startswith("invalid continue token")


# --- selectors -------------------------------------------------------------------------------
@pytest.mark.parametrize("selector, expected", [
    ("app.kubernetes.io/name=gitea", {"gitea"}),
    ("app.kubernetes.io/name==cloudnative-pg", {"cnpg-controller-manager"}),
    ("app.kubernetes.io/managed-by=Helm,app.kubernetes.io/name in (gitea, cloudnative-pg)",
     {"gitea", "cnpg-controller-manager"}),
    ("app.kubernetes.io/part-of=argocd,app.kubernetes.io/name notin (argocd-server,argocd-redis)",
     {"argocd-repo-server", "argocd-applicationset-controller", "argocd-notifications-controller",
      "argocd-dex-server"}),
    ("k8s-app", {"coredns", "metrics-server"}),
    ("!app.kubernetes.io/name,!k8s-app", {"local-path-provisioner"}),
    ("k8s-app!=kube-dns,!app.kubernetes.io/name", {"local-path-provisioner", "metrics-server"}),
])
def test_label_selectors(api_client, selector, expected):
    found = client.AppsV1Api(api_client).list_deployment_for_all_namespaces(label_selector=selector).items
    assert {d.metadata.name for d in found} == expected


@pytest.mark.parametrize("selector, expected", [
    ("metadata.name=gitea-db-1", {"gitea-db-1"}),
    ("metadata.namespace==platform", {"valkey-primary-0"}),
    ("metadata.namespace=databases,status.phase=Running", {"gitea-db-1"}),
    ("status.phase!=Running", set()),
    ("spec.serviceAccountName=gitea-db", {"gitea-db-1"}),
])
def test_field_selectors(core, selector, expected):
    assert {p.metadata.name for p in core.list_pod_for_all_namespaces(field_selector=selector).items} == expected


def test_a_malformed_selector_is_a_400(core):
    with pytest.raises(ApiException) as raised:
        core.list_pod_for_all_namespaces(label_selector="app in (gitea")
    assert raised.value.status == 400 and _status_body(raised.value)["reason"] == "BadRequest"


def test_selector_parsers_follow_kubernetes_semantics():
    obj = {"metadata": {"name": "x", "labels": {"tier": "db", "n": "3"}}, "spec": {"nodeName": ""}}
    assert parse_label_selector("tier!=web")(obj) and parse_label_selector("other!=web")(obj)
    assert parse_label_selector("other notin (a)")(obj) and not parse_label_selector("other in (a)")(obj)
    assert parse_label_selector("n>2,n<4")(obj) and not parse_label_selector("n>3")(obj)
    assert parse_field_selector("spec.nodeName=")(obj) and parse_field_selector("spec.missing=")(obj)
    assert parse_field_selector(r"metadata.name!=a\,b")(obj)
    assert parse_label_selector("tier=")({"metadata": {"labels": {"tier": ""}}})  # empty values are legal
    for bad in ("=db", "a b c", "tier in (a", "tier=a b"):
        with pytest.raises(SelectorError):
            parse_label_selector(bad)


# --- errors ----------------------------------------------------------------------------------
def test_unknown_object_is_a_404_status(core):
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_secret("no-such-secret", "gitea")
    assert raised.value.status == 404
    body = _status_body(raised.value)
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'secrets "no-such-secret" not found', "reason": "NotFound",
                    "details": {"name": "no-such-secret", "kind": "secrets"}, "code": 404}


def test_unknown_resource_and_group_are_404(standin):
    for path in ("/api/v1/widgets", "/apis/example.com/v1/namespaces/x/widgets", "/apis/example.com", "/openapi/v2"):
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(standin.url + path, timeout=5)
        assert raised.value.code == 404
        assert json.loads(raised.value.read())["reason"] == "NotFound"


def test_forbidden_list_is_a_403_worded_like_rbac(request, conformant_objects, tmp_path):
    denied = _started(request, conformant_objects, forbidden={("list", "secrets", "gitea"), ("get", "secrets", "*")})
    core = client.CoreV1Api(_api_client(request, denied.write_kubeconfig(tmp_path / "kubeconfig")))

    with pytest.raises(ApiException) as raised:
        core.list_namespaced_secret("gitea")
    assert raised.value.status == 403
    body = _status_body(raised.value)
    assert body["reason"] == "Forbidden" and body["details"] == {"kind": "secrets"}
    assert body["message"] == (f'secrets is forbidden: User "{DEFAULT_USER}" cannot list resource "secrets" '
                               'in API group "" in the namespace "gitea"')
    with pytest.raises(ApiException) as raised:
        core.list_secret_for_all_namespaces()  # denied in one namespace: no cluster-wide permission
    assert raised.value.status == 403 and "at the cluster scope" in _status_body(raised.value)["message"]
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_secret("gitea-db-credentials", "databases")
    assert _status_body(raised.value)["message"].startswith('secrets "gitea-db-credentials" is forbidden')
    assert core.list_namespaced_secret("databases").items  # other namespaces stay readable


def test_writes_are_405_and_logged(standin, core):
    before = len(standin.requests("POST"))
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"), data={"a": "b"})
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map("default", body)
    assert raised.value.status == 405
    assert _status_body(raised.value)["reason"] == "MethodNotAllowed"
    posts = standin.requests("POST")[before:]
    assert [(r.method, r.path, r.status) for r in posts] == [("POST", "/api/v1/namespaces/default/configmaps", 405)]
    with pytest.raises(ApiException) as raised:
        core.delete_namespaced_pod("gitea-db-1", "databases")
    assert raised.value.status == 405
    assert core.read_namespaced_pod("gitea-db-1", "databases")  # nothing was deleted


def test_watch_is_refused_with_a_405(core):
    with pytest.raises(ApiException) as raised:
        core.list_namespaced_pod("gitea", watch=True, _preload_content=False)
    assert raised.value.status == 405


def test_fail_status_breaks_everything_but_discovery(request, conformant_objects):
    broken = _started(request, conformant_objects, fail_status=500)
    assert json.loads(urllib.request.urlopen(broken.url + "/version", timeout=5).read())["minor"] == "30"
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(broken.url + "/api/v1/namespaces", timeout=5)
    assert raised.value.code == 500 and json.loads(raised.value.read())["reason"] == "InternalError"


def test_latency_makes_a_short_client_timeout_fire(request, conformant_objects, tmp_path):
    slow = _started(request, conformant_objects, latency_s=0.5)
    core = client.CoreV1Api(_api_client(request, slow.write_kubeconfig(tmp_path / "kubeconfig")))
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        core.list_namespace(_request_timeout=0.1)
    assert isinstance(raised.value.reason, urllib3.exceptions.ReadTimeoutError)
    deadline = time.monotonic() + 5
    while len(slow.requests("GET")) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(slow.requests("GET")) == 4  # the client retries a read timeout 3 times by default


def test_a_list_call_costs_milliseconds_not_a_delayed_ack(core):
    core.list_namespaced_pod("gitea")
    started = time.perf_counter()
    for _ in range(20):
        core.list_namespaced_pod("gitea")
    assert (time.perf_counter() - started) / 20 < 0.030  # Nagle + delayed ACK would cost ~40 ms each


def test_stop_closes_kept_alive_connections(request, conformant_objects):
    standin = _started(request, conformant_objects)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", standin.port, retries=False)
    assert pool.request("GET", "/version").status == 200
    standin.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        pool.request("GET", "/version", timeout=2)


# --- what the dump holds ---------------------------------------------------------------------
def _secret_text(core, name, namespace, key) -> str:
    return base64.b64decode(core.read_namespaced_secret(name, namespace).data[key]).decode()


def test_gitea_inline_config_is_laid_out_like_the_chart(core):
    database = _secret_text(core, "gitea-inline-config", "gitea", "database").splitlines()
    assert database[:3] == ["DB_TYPE=postgres", "HOST=gitea-db-rw.databases.svc.cluster.local:5432", "NAME=gitea"]
    assert "USER=gitea" in database
    password = next(line.split("=", 1)[1] for line in database if line.startswith("PASSWD="))
    assert password == _secret_text(core, "gitea-db-credentials", "databases", "password")
    assert "CONFORMANT-SECRET-VALUE" in password
    valkey = "@valkey.platform.svc.cluster.local:6379/"
    assert valkey + "0" in _secret_text(core, "gitea-inline-config", "gitea", "cache")
    assert valkey + "1" in _secret_text(core, "gitea-inline-config", "gitea", "session")
    assert valkey + "2" in _secret_text(core, "gitea-inline-config", "gitea", "queue")


def test_helm_release_secrets_decode_like_helm_stores_them(core):
    releases = core.list_secret_for_all_namespaces(label_selector="owner=helm,status=deployed").items
    decoded = {(s.metadata.namespace, s.metadata.labels["name"]): decode_release(s.data["release"]) for s in releases}
    assert set(decoded) == {("cert-manager", "cert-manager"), ("cnpg-system", "cnpg"), ("gitea", "gitea"),
                            ("ingress-nginx", "ingress-nginx"), ("platform", "valkey")}
    gitea = decoded[("gitea", "gitea")]
    assert gitea["info"]["status"] == "deployed" and gitea["version"] == 4
    assert gitea["chart"]["metadata"]["name"] == "gitea" and gitea["chart"]["metadata"]["version"].startswith("12.")
    valkey = decoded[("platform", "valkey")]
    assert valkey["config"]["auth"]["enabled"] is True
    assert all(s.type == "helm.sh/release.v1" for s in releases)


# --- loading dumps ---------------------------------------------------------------------------
def test_overlays_replace_and_delete_objects(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gitea"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gitea", "namespace": "gitea"},
         "spec": {"replicas": 1}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "gitea"}, "data": {}}]}))
    overlay = tmp_path / "drift"
    overlay.mkdir()
    (overlay / "gitea.yaml").write_text(
        "delete:\n  - {kind: Secret, namespace: gitea, name: s}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: gitea, namespace: gitea}\nspec: {replicas: 0}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: t, namespace: gitea}\nstringData: {k: v}\n")
    objects = load_dump([base, overlay])
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Namespace", "gitea"), ("Deployment", "gitea"), ("Secret", "t")]
    assert objects[1]["spec"]["replicas"] == 0
    assert objects[2]["data"] == {"k": base64.b64encode(b"v").decode()}

    (overlay / "typo.yaml").write_text("delete:\n  - {kind: Secret, namespace: gitea, name: nope}\n")
    with pytest.raises(DumpError, match="matches no object"):
        load_dump([base, overlay])


# --- kubectl ---------------------------------------------------------------------------------
def _kubectl(kubeconfig_path, tmp_path, *args) -> subprocess.CompletedProcess:
    if KUBECTL is None:
        pytest.fail("kubectl is not installed on this machine (it comes with the machine image)")  # never a silent skip
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig_path), "--cache-dir", str(tmp_path / "kcache"),
                           *args], capture_output=True, text=True, timeout=60, env=env)


def test_kubectl_gets_the_cnpg_cluster(kubeconfig, tmp_path):
    result = _kubectl(kubeconfig, tmp_path, "get", "clusters.postgresql.cnpg.io", "-n", "databases")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "AGE", "INSTANCES", "READY", "STATUS", "PRIMARY"]
    assert row.split()[0] == "gitea-db" and "Cluster in healthy state" in row


def test_kubectl_gets_pods_in_all_namespaces(kubeconfig, tmp_path, core):
    result = _kubectl(kubeconfig, tmp_path, "get", "pods", "-A")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(lines) - 1 == len(core.list_pod_for_all_namespaces().items)
    assert any(line.split()[:2] == ["databases", "gitea-db-1"] for line in lines)


def test_kubectl_prints_the_gitea_deployment_as_yaml(kubeconfig, tmp_path):
    result = _kubectl(kubeconfig, tmp_path, "get", "deploy", "-n", "gitea", "gitea", "-o", "yaml")
    assert result.returncode == 0, result.stderr
    deployment = yaml.safe_load(result.stdout)
    assert (deployment["kind"], deployment["metadata"]["name"]) == ("Deployment", "gitea")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/instance"] == "gitea"


def test_kubectl_write_is_refused(standin, kubeconfig, tmp_path):
    result = _kubectl(kubeconfig, tmp_path, "delete", "pod", "gitea-db-1", "-n", "databases")
    assert result.returncode != 0 and "MethodNotAllowed" in result.stderr
    assert ("DELETE", "/api/v1/namespaces/databases/pods/gitea-db-1", 405) in [
        (r.method, r.path, r.status) for r in standin.requests("DELETE")]


# --- command line ----------------------------------------------------------------------------
def test_cli_serves_until_sigterm(tmp_path):
    kubeconfig_path = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "railiance_testbed.kubeapi", "--dump", str(CONFORMANT_DUMP), "--port", "0",
         "--kubeconfig", str(kubeconfig_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        fields = dict(part.split("=", 1) for part in process.stdout.readline().split())
        assert int(fields["pid"]) == process.pid
        url = yaml.safe_load(kubeconfig_path.read_text())["clusters"][0]["cluster"]["server"]
        assert url == fields["url"]
        assert json.loads(urllib.request.urlopen(url + "/version", timeout=5).read())["gitVersion"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


# --- the service proxy (railiance_testbed/kubeapi/proxy.py) ------------------------------------------
def test_the_service_proxy_answers_what_the_dump_declares(standin, core):
    # raw: the client would turn a JSON body declared as str into Python's repr of it
    raw = core.connect_get_namespaced_service_proxy_with_path("http:gitea-http:3000", "gitea", "api/healthz",
                                                              _preload_content=False)
    assert raw.status == 200 and raw.headers["Content-Type"] == "application/json"
    health = json.loads(raw.data)
    assert health["status"] == "pass"
    assert {k: v[0]["status"] for k, v in health["checks"].items()} == {"database:ping": "pass", "cache:ping": "pass"}
    # the port by name, no scheme: the same backend
    assert json.loads(core.connect_get_namespaced_service_proxy_with_path(
        "gitea-http:http", "gitea", "api/healthz", _preload_content=False).data) == health
    served = core.read_namespaced_service("gitea-http", "gitea")
    assert set(served.metadata.annotations) == {"meta.helm.sh/release-name", "meta.helm.sh/release-namespace"}
    assert standin.requests()[-1].method == "GET"


@pytest.mark.parametrize("name, path, status, message", [
    ("http:nope:3000", "api/healthz", 404, 'services "nope" not found'),
    ("http:gitea-http:80", "api/healthz", 503, 'no service port "80" found for service "gitea-http"'),
    ("gitea-ssh:ssh", "", 503, 'no endpoints available for service "gitea-ssh"'),
])
def test_the_service_proxy_refuses_like_the_apiserver(core, name, path, status, message):
    with pytest.raises(ApiException) as raised:
        core.connect_get_namespaced_service_proxy_with_path(name, "gitea", path)
    assert raised.value.status == status and _status_body(raised.value)["message"] == message


def test_an_undeclared_path_is_the_backends_404_and_writes_are_refused(standin, core):
    with pytest.raises(ApiException) as raised:
        core.connect_get_namespaced_service_proxy_with_path("http:gitea-http:3000", "gitea", "api/v1/repos")
    assert raised.value.status == 404 and raised.value.body == "404 page not found\n"
    with pytest.raises(ApiException) as raised:
        core.connect_post_namespaced_service_proxy_with_path("http:gitea-http:3000", "gitea", "api/healthz")
    assert raised.value.status == 405


def test_a_forbidden_service_proxy_is_a_403_worded_like_rbac(request, conformant_objects, tmp_path):
    denied = _started(request, conformant_objects, forbidden={("get", "services/proxy", "gitea")})
    core = client.CoreV1Api(_api_client(request, denied.write_kubeconfig(tmp_path / "kubeconfig")))
    with pytest.raises(ApiException) as raised:
        core.connect_get_namespaced_service_proxy_with_path("http:gitea-http:3000", "gitea", "api/healthz")
    assert raised.value.status == 403
    assert _status_body(raised.value)["message"] == (
        f'services/proxy "http:gitea-http:3000" is forbidden: User "{DEFAULT_USER}" cannot get resource '
        '"services/proxy" in API group "" in the namespace "gitea"')
    assert core.read_namespaced_service("gitea-http", "gitea")  # the Service itself stays readable


def test_a_bad_proxy_declaration_names_the_service():
    from railiance_testbed.kubeapi import KubeAPI
    from railiance_testbed.kubeapi.proxy import ANNOTATION, ProxyDeclarationError
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "gitea", "name": "web",
                                                                   "annotations": {ANNOTATION: "'80': {/: {body: x}}"}}}
    with pytest.raises(ProxyDeclarationError, match=r"Service gitea/web: .*/: expected \{status"):
        KubeAPI([service])
