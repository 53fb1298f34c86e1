"""What the cluster check kinds share (``ClusterEnv``, kind words, object references, sentence values),
``service_nodeport`` and ``cluster.pending``.

A cluster kind's sentence states the desired value, ``reads`` names the API kinds it LISTs or GETs
(``probes.api_kinds.API_KINDS``; nothing else is read), and its evaluator compares. Evaluators never
assert and never talk to the API directly: they read a ``ClusterSnapshot`` (lazy, one LIST per kind),
so they run in-process on plain objects too::

    CHECK_KINDS["cluster.secret.keys"].evaluate(ClusterSnapshot.from_objects(objs),
                                          {"namespace": "databases", "name": "gitea-db-credentials",
                                           "keys": ["username", "password"]})  # -> Outcome(PASS, ...)

Secret values never leave ``resources.cluster_objects``: Secrets are checked by key name, Gitea's
config is masked while it is parsed, Helm release values are read in memory for the paths a
sentence names. What is not a sentence (the cluster's DNS domain, the layer map) comes with
``ClusterEnv``. The kinds, one module per subject: ``workloads``, ``objects``, ``cnpg``, ``services``,
``secrets``, ``helm``, ``gitea`` (and ``boundary``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from railiance_conformance.controls.grammar import Params
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes.api_kinds import BY_KIND
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import ABSENT
from railiance_conformance.vocabulary import check_kind

SINGULAR = {k.kind.lower(): k.kind for k in BY_KIND.values()}


@dataclass(frozen=True)
class ClusterEnv:
    """What the cluster checks need that is not a sentence: the cluster's DNS domain (kubelet's
    clusterDomain, ``policies/cluster.yaml``) and the layer map (``policies/layers.yaml``; loaded
    from the bundled policies when not given)."""

    cluster_domain: str = "cluster.local"
    layer_map: Mapping[str, Any] | None = None
    # the storage driver the operator's helm uses (HELM_DRIVER of the suite's environment, as helm reads it)
    helm_driver: str = field(default_factory=lambda: os.environ.get("HELM_DRIVER", ""))

    def layers(self) -> Mapping[str, Any]:
        if self.layer_map is not None:
            return self.layer_map
        from railiance_conformance.controls.boundary import load_layer_map
        return load_layer_map()


DEFAULT_ENV = ClusterEnv()


def plural(kind_word: str) -> str:
    """``"pod"``/``"Pod"``/``"StatefulSet"`` -> ``"pods"``/``"statefulsets"`` (``probes.api_kinds.API_KINDS``)."""
    return BY_KIND[SINGULAR[kind_word.lower()]].name


def labels_match(obj: dict, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in (part.split("=", 1) for part in selector.split(",")))


def named_or_selected(objects: list[dict], params: Params) -> list[dict]:
    """The objects a sentence names: the one called ``params["name"]``, or every one matching ``params["selector"]``."""
    if "name" in params:
        return [o for o in objects if o["metadata"]["name"] == params["name"]]
    return [o for o in objects if labels_match(o, params["selector"])]


def scalar(text: str) -> Any:
    """A value as the sentence writes it: ``16`` -> 16, ``true`` -> True, ``"a b"`` -> ``"a b"``, ``10Gi`` -> ``"10Gi"``."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    value = yaml.safe_load(text)
    return value if isinstance(value, (int, float, bool, str)) else text


def field_at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return ABSENT
        obj = obj[part]
    return obj


def service_nodeport(snap: ClusterSnapshot, namespace: str, name: str) -> int:
    """``service_nodeport(snap, "gitea", "gitea-ssh")`` -> 30022: the first NodePort of a NodePort Service
    (for the cross-layer host.gitea_ssh.config check). LookupError says why there is none."""
    service = snap.get("services", namespace, name)
    if service is None:
        raise LookupError(f"no Service {name} in {namespace}")
    ports = [p.get("nodePort") for p in service.get("spec", {}).get("ports", []) if p.get("nodePort")]
    if service.get("spec", {}).get("type") != "NodePort" or not ports:
        raise LookupError(f"Service {namespace}/{name} is not a NodePort Service")
    return int(ports[0])


@check_kind("cluster.pending", r'"(?P<control_id>[a-z0-9_.]+)" stays pending until a human approves the task',
            target="cluster", reads=lambda p: [])
def cluster_pending(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:  # pragma: no cover
    """A control whose task waits for a human: the catalog's ``pending`` makes it pending, never evaluated."""
    return Outcome(Status.PENDING, reason="pending")
