"""A custom resource checked as the apiserver checks it on a write: its CRD's structural openAPIV3Schema
(validated, unknown fields pruned) and etcd's request size limit.

The rules followed are the apiserver's for ``apiextensions.k8s.io/v1`` CRDs (Kubernetes docs "Extend the
Kubernetes API with CustomResourceDefinitions": *Validation*, *Field pruning*; kube-openapi's
``pkg/validation/validate``: ``type``, ``enum``, ``required``, ``properties``, ``additionalProperties``,
``items``, ``format: int32/int64`` ranges, ``minimum``/``maximum``, ``maxLength``, ``maxItems``,
``minItems``, ``pattern``), with the apiserver's error wording (``field.ErrorList``):
``results[0].severity: Unsupported value: "critical": supported values: "high", "low", "medium"``.
Pruning drops every field a schema does not declare unless ``x-kubernetes-preserve-unknown-fields``
is set (``metadata`` is ObjectMeta, kept). The stored object may be at most ``ETCD_REQUEST_BYTES``
(etcd's ``--max-request-bytes`` default, 1.5 MiB) as JSON, else the apiserver answers 500
``etcdserver: request is too large``.

Example: ``errors(obj, schema)`` -> ``['results[0].severity: Unsupported value: "critical": ...']``.
"""
from __future__ import annotations

import json
import re
from typing import Any

ETCD_REQUEST_BYTES = 1_572_864  # etcd --max-request-bytes default (1.5 MiB)
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "number": (int, float), "integer": int}
RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def crd_schema(crd: dict, version: str) -> dict | None:
    """The openAPIV3Schema of ``version`` in a CRD object, or None when it has none."""
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            return ((entry.get("schema") or {}).get("openAPIV3Schema")) or None
    return None


def _quote(value: Any) -> str:
    return json.dumps(value)


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, TYPES.get(kind, object))


def errors(value: Any, schema: dict, path: str = "") -> list[str]:
    """Every validation error of ``value`` against ``schema``, as the apiserver words them."""
    found: list[str] = []
    where = path or "<root>"
    kind = schema.get("type")
    if value is None:
        if schema.get("nullable"):
            return found
        if kind:
            return [f"{where}: Invalid value: \"null\": {where} in body must be of type {kind}: \"null\""]
    if kind and not _type_ok(value, kind):
        return [f"{where}: Invalid value: {_quote(type(value).__name__)}: {where} in body must be of type {kind}: "
                f"{_quote(type(value).__name__)}"]
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_quote(v) for v in schema["enum"])
        found.append(f"{where}: Unsupported value: {_quote(value)}: supported values: {supported}")
    if kind == "integer" and schema.get("format") in RANGES:
        low, high = RANGES[schema["format"]]
        if not low <= value <= high:
            found.append(f"{where}: Invalid value: {value}: {where} in body should be in range {low}..{high}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{where}: Invalid value: {value}: {where} in body should be greater than or equal to "
                         f"{schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{where}: Invalid value: {value}: {where} in body should be less than or equal to "
                         f"{schema['maximum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(f"{where}: Too long: may not be more than {schema['maxLength']} bytes")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: Invalid value: {_quote(value)}: {where} in body should match '{schema['pattern']}'")
    if isinstance(value, dict):
        for name in schema.get("required") or ():
            if name not in value:
                found.append(f"{path + '.' if path else ''}{name}: Required value")
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            child = f"{path}.{name}" if path else name
            if name in properties:
                found += errors(item, properties[name], child)
            elif isinstance(extra, dict):
                found += errors(item, extra, f"{path}[{name}]" if path else name)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{where}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            found.append(f"{where}: Invalid value: {len(value)}: {where} in body should have at least "
                         f"{schema['minItems']} items")
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                found += errors(item, schema["items"], f"{where if path else ''}[{index}]")
    return found


def prune(value: Any, schema: dict, *, root: bool = True) -> Any:
    """``value`` without the fields ``schema`` does not declare (structural pruning); ``metadata`` at the
    root is kept whole (ObjectMeta is the apiserver's own)."""
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            properties = schema.get("properties") or {}
            return {k: prune(v, properties[k], root=False) if k in properties else v for k, v in value.items()}
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if properties is None and isinstance(extra, dict):
            return {k: prune(v, extra, root=False) for k, v in value.items()}
        if properties is None and not isinstance(extra, dict) and extra is not True and not root:
            return {}  # an object that declares no field keeps none
        kept = {}
        for name, item in value.items():
            if root and name in ("apiVersion", "kind", "metadata"):
                kept[name] = item
            elif name in (properties or {}):
                kept[name] = prune(item, properties[name], root=False)
            elif isinstance(extra, dict):
                kept[name] = prune(item, extra, root=False)
            elif extra is True:
                kept[name] = item
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], root=False) for item in value]
    return value


def too_large(obj: dict) -> bool:
    """Whether etcd would refuse to store ``obj`` (its JSON is over ``ETCD_REQUEST_BYTES``)."""
    return len(json.dumps(obj, separators=(",", ":")).encode("utf-8")) > ETCD_REQUEST_BYTES
