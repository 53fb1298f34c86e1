"""Cluster kinds about workloads: a Deployment, StatefulSet or DaemonSet, or every one of some kinds in a
namespace, available with every replica ready.
"""
from __future__ import annotations

from typing import Any, Mapping

from railiance_conformance.controls.cluster import DEFAULT_ENV, ClusterEnv, named_or_selected, plural
from railiance_conformance.controls.grammar import AND, NAME, NS, SELECTOR, Params, and_list
from railiance_conformance.finding import Outcome
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import ABSENT, condition, pod_problems
from railiance_conformance.vocabulary import check_kind


def _ref(kind: str, obj: dict) -> str:
    """``Deployment gitea/gitea``: the object an observed value is about, as kubectl names it."""
    meta = obj.get("metadata", {})
    return f"{kind} {meta['namespace']}/{meta['name']}" if meta.get("namespace") else f"{kind} {meta.get('name')}"


def _ready(obj: dict) -> dict[str, Any]:
    """Replica counts as the API reports them; a count the API omits is ``"absent"``, never 0."""
    kind = obj.get("kind", "Deployment")
    spec, status = obj.get("spec", {}), obj.get("status", {})
    if kind == "DaemonSet":
        return {"object": _ref(kind, obj), "replicas": status.get("desiredNumberScheduled", ABSENT),
                "available": status.get("numberAvailable", ABSENT), "ready": status.get("numberReady", ABSENT)}
    state = {"object": _ref(kind, obj), "replicas": spec.get("replicas", 1),
             "available": status.get("availableReplicas", ABSENT), "ready": status.get("readyReplicas", ABSENT)}
    if kind == "Deployment":
        state["Available"] = condition(obj, "Available") or ABSENT
    return state


def _wanted(state: Mapping[str, Any]) -> dict[str, Any]:
    n = state["replicas"]
    return {**state, "available": n, "ready": n, **({"Available": "True"} if "Available" in state else {})}


def _available(snap: ClusterSnapshot, obj: dict) -> Outcome:
    """An available workload: every replica available and ready; otherwise the pods' own causes."""
    state = _ready(obj)
    expected = _wanted(state)
    if state != expected:
        causes = pod_problems(snap.list("pods", namespace=obj["metadata"].get("namespace")), obj)
        if causes:
            state["causes"] = causes
    return Outcome.compare(expected, state)


def all_available(snap: ClusterSnapshot, objects: list[dict]) -> tuple[dict, dict]:
    """Expected and observed of several workloads, keyed by ``Kind ns/name``."""
    expected, observed = {}, {}
    for obj in objects:
        outcome = _available(snap, obj)
        ref = outcome.observed.pop("object")
        expected[ref] = {k: v for k, v in outcome.expected.items() if k != "object"}
        observed[ref] = outcome.observed
    return expected, observed


_WORKLOAD = r"(?P<kind>Deployment|StatefulSet|DaemonSet)"


@check_kind("cluster.workload.available",
            rf"(?:the )?{_WORKLOAD} (?:(?P<namespace>{NS})/(?P<name>{NAME})|labelled (?P<selector>{SELECTOR}) "
            rf"in (?P<in_namespace>{NS})) is available with every replica ready", target="cluster",
            convert=lambda g: {"kind": g["kind"], "namespace": g["namespace"] or g["in_namespace"],
                               **({"name": g["name"]} if g["name"] else {"selector": g["selector"]})},
            schema={"required": ["kind", "namespace"], "oneOf": [{"required": ["name"]}, {"required": ["selector"]}]},
            reads=lambda p: [plural(p["kind"]), "pods"])
def workload_available(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """One workload by name, or every workload matching a label selector, available with every replica ready."""
    kind, namespace = params["kind"], params["namespace"]
    found = named_or_selected(snap.list(plural(kind), namespace=namespace), params)
    missing = f"no {kind} {params['name']} in {namespace}" if "name" in params \
        else f"no {kind} labelled {params['selector']} in {namespace}"
    if not found:
        return Outcome.compare(f"an available {kind}", missing)
    if len(found) == 1:
        outcome = _available(snap, found[0])
        return Outcome(outcome.status, outcome.expected, outcome.observed,
                       evidence=((kind.lower(), found[0]["metadata"]["name"]),))
    expected, observed = all_available(snap, found)
    return Outcome.compare(expected, observed)


@check_kind("cluster.workloads.available",
            rf"every (?P<kinds>(?:Deployment|StatefulSet|DaemonSet)(?:{AND}(?:Deployment|StatefulSet|DaemonSet))*) "
            rf"in (?P<namespace>{NS}) is available with every replica ready", target="cluster",
            convert=lambda g: {"kinds": and_list(g["kinds"]), "namespace": g["namespace"]},
            schema={"required": ["kinds", "namespace"]},
            reads=lambda p: [*(plural(k) for k in p["kinds"]), "pods"])
def workloads_available(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """Every workload of the given kinds in a namespace available with every replica ready (at least one)."""
    objects = [o for k in params["kinds"] for o in snap.list(plural(k), namespace=params["namespace"])]
    if not objects:
        return Outcome.compare(f"available {' and '.join(params['kinds'])}s",
                               f"no {' or '.join(params['kinds'])} in {params['namespace']}")
    expected, observed = all_available(snap, objects)
    return Outcome.compare(expected, observed)
