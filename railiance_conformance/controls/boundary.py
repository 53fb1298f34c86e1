"""Layer boundaries (ADR-003) in the cluster: check kinds over a snapshot and the layer map -> Outcome.

The layer map (``policies/layers.yaml``) is policy, not a sentence: it comes with
``ClusterEnv.layer_map`` (the bundled one when not given). Example:
``CHECK_KINDS["boundary.components.layer"].evaluate(snapshot, {}, ClusterEnv(layer_map=load_layer_map(policy_dir)))``
-> DRIFT with ``observed == {"argocd/argocd": "railiance-cluster (S2)", ...}``. Every boundary Outcome keys its
``expected``/``observed`` by the violating target (a namespace or a component ``<namespace>/<name>``),
so ``waivers.apply_outcome`` can waive violations one by one; a pass has ``{}`` for both.
How a component is named and which repo it is taken to come from: see ``policies/layers.yaml``.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from railiance_conformance.controls.grammar import and_list
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.policy import DEFAULT_POLICY_DIR, PolicyError, load_document
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import decode_helm_release
from railiance_conformance.vocabulary import check_kind

LayerMap = Mapping[str, Any]
WORKLOAD_KINDS = ("deployments", "statefulsets", "daemonsets")
BUILTIN_OWNERS = {"ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
HELM_RELEASE = "meta.helm.sh/release-name"
ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
K3S_OBJECTSET = "objectset.rio.cattle.io/"


def load_layer_map(policy_dir: Path = DEFAULT_POLICY_DIR) -> dict[str, Any]:
    """``load_layer_map(Path("policies"))["namespaces"]["gitea"]`` -> ``"S5"``; PolicyError names file and field."""
    path = Path(policy_dir) / "layers.yaml"
    doc = load_document(path, "layer-map")
    repos = set(doc["repos"]["names"])

    def known(repo: str | None, field: str) -> None:
        if repo is not None and repo not in repos:
            raise PolicyError(str(path), field, f"repo {repo!r} is not one of repos.names {sorted(repos)}")

    for layer, entry in doc["layers"].items():
        known(entry["repo"], f"layers.{layer}.repo")
    for key, entry in doc["components"].items():
        if key.split("/", 1)[0] not in doc["namespaces"]:
            raise PolicyError(str(path), f"components.{key}", f"namespace {key.split('/', 1)[0]!r} is not in namespaces")
        known(entry["repo"], f"components.{key}.repo")
    return doc


def _meta(obj: dict) -> tuple[dict, dict]:
    meta = obj.get("metadata", {})
    return meta.get("labels") or {}, meta.get("annotations") or {}


def _operator_owner(obj: dict) -> dict | None:
    """The controlling owner when it is not a built-in workload (an operator's custom resource)."""
    owners = obj.get("metadata", {}).get("ownerReferences") or []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    return owner if owner and owner.get("kind") not in BUILTIN_OWNERS else None


def _units(snap: ClusterSnapshot) -> Iterator[dict]:
    """Top-level workloads, bare Pods and operator-owned Pods; Pods of built-in controllers are judged
    through their Deployment/StatefulSet/DaemonSet."""
    for kind in WORKLOAD_KINDS:
        for obj in snap.list(kind):
            owners = obj["metadata"].get("ownerReferences") or []
            if not owners or _operator_owner(obj):
                yield obj
    for pod in snap.list("pods"):
        if not pod["metadata"].get("ownerReferences") or _operator_owner(pod):
            yield pod


def manager(obj: dict, layer_map: LayerMap) -> tuple[str, str]:
    """``("helm", "release gitea")``, ``("argocd", ...)``, ``("k3s", ...)``, ``("operator", "Cluster gitea-db")``,
    ``("kubectl", ...)`` or ``("unmanaged", ...)``."""
    labels, annotations = _meta(obj)
    settings = layer_map["managers"]
    owner = _operator_owner(obj)
    if owner:
        return "operator", f"owned by {owner.get('kind')} {owner.get('name')}"
    if ARGOCD_TRACKING in annotations:
        return "argocd", f"Argo CD application {annotations[ARGOCD_TRACKING].split(':', 1)[0]}"
    if HELM_RELEASE in annotations or labels.get("app.kubernetes.io/managed-by") == "Helm":
        return "helm", f"Helm release {annotations.get(HELM_RELEASE, labels.get('app.kubernetes.io/instance', '?'))}"
    if settings["argocd_tracking_method"] == "label" and settings["argocd_instance_label"] in labels:
        return "argocd", f"Argo CD application {labels[settings['argocd_instance_label']]} (label tracking)"
    if any(key.startswith(K3S_OBJECTSET) for key in annotations):
        return "k3s", f"applied by k3s ({annotations.get(K3S_OBJECTSET + 'owner-gvk', 'objectset')})"
    if LAST_APPLIED in annotations:
        return "kubectl", "kubectl apply (last-applied-configuration, no Helm or Argo CD markers)"
    return "unmanaged", "no manager markers (kubectl create/run or an API client)"


def component_key(obj: dict) -> str:
    """``<namespace>/<name>`` of the component a workload belongs to (rule: policies/layers.yaml)."""
    labels, annotations = _meta(obj)
    namespace = obj["metadata"].get("namespace", "")
    owner = _operator_owner(obj)
    if HELM_RELEASE in annotations:
        return f"{annotations.get('meta.helm.sh/release-namespace', namespace)}/{annotations[HELM_RELEASE]}"
    if ARGOCD_TRACKING in annotations:
        return f"{namespace}/{annotations[ARGOCD_TRACKING].split(':', 1)[0]}"
    if owner:
        return f"{namespace}/{owner.get('name')}"
    if any(key.startswith(K3S_OBJECTSET) for key in annotations):
        return f"{namespace}/k3s"
    name = labels.get("app.kubernetes.io/part-of") or labels.get("app.kubernetes.io/instance")
    return f"{namespace}/{name or obj['metadata']['name']}"


def _releases(snap: ClusterSnapshot) -> list[dict]:
    """The newest revision Secret of every installed Helm release."""
    newest: dict[tuple[str, str], dict] = {}
    for secret in snap.list("secrets", label_selector="owner=helm"):
        labels = secret["metadata"].get("labels") or {}
        if secret.get("type") != "helm.sh/release.v1" or "name" not in labels:
            continue
        key = (secret["metadata"].get("namespace", ""), labels["name"])
        if key not in newest or int(labels.get("version", 0)) > int(newest[key]["metadata"]["labels"].get("version", 0)):
            newest[key] = secret
    return [s for s in newest.values() if s["metadata"]["labels"].get("status") not in ("uninstalled", "uninstalling")]


def _result(expected: dict, observed: dict, evidence: dict[str, Any]) -> Outcome:
    status = Status.DRIFT if observed else Status.PASS
    return Outcome(status, expected, observed, evidence=tuple(evidence.items()))


def _layers(env) -> LayerMap:
    if env is None:
        return load_layer_map()
    return env.layers()


LAYER_MAP = r"policies/layers\.yaml"


@check_kind("boundary.namespaces.owned", rf"every namespace is owned by a layer of {LAYER_MAP}", target="cluster",
            reads=lambda p: ["namespaces"])
def namespace_owned(snap: ClusterSnapshot, params: Mapping[str, Any], env=None) -> Outcome:
    """Every namespace of the cluster is declared in the layer map; the drift is keyed by namespace."""
    desired = _layers(env)
    names = sorted(ns["metadata"]["name"] for ns in snap.list("namespaces"))
    missing = [ns for ns in names if ns not in desired["namespaces"]]
    return _result({ns: "a layer in the layer map" for ns in missing}, {ns: "not in the layer map" for ns in missing},
                   {"namespaces": len(names), "declared_not_found": sorted(set(desired["namespaces"]) - set(names))})


def _repo_layer(layer_map: LayerMap, repo: str) -> str:
    layers = [layer for layer, entry in layer_map["layers"].items() if entry["repo"] == repo]
    return f"{repo} ({', '.join(layers) or 'no layer'})"


@check_kind("boundary.components.layer",
            rf"every component is deployed from the repo of its namespace's layer in {LAYER_MAP}", target="cluster",
            reads=lambda p: ["secrets", *WORKLOAD_KINDS, "pods"])
def component_layer(snap: ClusterSnapshot, params: Mapping[str, Any], env=None) -> Outcome:
    """Every Helm release and workload comes from the repo of its namespace's layer (label, else the map)."""
    desired = _layers(env)
    found: dict[str, set[str]] = defaultdict(set)  # component -> repos named by the repo label
    for secret in _releases(snap):
        release = decode_helm_release(secret)
        key = f"{release.get('namespace', secret['metadata'].get('namespace'))}/{release.get('name')}"
        found[key] |= {v for v in [(secret["metadata"].get("labels") or {}).get(desired["repo_label"])] if v}
    for obj in _units(snap):
        labels, annotations = _meta(obj)
        found[component_key(obj)] |= {v for v in [labels.get(desired["repo_label"]),
                                                  annotations.get(desired["repo_label"])] if v}
    expected, observed, source = {}, {}, {}
    for key, labelled in sorted(found.items()):
        layer = desired["namespaces"].get(key.split("/", 1)[0])
        declared = desired["components"].get(key, {}).get("repo")
        repos = sorted(labelled) or ([declared] if declared else [])
        source[key] = "label" if labelled else ("layer map" if declared else "unknown")
        want = desired["layers"][layer]["repo"] if layer else None
        if layer is None:
            expected[key], observed[key] = "a namespace in the layer map", f"namespace {key.split('/', 1)[0]} has no layer"
        elif not repos:
            expected[key] = _repo_layer(desired, want) if want else f"no repo ({layer} has none yet)"
            observed[key] = f"undeclared: no {desired['repo_label']} label and not in the layer map"
        elif repos != [want]:
            expected[key] = _repo_layer(desired, want) if want else f"no repo ({layer} has none yet)"
            observed[key] = ", ".join(_repo_layer(desired, repo) for repo in repos)
    return _result(expected, observed, {"components": len(found), "repo_source": source})


# the managers a sentence may name -> how manager() calls them
MANAGERS = {"Helm": "helm", "Argo CD": "argocd", "k3s": "k3s", "its operator": "operator", "kubectl": "kubectl"}
_MANAGER = "|".join(re.escape(m) for m in MANAGERS)


@check_kind("boundary.components.manager",
            rf"every workload is managed by (?P<accepted>(?:{_MANAGER})(?:(?:, | or )(?:{_MANAGER}))*)", target="cluster",
            convert=lambda g: {"accepted": [MANAGERS[m] for m in and_list(g["accepted"])]},
            schema={"required": ["accepted"], "properties": {"accepted": {"type": "array", "minItems": 1}}},
            reads=lambda p: [*WORKLOAD_KINDS, "pods"])
def component_manager(snap: ClusterSnapshot, params: Mapping[str, Any], env=None) -> Outcome:
    """Every workload is managed by one of the accepted managers (Helm, Argo CD, k3s, an operator)."""
    desired = _layers(env)
    accepted = list(params["accepted"])
    bad: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    counts: dict[str, int] = defaultdict(int)
    for obj in _units(snap):
        kind, detail = manager(obj, desired)
        counts[kind] += 1
        if kind not in accepted:
            bad[component_key(obj)][detail].append(f"{obj.get('kind', '?')} {obj['metadata']['name']}")
    want = "managed by " + (" or ".join([", ".join(accepted[:-1]), accepted[-1]]) if len(accepted) > 1 else accepted[0])
    observed = {key: "; ".join(f"{detail}: {', '.join(sorted(objs))}" for detail, objs in sorted(details.items()))
                for key, details in sorted(bad.items())}
    return _result({key: want for key in observed}, observed, {"managers": dict(sorted(counts.items()))})


@check_kind("boundary.namespaces.layer",
            rf"the namespaces (?P<namespaces>[a-z0-9-]+(?:(?:, | and )[a-z0-9-]+)*) exist and belong to layer "
            rf"(?P<layer>S[1-5]) in {LAYER_MAP}", target="cluster",
            convert=lambda g: {"namespaces": and_list(g["namespaces"]), "layer": g["layer"]},
            schema={"required": ["namespaces", "layer"]}, reads=lambda p: ["namespaces"])
def namespaces_layer(snap: ClusterSnapshot, params: Mapping[str, Any], env=None) -> Outcome:
    """Each named namespace exists in the cluster and the layer map gives it the layer."""
    desired = _layers(env)
    present = {ns["metadata"]["name"] for ns in snap.list("namespaces")}
    layer = params["layer"]
    expected = {ns: f"present, layer {layer}" for ns in params["namespaces"]}
    observed = {ns: f"{'present' if ns in present else 'absent'}, "
                    f"{'layer ' + desired['namespaces'][ns] if ns in desired['namespaces'] else 'not in the layer map'}"
                for ns in params["namespaces"]}
    return Outcome.compare(expected, observed, evidence={"layer_repo": desired["layers"][layer]["repo"]})
