"""Cluster kinds about Helm: a release deployed from its chart, with its values, volume and workloads.
"""
from __future__ import annotations

from typing import Any

from railiance_conformance.controls.cluster import DEFAULT_ENV, ClusterEnv, field_at, labels_match, scalar
from railiance_conformance.controls.grammar import AND, NAME, NS, QUANTITY, Params, and_list
from railiance_conformance.controls.workloads import all_available
from railiance_conformance.expectations import matches
from railiance_conformance.finding import Outcome
from railiance_conformance.probes.cluster import ClusterSnapshot, ClusterUnavailable
from railiance_conformance.resources.cluster_objects import (
    ABSENT,
    HELM_DRIVERS,
    coalesce_values,
    decode_helm_release,
    helm_releases,
    quantity_bytes,
    secret_keys,
)
from railiance_conformance.vocabulary import check_kind

WORKLOADS = ("deployments", "statefulsets", "daemonsets")


HELM_RELEASE = "meta.helm.sh/release-name"


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
                               **({"values": {k: scalar(v) for k, _, v in (p.partition("=") for p in and_list(g["values"]))}}
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
        want, got = all_available(snap, workloads)
        observed["workloads"] = ALL_READY if workloads and matches(want, got) else (
            {ref: state for ref, state in got.items() if not matches(want[ref], state)} or "no workload of the release")
        evidence["workloads"] = sorted(want)
    if "values" in params:
        values = coalesce_values(release.get("chart", {}).get("values") or {}, release.get("config") or {})
        observed["values"] = {path: field_at(values, path) for path in params["values"]}
    if "volume_size" in params:
        claims = [c for c in snap.list("persistentvolumeclaims", namespace=ns)
                  if labels_match(c, "app.kubernetes.io/instance=" + name)]
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
