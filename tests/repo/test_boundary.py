"""Boundary evaluators through the unmodified kubernetes client against the API stand-in."""
from __future__ import annotations

import copy
from datetime import datetime

import pytest

from railiance_conformance.checks import bundled_plan
from railiance_conformance.controls.boundary import load_layer_map, manager
from railiance_conformance.controls.cluster import ClusterEnv
from railiance_conformance.finding import Status
from railiance_conformance.policy import DEFAULT_POLICY_DIR, PolicyError
from railiance_conformance.probes.cluster import ClusterAccess, ClusterSnapshot
from railiance_conformance.vocabulary import CHECK_KINDS
from railiance_conformance.waivers import apply_outcome, load_waivers
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from railiance_testbed.kubeapi.helm_release import release_secret

BOUNDARY = ["boundary.namespace.owned", "boundary.component.layer", "boundary.component.manager"]
ARGOCD_KUBECTL = ("kubectl apply (last-applied-configuration, no Helm or Argo CD markers): "
                  "Deployment argocd-applicationset-controller, Deployment argocd-dex-server, "
                  "Deployment argocd-notifications-controller, Deployment argocd-redis, Deployment argocd-repo-server, "
                  "Deployment argocd-server, StatefulSet argocd-application-controller")


def snapshot_of(objects, tmp_path, started):
    api = KubeAPIStandIn(objects).start()
    started.append(api)
    return ClusterSnapshot(ClusterAccess(kubeconfig=str(api.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}"))))


@pytest.fixture
def snapshot(tmp_path):
    started: list[KubeAPIStandIn] = []
    yield lambda objects: snapshot_of(objects, tmp_path, started)
    for api in started:
        api.stop()
    assert all(r.method == "GET" for api in started for r in api.request_log)  # read-only


def evaluate(snap, layer_map):
    """The boundary controls as the suite evaluates them: their kind, the params their sentence in
    features/X/T06-layer-boundaries.feature states, the layer map as policy."""
    plan = bundled_plan()
    return {c: CHECK_KINDS[plan.spec(c).kind].evaluate(snap, plan.spec(c).params, ClusterEnv(layer_map=layer_map))
            for c in BOUNDARY}


def test_conformant_dump_shows_exactly_the_documented_violations(snapshot, layer_map):
    out = evaluate(snapshot(load_dump([CONFORMANT_DUMP])), layer_map)
    assert {c: o.status for c, o in out.items()} == {
        "boundary.namespace.owned": Status.PASS, "boundary.component.layer": Status.DRIFT,
        "boundary.component.manager": Status.DRIFT}
    assert (out["boundary.namespace.owned"].expected, out["boundary.namespace.owned"].observed) == ({}, {})
    layer = out["boundary.component.layer"]
    assert layer.expected == {"argocd/argocd": "no repo (S4 has none yet)", "cnpg-system/cnpg": "railiance-platform (S3)"}
    assert layer.observed == {"argocd/argocd": "railiance-cluster (S2)", "cnpg-system/cnpg": "railiance-cluster (S2)"}
    assert sorted(dict(layer.evidence)["repo_source"]) == [
        "argocd/argocd", "cert-manager/cert-manager", "cnpg-system/cnpg", "databases/gitea-db", "gitea/gitea",
        "ingress-nginx/ingress-nginx", "kube-system/k3s", "platform/valkey"]
    managed = out["boundary.component.manager"]
    assert managed.expected == {"argocd/argocd": "managed by helm, argocd, k3s or operator"}
    assert managed.observed == {"argocd/argocd": ARGOCD_KUBECTL}
    assert dict(managed.evidence)["managers"] == {"helm": 7, "k3s": 4, "kubectl": 7, "operator": 1}


@pytest.mark.parametrize(("now", "statuses"), [
    ("2026-11-27T03:00:00+00:00", [Status.PASS, Status.WAIVED, Status.WAIVED]),
    ("2027-04-01T00:00:00+00:00", [Status.PASS, Status.DRIFT, Status.DRIFT]),
])
def test_seeded_waivers_on_the_conformant_dump(snapshot, layer_map, now, statuses):
    waivers = load_waivers(DEFAULT_POLICY_DIR / "waivers.yaml", set(BOUNDARY), set(layer_map["components"]))
    out = evaluate(snapshot(load_dump([CONFORMANT_DUMP])), layer_map)
    waived = [apply_outcome(out[c], c, "coulombcore", waivers, datetime.fromisoformat(now)) for c in BOUNDARY]
    assert [o.status for o in waived] == statuses
    if statuses[1] is Status.DRIFT:
        assert "argocd/argocd: waiver expired on 2027-03-31" in waived[1].reason


def _find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_new_namespace_bare_pod_and_labelled_release(snapshot, layer_map):
    objects = load_dump([CONFORMANT_DUMP])
    objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch"}})
    pod = copy.deepcopy(_find(objects, "Pod", "gitea-db-1"))
    pod["metadata"] = {"name": "debug", "namespace": "gitea", "labels": {"run": "debug"}}
    objects.append(pod)  # kubectl run: no owner, no manager markers
    objects.append(release_secret(name="state-hub", namespace="gitea", revision=1, chart="state-hub",
                                  chart_version="0.1.0", app_version="1.0", config={},
                                  deployed_at="2026-11-01T10:00:00Z"))
    objects[-1]["metadata"]["labels"]["railiance.io/repo"] = "railiance-platform"
    out = evaluate(snapshot(objects), layer_map)
    assert out["boundary.namespace.owned"].observed == {"scratch": "not in the layer map"}
    assert out["boundary.component.layer"].observed == {
        "argocd/argocd": "railiance-cluster (S2)", "cnpg-system/cnpg": "railiance-cluster (S2)",
        "gitea/debug": "undeclared: no railiance.io/repo label and not in the layer map",
        "gitea/state-hub": "railiance-platform (S3)"}
    assert out["boundary.component.manager"].observed == {
        "argocd/argocd": ARGOCD_KUBECTL,
        "gitea/debug": "no manager markers (kubectl create/run or an API client): Pod debug"}


def test_manager_recognition(layer_map):
    deployment = {"kind": "Deployment", "metadata": {"name": "x", "namespace": "apps", "labels": {}, "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "argocd.argoproj.io/tracking-id": "my-app:apps/Deployment:apps/x"}}}
    assert manager(deployment, layer_map) == ("argocd", "Argo CD application my-app")
    labelled = {"kind": "Deployment", "metadata": {"name": "x", "labels": {"app.kubernetes.io/instance": "my-app"},
                                                   "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}}
    assert manager(labelled, layer_map)[0] == "kubectl"  # annotation tracking: the label alone proves nothing
    by_label = {**layer_map, "managers": {**layer_map["managers"], "argocd_tracking_method": "label"}}
    assert manager(labelled, by_label)[0] == "argocd"
    owned = {"kind": "Pod", "metadata": {"name": "db-1", "ownerReferences": [
        {"kind": "Cluster", "name": "db", "controller": True}]}}
    assert manager(owned, layer_map) == ("operator", "owned by Cluster db")


def test_layer_map_cross_checks(tmp_path):
    text = (DEFAULT_POLICY_DIR / "layers.yaml").read_text()
    for old, new, field in [("  gitea: S5\n", "  gitea: S6\n", "namespaces.gitea"),
                            ("  gitea/gitea: {repo: railiance-apps}", "  gitea/gitea: {repo: railiance-gitops}",
                             "components.gitea/gitea.repo"),
                            ("  platform/valkey:", "  nowhere/valkey:", "components.nowhere/valkey")]:
        (tmp_path / "layers.yaml").write_text(text.replace(old, new))
        with pytest.raises(PolicyError) as raised:
            load_layer_map(tmp_path)
        assert (raised.value.source, raised.value.field) == (str(tmp_path / "layers.yaml"), field)
