"""The Kubernetes API stand-in's service proxy (railiance_testbed/kubeapi/proxy.py): it answers what the dump
declares for a Service, refuses like the apiserver (unknown service or port, no endpoints, RBAC), passes
the backend's 404 through, refuses writes, and names the Service of a bad declaration.

The stand-in and its clients are tests/testbed/conftest.py's fixtures (see there: a random 127.0.0.1 port,
stopped also when a test fails; clients built from an explicit kubeconfig file).
"""
from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from railiance_testbed.kubeapi import DEFAULT_USER
from tests.testbed.kubeapi_standin import _api_client, _started, _status_body


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
