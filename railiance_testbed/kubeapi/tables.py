"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`` and prints the
rows it gets back (adding NAMESPACE itself for ``-A``, from each row's object metadata).
Columns follow the apiserver's printers for the common kinds, the CRD's
``additionalPrinterColumns`` for custom resources, and NAME/AGE otherwise. Each row carries
the object as ``PartialObjectMetadata`` unless ``includeObject=Object`` was asked for.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

from .resources import ResourceType


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: 45s, 5m3s, 3h10m, 5d2h, 40d, 2y3d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    created = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return human_duration((datetime.now(timezone.utc) - created).total_seconds())


_FILTER = re.compile(r"""\[\?\(@\.([\w.-]+)\s*==\s*["']([^"']*)["']\)\]""")


def json_path(obj: Any, path: str) -> Any:
    """The JSONPath subset printer columns use: ``.status.phase``, ``.spec.ports[0].port``,
    ``.status.conditions[?(@.type=="Ready")].status`` (first match, as the apiserver prints)."""
    tokens = re.findall(r"""\[\?\(@\.[\w.-]+\s*==\s*["'][^"']*["']\)\]|\[\d+\]|[^.\[\]]+""", path.strip("{}"))
    for token in tokens:
        if token.startswith("[?"):
            key, wanted = _FILTER.match(token).groups()
            matches = [item for item in obj if isinstance(item, dict) and json_path(item, key) == wanted] \
                if isinstance(obj, list) else []
            obj = matches[0] if matches else None
        elif token.startswith("["):
            index = int(token[1:-1])
            obj = obj[index] if isinstance(obj, list) and index < len(obj) else None
        else:
            obj = obj.get(token) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def _get(obj: dict, path: str, default: Any = None) -> Any:
    value = json_path(obj, path)
    return default if value is None else value


def _pod_status(pod: dict) -> str:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    for state in (c.get("state") or {} for c in _get(pod, ".status.containerStatuses", [])):
        for detail in ("waiting", "terminated"):
            if state.get(detail, {}).get("reason"):
                return state[detail]["reason"]
    return _get(pod, ".status.reason") or _get(pod, ".status.phase", "Unknown")


def _pod_ready(pod: dict) -> str:
    statuses = _get(pod, ".status.containerStatuses", [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{len(_get(pod, '.spec.containers', []))}"


def _ports(svc: dict) -> str:
    ports = [f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
             for p in _get(svc, ".spec.ports", [])]
    return ",".join(ports) or "<none>"


def _external_ip(svc: dict) -> str:
    ingress = [i.get("ip") or i.get("hostname") for i in _get(svc, ".status.loadBalancer.ingress", [])]
    ips = _get(svc, ".spec.externalIPs", []) + [i for i in ingress if i]
    if ips:
        return ",".join(ips)
    return "<pending>" if _get(svc, ".spec.type") == "LoadBalancer" else "<none>"


def _node_roles(node: dict) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in _get(node, ".metadata.labels", {}) if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _node_status(node: dict) -> str:
    ready = [c for c in _get(node, ".status.conditions", []) if c.get("type") == "Ready"]
    return "Ready" if ready and ready[0].get("status") == "True" else "NotReady"


def _node_address(node: dict, kind: str) -> str:
    found = [a["address"] for a in _get(node, ".status.addresses", []) if a.get("type") == kind]
    return found[0] if found else "<none>"


def _containers(obj: dict, field: str) -> str:
    return ",".join(c.get(field, "") for c in _get(obj, ".spec.template.spec.containers", []))


def _ratio(obj: dict, ready: str, total: str) -> str:
    return f"{_get(obj, ready, 0)}/{_get(obj, total, 0)}"


Cell = Callable[[dict], Any]
AGE = ("Age", "string", 0, lambda o: age(_get(o, ".metadata.creationTimestamp")))
COLUMNS: dict[tuple[str, str], list[tuple[str, str, int, Cell]]] = {
    ("", "pods"): [("Ready", "string", 0, _pod_ready), ("Status", "string", 0, _pod_status),
                   ("Restarts", "integer", 0, lambda o: sum(c.get("restartCount", 0) for c in
                                                            _get(o, ".status.containerStatuses", []))),
                   AGE, ("IP", "string", 1, lambda o: _get(o, ".status.podIP", "<none>")),
                   ("Node", "string", 1, lambda o: _get(o, ".spec.nodeName", "<none>"))],
    ("apps", "deployments"): [("Ready", "string", 0, lambda o: _ratio(o, ".status.readyReplicas", ".spec.replicas")),
                              ("Up-to-date", "integer", 0, lambda o: _get(o, ".status.updatedReplicas", 0)),
                              ("Available", "integer", 0, lambda o: _get(o, ".status.availableReplicas", 0)), AGE,
                              ("Containers", "string", 1, lambda o: _containers(o, "name")),
                              ("Images", "string", 1, lambda o: _containers(o, "image"))],
    ("apps", "statefulsets"): [("Ready", "string", 0, lambda o: _ratio(o, ".status.readyReplicas", ".spec.replicas")),
                               AGE, ("Containers", "string", 1, lambda o: _containers(o, "name")),
                               ("Images", "string", 1, lambda o: _containers(o, "image"))],
    ("apps", "replicasets"): [("Desired", "integer", 0, lambda o: _get(o, ".spec.replicas", 0)),
                              ("Current", "integer", 0, lambda o: _get(o, ".status.replicas", 0)),
                              ("Ready", "integer", 0, lambda o: _get(o, ".status.readyReplicas", 0)), AGE],
    ("apps", "daemonsets"): [("Desired", "integer", 0, lambda o: _get(o, ".status.desiredNumberScheduled", 0)),
                             ("Current", "integer", 0, lambda o: _get(o, ".status.currentNumberScheduled", 0)),
                             ("Ready", "integer", 0, lambda o: _get(o, ".status.numberReady", 0)),
                             ("Up-to-date", "integer", 0, lambda o: _get(o, ".status.updatedNumberScheduled", 0)),
                             ("Available", "integer", 0, lambda o: _get(o, ".status.numberAvailable", 0)), AGE],
    ("", "services"): [("Type", "string", 0, lambda o: _get(o, ".spec.type", "ClusterIP")),
                       ("Cluster-IP", "string", 0, lambda o: _get(o, ".spec.clusterIP", "<none>")),
                       ("External-IP", "string", 0, _external_ip), ("Port(s)", "string", 0, _ports), AGE],
    ("", "secrets"): [("Type", "string", 0, lambda o: _get(o, ".type", "Opaque")),
                      ("Data", "integer", 0, lambda o: len(_get(o, ".data", {}))), AGE],
    ("", "configmaps"): [("Data", "integer", 0, lambda o: len(_get(o, ".data", {})) + len(_get(o, ".binaryData", {}))),
                         AGE],
    ("", "persistentvolumeclaims"): [
        ("Status", "string", 0, lambda o: _get(o, ".status.phase", "Pending")),
        ("Volume", "string", 0, lambda o: _get(o, ".spec.volumeName", "")),
        ("Capacity", "string", 0, lambda o: _get(o, ".status.capacity.storage", "")),
        ("Access Modes", "string", 0, lambda o: ",".join(
            {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
            .get(m, m) for m in _get(o, ".status.accessModes", []))),
        ("StorageClass", "string", 0, lambda o: _get(o, ".spec.storageClassName", "")), AGE],
    ("", "namespaces"): [("Status", "string", 0, lambda o: _get(o, ".status.phase", "Active")), AGE],
    ("", "nodes"): [("Status", "string", 0, _node_status), ("Roles", "string", 0, _node_roles), AGE,
                    ("Version", "string", 0, lambda o: _get(o, ".status.nodeInfo.kubeletVersion", "")),
                    ("Internal-IP", "string", 1, lambda o: _node_address(o, "InternalIP")),
                    ("External-IP", "string", 1, lambda o: _node_address(o, "ExternalIP")),
                    ("OS-Image", "string", 1, lambda o: _get(o, ".status.nodeInfo.osImage", "<unknown>")),
                    ("Kernel-Version", "string", 1, lambda o: _get(o, ".status.nodeInfo.kernelVersion", "<unknown>")),
                    ("Container-Runtime", "string", 1,
                     lambda o: _get(o, ".status.nodeInfo.containerRuntimeVersion", "<unknown>"))],
}


def _crd_columns(rtype: ResourceType) -> list[tuple[str, str, int, Cell]]:
    columns = []
    for spec in rtype.printer_columns:
        path, kind = spec["jsonPath"], spec.get("type", "string")
        if kind == "date":
            cell = (lambda p: lambda o: age(json_path(o, p)) if json_path(o, p) else None)(path)
        else:
            cell = (lambda p: lambda o: json_path(o, p))(path)
        columns.append((spec["name"], "string" if kind == "date" else kind, spec.get("priority", 0), cell))
    return columns


def columns_for(rtype: ResourceType) -> list[tuple[str, str, int, Cell]]:
    if rtype.printer_columns:
        return _crd_columns(rtype)
    return COLUMNS.get((rtype.group, rtype.plural), [AGE])


def _row_object(obj: dict, include: str) -> dict | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def to_table(rtype: ResourceType, objects: list[dict], list_meta: dict, include_object: str = "Metadata") -> dict:
    """A meta.k8s.io/v1 Table of ``objects`` (already filtered and paged)."""
    columns = [("Name", "string", 0, lambda o: o["metadata"]["name"])] + columns_for(rtype)
    definitions = [{"name": name, "type": kind, "format": "name" if index == 0 else "", "description": name,
                    "priority": priority} for index, (name, kind, priority, _) in enumerate(columns)]
    rows = []
    for obj in objects:
        row = {"cells": [cell(obj) for _, _, _, cell in columns]}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": definitions, "rows": rows}
