"""Cluster kinds about any API object: absent, present, and the values of its fields (``expectations``).
"""
from __future__ import annotations

import re
from typing import Any

from railiance_conformance.controls.cluster import (
    DEFAULT_ENV,
    SINGULAR,
    ClusterEnv,
    field_at,
    named_or_selected,
    plural,
    scalar,
)
from railiance_conformance.controls.grammar import AND, NAME, NS, SELECTOR, Params, and_list
from railiance_conformance.finding import Outcome
from railiance_conformance.probes.api_kinds import BY_KIND
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import postgres_major, quantity_bytes
from railiance_conformance.vocabulary import check_kind


def _value(text: str) -> Any:
    """``"1 to 3"`` -> ``{"between": [1, 3]}`` (``expectations``); ``"one of 1, 3"`` -> ``{"one_of": [1, 3]}``."""
    m = re.fullmatch(r"(-?\d+) to (-?\d+)", text)
    if m:
        return {"between": [int(m[1]), int(m[2])]}
    if text.startswith("one of "):
        return {"one_of": [scalar(v) for v in and_list(text[len("one of "):])]}
    return scalar(text)


_KIND_WORD = "|".join(sorted({*SINGULAR, *SINGULAR.values()}, key=lambda w: (-len(w), w)))


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
    found = named_or_selected(snap.list(kind, namespace=namespace), params)
    what = f"{kind[:-1]} {namespace}/{params['name']}" if "name" in params \
        else f"a {kind[:-1]} labelled {params['selector']} in {namespace}"
    return Outcome.compare(f"{what}: present", f"{what}: {'present' if found else 'absent'}",
                           evidence={"found": [o["metadata"]["name"] for o in found]})


_FIELD = r"(?:PostgreSQL major|[a-z][A-Za-z0-9]*(?:\.[A-Za-z0-9_-]+)+)"


_FIELD_VALUE = r'(?:-?\d+ to -?\d+|one of [^,"]+?(?:, [^,"]+?)*(?= and |, |$)|"[^"]*"|[^\s,"]+)'


def _fields(text: str) -> dict[str, Any]:
    found = {}
    for m in re.finditer(rf"(?P<field>{_FIELD}) (?P<value>{_FIELD_VALUE})", text):
        found[m["field"]] = _value(m["value"])
    return found


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
        got = field_at(obj, field)
        observed[field] = want if _same_quantity(want, got) else got  # 10Gi == 10240Mi
    return Outcome.compare(expected, observed, evidence=evidence or None)
