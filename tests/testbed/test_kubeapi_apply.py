"""The stand-in's writes: server-side apply and delete of a ClusterPolicyReport, as the apiserver answers them;
every other write is still refused (405), and every request, the apply included, is in the request log."""
from __future__ import annotations

import json
import urllib.request

import pytest
import yaml

from railiance_testbed.kubeapi import CONFORMANT_DUMP, POLICY_REPORTER_DUMP, KubeAPI, KubeAPIStandIn, load_dump

PATH = "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/railiance-conformance"
REPORT = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
          "metadata": {"name": "railiance-conformance"}, "results": [], "summary": {"pass": 1}}
APPLY = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def objects():
    return load_dump([CONFORMANT_DUMP, POLICY_REPORTER_DUMP])


def apply(api: KubeAPI, body, *, path=PATH, query=None, content_type=APPLY, method="PATCH"):
    query = {"fieldManager": "railiance-conformance"} if query is None else query
    return api.handle(method, path, query, "application/json", body=yaml.safe_dump(body).encode(),
                      content_type=content_type)


def test_an_apply_creates_then_replaces_the_report_and_it_is_served(objects):
    api = KubeAPI(objects)
    code, created = apply(api, REPORT)
    assert code == 201 and created["metadata"]["managedFields"][0]["manager"] == "railiance-conformance"
    assert created["metadata"]["managedFields"][0]["operation"] == "Apply"
    code, replaced = apply(api, {**REPORT, "summary": {"fail": 2}})
    assert code == 200 and replaced["summary"] == {"fail": 2}
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    code, got = api.handle("GET", PATH, {}, "application/json")
    assert code == 200 and got["summary"] == {"fail": 2}
    code, listed = api.handle("GET", PATH.rsplit("/", 1)[0], {}, "application/json")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["railiance-conformance"]


def test_a_report_is_deleted_and_then_gone(objects):
    api = KubeAPI(objects)
    assert apply(api, REPORT)[0] == 201
    code, deleted = api.handle("DELETE", PATH, {}, "application/json")
    assert code == 200 and deleted["metadata"]["name"] == "railiance-conformance"
    assert api.handle("GET", PATH, {}, "application/json")[0] == 404


@pytest.mark.parametrize("method, path, content_type, query, body, code", [
    ("PATCH", PATH, "application/merge-patch+json", None, REPORT, 405),              # not an apply
    ("PATCH", PATH, "application/strategic-merge-patch+json", None, REPORT, 405),
    ("PUT", PATH, "application/json", None, REPORT, 405),
    ("POST", PATH.rsplit("/", 1)[0], "application/json", None, REPORT, 405),
    ("DELETE", PATH, "", None, REPORT, 404),                                         # a report: none there yet
    ("DELETE", "/apis/apps/v1/namespaces/gitea/deployments/gitea", "", None, REPORT, 405),  # any other kind
    ("PATCH", "/apis/apps/v1/namespaces/gitea/deployments/gitea", APPLY, None,        # another kind
     {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gitea"}}, 405),
    ("PATCH", PATH, APPLY, {}, REPORT, 422),                                          # no fieldManager
    ("PATCH", PATH.replace("railiance-conformance", "other"), APPLY, None, REPORT, 400),  # name mismatch
    ("PATCH", PATH, APPLY, None, {**REPORT, "kind": "PolicyReport"}, 400),
])
def test_every_other_write_is_refused(objects, method, path, content_type, query, body, code):
    api = KubeAPI(objects)
    assert apply(api, body, path=path, query=query, content_type=content_type, method=method)[0] == code
    assert api.handle("GET", PATH, {}, "application/json")[0] == 404   # nothing was stored


def test_discovery_announces_patch_and_delete_only_for_the_report(objects):
    api = KubeAPI(objects)
    _, resources = api.handle("GET", "/apis/wgpolicyk8s.io/v1alpha2", {}, "application/json")
    verbs = {r["name"]: r["verbs"] for r in resources["resources"]}
    assert verbs == {"clusterpolicyreports": ["get", "list", "watch", "patch", "delete"],
                     "policyreports": ["get", "list", "watch"]}
    _, apps = api.handle("GET", "/apis/apps/v1", {}, "application/json")
    assert all(r["verbs"] == ["get", "list", "watch"] for r in apps["resources"])


def test_over_http_the_apply_is_logged_with_its_content_type(objects):
    with KubeAPIStandIn(objects) as standin:
        request = urllib.request.Request(f"{standin.url}{PATH}?fieldManager=railiance-conformance&force=true",
                                         data=json.dumps(REPORT).encode(), method="PATCH",
                                         headers={"Content-Type": APPLY})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as answer:
            assert answer.status == 201
        log = standin.requests()
    assert [(r.method, r.path, r.query, r.status, r.content_type) for r in log] == [
        ("PATCH", PATH, {"fieldManager": "railiance-conformance", "force": "true"}, 201, APPLY)]


def test_an_apply_that_creates_needs_create_as_well_as_patch(objects):
    api = KubeAPI(objects, forbidden={("create", "clusterpolicyreports", "")})
    code, body = apply(api, REPORT)
    assert code == 403 and 'cannot create resource "clusterpolicyreports"' in body["message"]
    allowed = KubeAPI(objects)
    assert apply(allowed, REPORT)[0] == 201
