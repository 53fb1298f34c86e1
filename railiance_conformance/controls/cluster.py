"""Cluster check kinds (S2/S3/S5: RAIL-HO-WP-0004 T03-T06): a snapshot + params -> Outcome.

Each kind below is one family of Then sentences (``vocabulary.check_kind``), like Goss's resource
types and InSpec's resources: its sentence states the desired value, ``reads`` names the API kinds
it LISTs or GETs (``probes.cluster.API_KINDS``; nothing else is read), and its evaluator compares.
Evaluators never assert and never talk to the API directly: they read a ``ClusterSnapshot``
(lazy, one LIST per kind), so they run in-process on plain objects too::

    CHECK_KINDS["cluster.secret.keys"].evaluate(ClusterSnapshot.from_objects(objs),
                                          {"namespace": "databases", "name": "gitea-db-credentials",
                                           "keys": ["username", "password"]})  # -> Outcome(PASS, ...)

Secret values never leave ``resources.cluster_objects``: Secrets are checked by key name, Gitea's
config is masked while it is parsed, Helm release values are read in memory for the paths a
sentence names. What is not a sentence (the cluster's DNS domain, the layer map) comes with
``ClusterEnv``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from railiance_conformance.controls.grammar import AND, NAME, NS, QUANTITY, SELECTOR, Params, and_list
from railiance_conformance.expectations import matches
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.gate.backups import BACKUPS, backup_recency
from railiance_conformance.probes.cluster import BY_KIND, SERVICE_PROXY, ClusterSnapshot, ClusterUnavailable
from railiance_conformance.redact import redact_url
from railiance_conformance.resources.cluster_objects import (
    ABSENT, HELM_DRIVERS, coalesce_values, condition, decode_helm_release, gitea_section, gitea_value_read,
    helm_releases, pod_problems, postgres_major, quantity_bytes, secret_keys)
from railiance_conformance.resources.endpoints import postgres_endpoint, redis_endpoint, redis_url_rejected
from railiance_conformance.vocabulary import check_kind

WORKLOADS = ("deployments", "statefulsets", "daemonsets")
HELM_RELEASE = "meta.helm.sh/release-name"
_SINGULAR = {k.kind.lower(): k.kind for k in BY_KIND.values()}


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
    """``"pod"``/``"Pod"``/``"StatefulSet"`` -> ``"pods"``/``"statefulsets"`` (``probes.cluster.API_KINDS``)."""
    return BY_KIND[_SINGULAR[kind_word.lower()]].name


def _ref(kind: str, obj: dict) -> str:
    """``Deployment gitea/gitea``: the object an observed value is about, as kubectl names it."""
    meta = obj.get("metadata", {})
    return f"{kind} {meta['namespace']}/{meta['name']}" if meta.get("namespace") else f"{kind} {meta.get('name')}"


def _labels_match(obj: dict, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in (part.split("=", 1) for part in selector.split(",")))


def _named_or_selected(objects: list[dict], params: Params) -> list[dict]:
    """The objects a sentence names: the one called ``params["name"]``, or every one matching ``params["selector"]``."""
    if "name" in params:
        return [o for o in objects if o["metadata"]["name"] == params["name"]]
    return [o for o in objects if _labels_match(o, params["selector"])]


def _scalar(text: str) -> Any:
    """A value as the sentence writes it: ``16`` -> 16, ``true`` -> True, ``"a b"`` -> ``"a b"``, ``10Gi`` -> ``"10Gi"``."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    value = yaml.safe_load(text)
    return value if isinstance(value, (int, float, bool, str)) else text


def _value(text: str) -> Any:
    """``"1 to 3"`` -> ``{"between": [1, 3]}`` (``expectations``); ``"one of 1, 3"`` -> ``{"one_of": [1, 3]}``."""
    m = re.fullmatch(r"(-?\d+) to (-?\d+)", text)
    if m:
        return {"between": [int(m[1]), int(m[2])]}
    if text.startswith("one of "):
        return {"one_of": [_scalar(v) for v in and_list(text[len("one of "):])]}
    return _scalar(text)


# --- workloads -----------------------------------------------------------------------------------

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


def _all_available(snap: ClusterSnapshot, objects: list[dict]) -> tuple[dict, dict]:
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
    found = _named_or_selected(snap.list(plural(kind), namespace=namespace), params)
    missing = f"no {kind} {params['name']} in {namespace}" if "name" in params \
        else f"no {kind} labelled {params['selector']} in {namespace}"
    if not found:
        return Outcome.compare(f"an available {kind}", missing)
    if len(found) == 1:
        outcome = _available(snap, found[0])
        return Outcome(outcome.status, outcome.expected, outcome.observed,
                       evidence=((kind.lower(), found[0]["metadata"]["name"]),))
    expected, observed = _all_available(snap, found)
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
    expected, observed = _all_available(snap, objects)
    return Outcome.compare(expected, observed)


# --- objects present, absent, fields -------------------------------------------------------------

_KIND_WORD = "|".join(sorted({*_SINGULAR, *_SINGULAR.values()}, key=lambda w: (-len(w), w)))


@check_kind("cluster.objects.absent",
            rf"no (?P<kinds>(?:{_KIND_WORD})(?:(?:, | or )(?:{_KIND_WORD}))*) of (?P<app>{NAME}) is left in "
            rf"(?:any namespace|namespace (?P<namespace>{NS}))", target="cluster",
            convert=lambda g: {"kinds": [plural(k) for k in and_list(g["kinds"])], "app": g["app"],
                               **({"namespace": g["namespace"]} if g["namespace"] else {})},
            schema={"required": ["kinds", "app"]}, reads=lambda p: list(p["kinds"]))
def objects_absent(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """No object of the kinds labelled ``app.kubernetes.io/name=APP`` or with APP in its name is left."""
    name, found = params["app"], []
    for kind in params["kinds"]:
        for obj in snap.list(kind, namespace=params.get("namespace")):
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get("app.kubernetes.io/name") == name or name in meta["name"]:
                found.append(f"{kind[:-1]} {meta.get('namespace')}/{meta['name']}")
    return Outcome.compare([], sorted(found))


@check_kind("cluster.object.present",
            rf"(?:a |an )?(?P<kind>{_KIND_WORD}) (?:(?P<namespace>{NS})/(?P<name>{NAME})|labelled "
            rf"(?P<selector>{SELECTOR}) in (?P<in_namespace>{NS})) exists", target="cluster",
            convert=lambda g: {"kind": plural(g["kind"]), "namespace": g["namespace"] or g["in_namespace"],
                               **({"name": g["name"]} if g["name"] else {"selector": g["selector"]})},
            schema={"required": ["kind", "namespace"]}, reads=lambda p: [p["kind"]])
def object_present(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """An object of a kind by name, or at least one matching a label selector, in a namespace."""
    kind, namespace = params["kind"], params["namespace"]
    found = _named_or_selected(snap.list(kind, namespace=namespace), params)
    what = f"{kind[:-1]} {namespace}/{params['name']}" if "name" in params \
        else f"a {kind[:-1]} labelled {params['selector']} in {namespace}"
    return Outcome.compare(f"{what}: present", f"{what}: {'present' if found else 'absent'}",
                           evidence={"found": [o["metadata"]["name"] for o in found]})


# A derived field: what a component computes from the object (CNPG picks the image, hence the major).
DERIVED = {"PostgreSQL major": "postgres_major"}
_FIELD = r"(?:PostgreSQL major|[a-z][A-Za-z0-9]*(?:\.[A-Za-z0-9_-]+)+)"
_FIELD_VALUE = r'(?:-?\d+ to -?\d+|one of [^,"]+?(?:, [^,"]+?)*(?= and |, |$)|"[^"]*"|[^\s,"]+)'


def _fields(text: str) -> dict[str, Any]:
    found = {}
    for m in re.finditer(rf"(?P<field>{_FIELD}) (?P<value>{_FIELD_VALUE})", text):
        found[m["field"]] = _value(m["value"])
    return found


def _path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return ABSENT
        obj = obj[part]
    return obj


def _same_quantity(want: Any, got: Any) -> bool:
    try:
        return isinstance(want, str) and isinstance(got, str) and quantity_bytes(want) == quantity_bytes(got)
    except ValueError:
        return False


@check_kind("cluster.object.fields",
            rf"(?P<kind>[A-Z][A-Za-z]+) (?P<namespace>{NS})/(?P<name>{NAME}) has "
            rf"(?P<fields>{_FIELD} {_FIELD_VALUE}(?:{AND}{_FIELD} {_FIELD_VALUE})*)", target="cluster",
            convert=lambda g: {"kind": g["kind"], "namespace": g["namespace"], "name": g["name"],
                               "fields": _fields(g["fields"])},
            schema={"required": ["kind", "namespace", "name", "fields"],
                    "properties": {"kind": {"enum": sorted(BY_KIND)},
                                   "fields": {"type": "object", "minProperties": 1}}},
            reads=lambda p: [BY_KIND[p["kind"]].name]
            + (["imagecatalogs.postgresql.cnpg.io", "clusterimagecatalogs.postgresql.cnpg.io"]
               if "PostgreSQL major" in p["fields"] else []))
def object_fields(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """Fields of one object (custom resources included) equal to / within the stated values.

    A field is a dotted path (``spec.storage.size``; quantities compare by bytes, ``10Gi == 10240Mi``)
    or a derived value: ``PostgreSQL major`` of a CloudNativePG Cluster as the operator derives it
    (imageName, imageCatalogRef, or its default image in status.image).
    """
    kind, namespace, name = params["kind"], params["namespace"], params["name"]
    ref = f"{kind} {namespace}/{name}"
    expected = {"object": ref, **params["fields"]}
    obj = next((o for o in snap.list(BY_KIND[kind].name, namespace=namespace) if o["metadata"]["name"] == name), None)
    if obj is None:
        return Outcome.compare(expected, f"no {ref}")
    observed: dict[str, Any] = {"object": ref}
    evidence: dict[str, Any] = {}
    for field, want in params["fields"].items():
        if field == "PostgreSQL major":
            observed[field], evidence["image"] = postgres_major(obj, lambda k, ns, n: snap.get(k, ns, n))
            continue
        got = _path(obj, field)
        observed[field] = want if _same_quantity(want, got) else got  # 10Gi == 10240Mi
    return Outcome.compare(expected, observed, evidence=evidence or None)


@check_kind("cluster.cnpg.healthy",
            rf"Cluster (?P<namespace>{NS})/(?P<name>{NAME}) is in phase \"(?P<phase>[^\"]+)\" with every instance ready",
            target="cluster", schema={"required": ["namespace", "name", "phase"]},
            reads=lambda p: ["clusters.postgresql.cnpg.io"])
def cnpg_healthy(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """A CloudNativePG Cluster's status.phase, and status.readyInstances equal to spec.instances."""
    ref = f"Cluster {params['namespace']}/{params['name']}"
    cluster = next((c for c in snap.list("clusters.postgresql.cnpg.io", namespace=params["namespace"])
                    if c["metadata"]["name"] == params["name"]), None)
    if cluster is None:
        return Outcome.compare(params["phase"], f"no {ref}")
    instances = cluster.get("spec", {}).get("instances", ABSENT)
    status = cluster.get("status", {})
    observed = {"object": ref, "phase": status.get("phase", ABSENT), "readyInstances": status.get("readyInstances", ABSENT)}
    expected = {"object": ref, "phase": params["phase"], "readyInstances": instances}
    if not matches(expected, observed) and status.get("phaseReason"):
        observed["phaseReason"] = status["phaseReason"]
    return Outcome.compare(expected, observed, evidence={"currentPrimary": status.get("currentPrimary")})


_PRIMARY_OK = "an instance of the cluster, no switchover pending"


def _primary(status: Mapping[str, Any]) -> str:
    """``kubectl cnpg status``'s "Current Primary" as a verdict: an instance of the cluster (one of
    status.instanceNames, when the operator lists them) that is also the target primary."""
    current, target = status.get("currentPrimary"), status.get("targetPrimary")
    names = status.get("instanceNames")
    if not current:
        return "none"
    if names and current not in names:
        return f"{current} (not an instance of the cluster: {', '.join(names)})"
    if target and target != current:
        return f"{current} (switching over to {target})"
    return _PRIMARY_OK


def _condition_entry(obj: dict, kind: str) -> Mapping[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == kind), {})


@check_kind("cluster.cnpg.status",
            rf"Cluster (?P<namespace>{NS})/(?P<name>{NAME}) reports every instance ready, a current primary, "
            rf"continuous archiving working and a completed backup in the last (?P<window_hours>[0-9]+) hours",
            target="cluster", convert=lambda g: {**g, "window_hours": int(g["window_hours"])},
            schema={"required": ["namespace", "name", "window_hours"],
                    "properties": {"window_hours": {"type": "integer", "minimum": 1}}},
            reads=lambda p: ["clusters.postgresql.cnpg.io", BACKUPS])
def cnpg_status(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """What ``kubectl cnpg status`` reports of a CloudNativePG Cluster, from its status and conditions:
    status.readyInstances equal to spec.instances; status.currentPrimary an instance of the cluster
    and equal to status.targetPrimary (no switchover pending); the condition ContinuousArchiving
    "True" (CNPG sets it from the WAL archiver: ContinuousArchivingSuccess/Failing); and the newest
    Backup of the cluster ``completed`` within ``window_hours`` (``gate.backups.backup_recency``: its
    stoppedAt, else startedAt, else creation time)."""
    ns, name = params["namespace"], params["name"]
    ref = f"Cluster {ns}/{name}"
    expected = {"object": ref, "ready instances": ABSENT, "current primary": _PRIMARY_OK,
                "continuous archiving": "True", "newest backup": f"completed within {params['window_hours']} h"}
    cluster = next((c for c in snap.list("clusters.postgresql.cnpg.io", namespace=ns)
                    if c["metadata"]["name"] == name), None)
    if cluster is None:
        return Outcome.compare({k: v for k, v in expected.items() if k != "ready instances"}, f"no {ref}")
    status = cluster.get("status", {})
    expected["ready instances"] = cluster.get("spec", {}).get("instances", ABSENT)
    archiving = _condition_entry(cluster, "ContinuousArchiving")
    backup = backup_recency(snap, namespace=ns, cluster=name, window_hours=params["window_hours"])
    observed = {"object": ref, "ready instances": status.get("readyInstances", ABSENT),
                "current primary": _primary(status),
                "continuous archiving": archiving.get("status", ABSENT),
                "newest backup": expected["newest backup"] if backup.status is Status.PASS
                else backup.reason or str(backup.observed)}
    evidence: dict[str, Any] = {"currentPrimary": status.get("currentPrimary"), "phase": status.get("phase"),
                                "backup": backup.observed if isinstance(backup.observed, Mapping) else None}
    if archiving.get("status") != "True" and archiving:
        evidence["continuous archiving"] = redact_url(f"{archiving.get('reason', '')}: {archiving.get('message', '')}")[:300]
    if status.get("lastFailedBackup"):
        evidence["lastFailedBackup"] = status["lastFailedBackup"]
    return Outcome.compare(expected, observed, evidence=evidence)


# --- a Service's health endpoint through the API server's service proxy ----------------------------

_CHECK = r"[a-z][a-z0-9_.-]*:[a-z][a-z0-9_.-]*"


@check_kind("cluster.service.health",
            rf"Service (?P<namespace>{NS})/(?P<name>{NAME}) answers GET (?P<path>/[A-Za-z0-9/_.-]*) on port "
            rf"(?P<port>[a-z0-9-]+) through the API server's service proxy with the health checks? "
            rf"(?P<checks>{_CHECK}(?:{AND}{_CHECK})*) passing", target="cluster",
            convert=lambda g: {"namespace": g["namespace"], "name": g["name"], "path": g["path"], "port": g["port"],
                               "checks": and_list(g["checks"])},
            schema={"required": ["namespace", "name", "path", "port", "checks"],
                    "properties": {"checks": {"type": "array", "minItems": 1}}},
            reads=lambda p: [SERVICE_PROXY])
def service_health(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """A health endpoint in the IETF health-check format (draft-inadarei-api-health-check, as Gitea's
    ``/api/healthz`` answers: ``{"status": "pass", "checks": {"database:ping": [{"status": "pass"}]}}``;
    Gitea answers 200 on pass, 424 on fail: routers/web/healthcheck/check.go) read with one GET
    through the API server's service proxy (``http:NAME:PORT``; RBAC ``get`` on ``services/proxy``).
    Passes when every named check is ``pass``. The overall status is evidence only: it fails with
    any check, and one control per check keeps a cache outage off the database's control. A check
    listed several times counts by its worst entry; a check the answer omits (Gitea omits cache:ping
    when its cache is disabled) is absent, never a pass."""
    ns, name, path = params["namespace"], params["name"], params["path"]
    service = f"http:{name}:{params['port']}"
    where = f"Service {ns}/{name} GET {path}"
    expected = {"object": where, **{check: "pass" for check in params["checks"]}}
    answer = snap.proxy_get(ns, service, path)
    evidence: dict[str, Any] = {"url": f"/api/v1/namespaces/{ns}/services/{service}/proxy{path}",
                                "http_status": answer.status}
    try:
        body = json.loads(answer.body) if "json" in answer.content_type else None
    except ValueError:
        body = None
    if not isinstance(body, Mapping) or "status" not in body:
        return Outcome.compare(expected, f"not a health answer: HTTP {answer.status} {answer.content_type} "
                                         f"{redact_url(answer.body[:120])!r}", evidence=evidence)
    checks = body.get("checks") if isinstance(body.get("checks"), Mapping) else {}
    observed: dict[str, Any] = {"object": where}
    evidence["status"] = str(body["status"])
    for check in params["checks"]:
        entries = checks.get(check)
        if not isinstance(entries, list) or not entries:
            observed[check] = ABSENT
            continue
        states = [str((e or {}).get("status")) for e in entries if isinstance(e, Mapping)]
        observed[check] = next((s for s in states if s != "pass"), "pass") if states else ABSENT
        outputs = [redact_url(str(e["output"]))[:300] for e in entries if isinstance(e, Mapping) and e.get("output")]
        if outputs:
            evidence[f"{check} output"] = outputs
    return Outcome.compare(expected, observed, evidence=evidence)


@check_kind("cluster.secret.keys",
            rf"Secret (?P<namespace>{NS})/(?P<name>{NAME}) has the keys? (?P<keys>[A-Za-z0-9._-]+(?:{AND}[A-Za-z0-9._-]+)*)",
            target="cluster", convert=lambda g: {"namespace": g["namespace"], "name": g["name"], "keys": and_list(g["keys"])},
            schema={"required": ["namespace", "name", "keys"]}, reads=lambda p: ["secrets"])
def secret_has_keys(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """A Secret has the keys, by name only (GET by name; the values are never looked at)."""
    namespace, name, want = params["namespace"], params["name"], params["keys"]
    secret = snap.get("secrets", namespace, name)
    expected = {"secret": name, "keys_present": sorted(want)}
    if secret is None:
        return Outcome.compare(expected, f"no Secret {name} in {namespace}")
    keys = secret_keys(secret)
    return Outcome.compare(expected, {"secret": name, "keys_present": sorted(k for k in want if k in keys)},
                           evidence={"keys": keys})


# --- Helm ----------------------------------------------------------------------------------------

def _release_workloads(snap: ClusterSnapshot, namespace: str, release: str) -> list[dict]:
    """The workloads of a Helm release: annotated with its name by Helm, or labelled as its instance."""
    found = []
    for kind in WORKLOADS:
        for obj in snap.list(kind, namespace=namespace):
            meta = obj["metadata"]
            if (meta.get("annotations") or {}).get(HELM_RELEASE) == release \
                    or (meta.get("labels") or {}).get("app.kubernetes.io/instance") == release:
                found.append(obj)
    return found


_HELM_VALUE = r"[A-Za-z0-9_.-]+=[^\s,]+"
ALL_READY = "every workload available, every replica ready"


@check_kind("cluster.helm.release",
            rf"Helm release (?P<namespace>{NS})/(?P<release>{NAME}) of chart (?P<chart>{NAME}) is deployed"
            rf"(?P<ready> and ready)?(?:, with (?P<values>{_HELM_VALUE}(?:{AND}{_HELM_VALUE})*))?"
            rf"(?:{AND}(?P<volume_size>{QUANTITY}) volumes bound)?"
            rf"(?:{AND}the key (?P<secret_key>[A-Za-z0-9._-]+) in Secret (?P<secret>{NAME}))?", target="cluster",
            convert=lambda g: {"namespace": g["namespace"], "release": g["release"], "chart": g["chart"],
                               "ready": bool(g["ready"]),
                               **({"values": {k: _scalar(v) for k, _, v in (p.partition("=") for p in and_list(g["values"]))}}
                                  if g["values"] else {}),
                               **({"volume_size": g["volume_size"]} if g["volume_size"] else {}),
                               **({"secret": g["secret"], "secret_key": g["secret_key"]} if g["secret"] else {})},
            schema={"required": ["namespace", "release", "chart", "ready"],
                    "properties": {"volume_size": {"type": "string", "pattern": f"^{QUANTITY}$"}}},
            reads=lambda p: ["secrets", "configmaps"] + ([*WORKLOADS, "pods"] if p["ready"] else [])
            + (["persistentvolumeclaims"] if "volume_size" in p else []))
def helm_release(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """A Helm release's newest revision: deployed, of the chart; optionally its workloads ready, values
    (``helm get values --all``: the chart's defaults deep-merged with the user's), its PVCs bound
    with the size, and a key (by name) in a Secret of its namespace.

    The release is read from the storage driver helm uses (``HELM_DRIVER``, pkg/action/action.go
    ``Configuration.Init``): ``secret`` (the default) or ``configmap`` records; unset, both record kinds are
    looked for and the evidence says which held the release (Secrets win when both do, as helm without
    HELM_DRIVER reads Secrets). ``memory`` keeps nothing in the cluster and ``sql`` keeps releases in
    PostgreSQL: both are errors that say so."""
    ns, name = params["namespace"], params["release"]
    expected: dict[str, Any] = {"object": f"Helm release {ns}/{name}", "status": "deployed", "chart": params["chart"]}
    if params["ready"]:
        expected["workloads"] = ALL_READY
    if "values" in params:
        expected["values"] = dict(params["values"])
    if "volume_size" in params:
        expected["volumes"] = f"Bound {params['volume_size']}"
    if "secret" in params:
        expected[f"Secret {params['secret']} key"] = params["secret_key"]
    driver = env.helm_driver.strip().lower()
    storage = HELM_DRIVERS.get(driver)
    if storage is None:
        return Outcome.error(f"HELM_DRIVER={env.helm_driver!r} is no Helm storage driver (helm: unknown driver); "
                             "use secret, configmap, memory or sql", expected=expected)
    if storage in ("memory", "sql"):
        where = ("in the helm process's memory only" if storage == "memory"
                 else "in PostgreSQL (HELM_DRIVER_SQL_CONNECTION_STRING), not in the cluster")
        return Outcome.error(f"HELM_DRIVER={driver} keeps Helm's release records {where}: the suite reads only "
                             "Secret and ConfigMap records", expected=expected)
    kinds = ["secrets", "configmaps"] if driver == "" else [storage]
    found, unlisted = {}, {}
    for kind in kinds:
        try:
            found[kind] = helm_releases(snap.list(kind, label_selector="owner=helm"), ns, name, kind)
        except ClusterUnavailable as exc:
            if len(kinds) == 1:
                raise
            found[kind], unlisted[kind] = [], exc
    holding = [kind for kind in kinds if found[kind]]
    if not holding and unlisted:  # the record may be in what could not be listed
        raise next(iter(unlisted.values()))
    if not holding:
        looked = " and ".join({"secrets": "Secret", "configmaps": "ConfigMap"}[k] for k in kinds)
        return Outcome.compare(expected, f"no Helm release {name} in {ns}",
                               evidence={"looked_for": f"{looked} records labelled owner=helm, name={name}"
                                                       + (f" (HELM_DRIVER={driver})" if driver else " (HELM_DRIVER unset)")})
    kind = holding[0]
    record = found[kind][0]
    release = decode_helm_release(record, kind)
    observed: dict[str, Any] = {"object": expected["object"], "status": release.get("info", {}).get("status"),
                                "chart": release.get("chart", {}).get("metadata", {}).get("name")}
    evidence: dict[str, Any] = {"revision": release.get("version"),
                                "storage": f"{'Secret' if kind == 'secrets' else 'ConfigMap'} {ns}/"
                                           f"{record['metadata'].get('name')} (Helm's "
                                           f"{'secret' if kind == 'secrets' else 'configmap'} driver)"}
    if len(holding) > 1:
        evidence["also_found"] = "ConfigMap records of the release too (HELM_DRIVER unset: helm reads the Secrets)"
    if params["ready"]:
        workloads = _release_workloads(snap, ns, name)
        want, got = _all_available(snap, workloads)
        observed["workloads"] = ALL_READY if workloads and matches(want, got) else (
            {ref: state for ref, state in got.items() if not matches(want[ref], state)} or "no workload of the release")
        evidence["workloads"] = sorted(want)
    if "values" in params:
        values = coalesce_values(release.get("chart", {}).get("values") or {}, release.get("config") or {})
        observed["values"] = {path: _path(values, path) for path in params["values"]}
    if "volume_size" in params:
        claims = [c for c in snap.list("persistentvolumeclaims", namespace=ns)
                  if _labels_match(c, "app.kubernetes.io/instance=" + name)]
        want_bytes = quantity_bytes(params["volume_size"])
        ok = bool(claims) and all(c.get("status", {}).get("phase") == "Bound" and quantity_bytes(
            c.get("status", {}).get("capacity", {}).get("storage", "0")) == want_bytes for c in claims)
        volumes = sorted({f"{c.get('status', {}).get('phase')} {c.get('status', {}).get('capacity', {}).get('storage')}"
                          for c in claims}) or ["no PVC"]
        observed["volumes"] = expected["volumes"] if ok else ", ".join(volumes)
    if "secret" in params:
        secret = snap.get("secrets", ns, params["secret"])
        observed[f"Secret {params['secret']} key"] = (
            f"no Secret {params['secret']} in {ns}" if secret is None
            else params["secret_key"] if params["secret_key"] in secret_keys(secret) else ABSENT)
    return Outcome.compare(expected, observed, evidence=evidence)


# --- Gitea's app.ini -----------------------------------------------------------------------------

def _redis(value: str | None, namespace: str, domain: str) -> str:
    """Gitea's redis connection setting as its client connects: ``redis://host:port/db``, no credentials."""
    if value is None:
        return ABSENT
    try:
        endpoint = redis_endpoint(value, client_namespace=namespace, cluster_domain=domain)
    except ValueError as exc:
        return f"unusable connection string: {exc}"
    rejected = redis_url_rejected(value)
    if rejected:
        return (f"{endpoint} (Go's url.Parse rejects the URL: {rejected}, e.g. an unencoded '#', '/' or '@' in the "
                "password; Gitea's ToRedisURI then falls back to its default)")
    if endpoint.port is None and not endpoint.scheme.endswith("socket"):
        return f"{endpoint} (no port: Gitea's redis client cannot connect)"
    return str(endpoint)


def _postgres(value: str, namespace: str, domain: str) -> Any:
    try:
        return postgres_endpoint(value, client_namespace=namespace, cluster_domain=domain)
    except ValueError as exc:
        return f"unusable HOST: {exc}"


_INI_PAIR = r"[A-Z][A-Z0-9_]* \S+?"
_INI_SECTION = rf"\[[a-z][a-z0-9_.]*\] {_INI_PAIR}(?:(?:, | and ){_INI_PAIR})*"


def _ini_sections(text: str) -> dict[str, dict[str, str]]:
    sections = {}
    for part in re.split(r";\s*(?=\[)", text):
        m = re.fullmatch(r"\[(?P<section>[^\]]+)\] (?P<pairs>.+)", part.strip())
        sections[m["section"]] = dict(pair.split(" ", 1) for pair in re.split(r", | and (?=[A-Z][A-Z0-9_]* )", m["pairs"]))
    return sections


@check_kind("cluster.gitea.app_ini",
            rf"Gitea's app\.ini in Secret (?P<namespace>{NS})/(?P<name>{NAME}) has "
            rf"(?P<sections>{_INI_SECTION}(?:; {_INI_SECTION})*)", target="cluster",
            convert=lambda g: {"namespace": g["namespace"], "name": g["name"], "sections": _ini_sections(g["sections"])},
            schema={"required": ["namespace", "name", "sections"],
                    "properties": {"sections": {"type": "object", "minProperties": 1,
                                                "additionalProperties": {"type": "object", "minProperties": 1}}}},
            reads=lambda p: ["secrets"])
def gitea_app_ini(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """Settings of Gitea's app.ini (the chart's inline-config Secret, one key per section; masked while parsed).

    Endpoints are compared where the client connects: ``[database] HOST`` as lib/pq does (default port
    5432, a short service name completed with the cluster domain); a ``scheme://`` value as Gitea's
    redis client does (nosql.ToRedisURI: scheme://host:port/db, credentials ignored). Any other
    value must be equal.
    """
    namespace, name = params["namespace"], params["name"]
    expected = {section: dict(values) for section, values in params["sections"].items()}
    secret = snap.get("secrets", namespace, name)
    if secret is None:
        return Outcome.compare(expected, f"no Secret {name} in {namespace}")
    domain = env.cluster_domain
    observed: dict[str, dict[str, Any]] = {}
    written: dict[str, dict[str, Any]] = {}
    for section, values in params["sections"].items():
        found = gitea_section(secret, section) or {}
        observed[section] = {}
        for key, want in values.items():
            got = found.get(key)
            if got is None:
                observed[section][key] = ABSENT
            elif section == "database" and key == "HOST":
                written.setdefault(section, {})[key] = got
                endpoint = _postgres(got, namespace, domain)
                observed[section][key] = want if endpoint == _postgres(want, namespace, domain) else (
                    endpoint if isinstance(endpoint, str) else f"{endpoint.host}:{endpoint.port}")
            elif "://" in str(want):
                written.setdefault(section, {})[key] = got
                # read from the unmasked value (masking would hide a '#' that sends Gitea elsewhere)
                mine = gitea_value_read(secret, section, key, lambda raw: _redis(raw, namespace, domain))
                observed[section][key] = want if mine == _redis(want, namespace, domain) else mine
            else:
                observed[section][key] = got
    where = f"Secret {namespace}/{name}" + (f" [{next(iter(expected))}]" if len(expected) == 1 else "")
    return Outcome.compare(expected, observed, evidence={
        "object": where, "as_written": written,
        "compared": "database HOST as lib/pq connects (default port 5432, service DNS completed); redis "
                    "connection strings where Gitea's redis client connects: scheme://host:port/db "
                    "(nosql.ToRedisURI; credentials ignored)"})


# --- services, pending ---------------------------------------------------------------------------

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
