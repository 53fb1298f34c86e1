"""The Kubernetes API stand-in's refusals and faults, as the unmodified kubernetes client sees them: 404
``Status`` bodies, 403 worded like RBAC, writes and watches refused (405) and logged, an injected failure
status, latency that fires a client timeout, no delayed-ACK stall, kept-alive connections closed on stop.

The stand-in and its clients are tests/testbed/conftest.py's fixtures (see there: a random 127.0.0.1 port,
stopped also when a test fails; clients built from an explicit kubeconfig file).
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from railiance_testbed.kubeapi import DEFAULT_USER
from tests.testbed.kubeapi_standin import _api_client, _started, _status_body


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
