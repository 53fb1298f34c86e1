"""The Kubernetes API stand-in's lists, as the apiserver pages and filters them: ``limit``/``continue``
pages (remaining counts, a bad token is a 400), label and field selectors over HTTP, and the selector
parsers' Kubernetes semantics.

The stand-in and its clients are tests/testbed/conftest.py's fixtures (see there: a random 127.0.0.1 port,
stopped also when a test fails; clients built from an explicit kubeconfig file).
"""
from __future__ import annotations

import base64

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from railiance_testbed.kubeapi.selectors import SelectorError, parse_field_selector, parse_label_selector
from tests.testbed.kubeapi_standin import _status_body


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
