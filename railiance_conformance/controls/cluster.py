"""S3/S5 cluster controls (RAIL-HO-WP-0004 T03, T04, T05): snapshot + desired -> Outcome.

Example: ``EVALUATORS["cluster.gitea_db.healthy"](snapshot, desired)``. Secret values never
leave ``resources.cluster_objects``: credentials are checked by key name, Gitea's config is
masked while it is parsed.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from railiance_conformance.controls import control
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import (
    condition, decode_helm_release, gitea_section, helm_releases, quantity_bytes, secret_keys)

Desired = Mapping[str, Any]


def _labels_match(obj: dict, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in (part.split("=", 1) for part in selector.split(",")))


def _ready(deployment: dict) -> dict[str, Any]:
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    return {"replicas": spec.get("replicas", 1), "available": status.get("availableReplicas", 0),
            "ready": status.get("readyReplicas", 0), "Available": condition(deployment, "Available")}


@control("cluster.cnpg.operator")
def cnpg_operator(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["cnpg_operator"]
    found = [d for d in snap.list("deployments", namespace=want["namespace"]) if _labels_match(d, want["selector"])]
    if not found:
        return Outcome.compare("an available operator Deployment",
                               f"no Deployment labelled {want['selector']} in {want['namespace']}")
    state = _ready(found[0])
    expected = {"replicas": state["replicas"], "available": state["replicas"], "ready": state["replicas"],
                "Available": "True"}
    return Outcome.compare(expected, state, evidence={"deployment": found[0]["metadata"]["name"]})


def _gitea_db(snap: ClusterSnapshot, want: Mapping[str, Any]) -> dict | None:
    return next((c for c in snap.list("clusters.postgresql.cnpg.io", namespace=want["namespace"])
                 if c["metadata"]["name"] == want["name"]), None)


@control("cluster.gitea_db.spec")
def gitea_db_spec(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["gitea_db"]
    expected = {"instances": want["instances"], "postgres_major": want["postgres_major"],
                "storage_size": want["storage_size"], "database": want["database"], "owner": want["owner"],
                "secret": want["secret"]}
    cluster = _gitea_db(snap, want)
    if cluster is None:
        return Outcome.compare(expected, f"no Cluster {want['name']} in {want['namespace']}")
    spec = cluster.get("spec", {})
    image = spec.get("imageName", "")
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    initdb = spec.get("bootstrap", {}).get("initdb", {})
    major = tag.split(".")[0].split("-")[0]
    observed = {"instances": spec.get("instances"), "postgres_major": int(major) if major.isdigit() else image,
                "storage_size": spec.get("storage", {}).get("size"), "database": initdb.get("database"),
                "owner": initdb.get("owner"), "secret": (initdb.get("secret") or {}).get("name")}
    if observed["storage_size"] and quantity_bytes(observed["storage_size"]) == quantity_bytes(want["storage_size"]):
        observed["storage_size"] = want["storage_size"]  # 10Gi == 10240Mi
    return Outcome.compare(expected, observed, evidence={"imageName": image})


@control("cluster.gitea_db.healthy")
def gitea_db_healthy(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["gitea_db"]
    cluster = _gitea_db(snap, want)
    if cluster is None:
        return Outcome.compare(want["healthy_phase"], f"no Cluster {want['name']} in {want['namespace']}")
    instances = cluster.get("spec", {}).get("instances")
    status = cluster.get("status", {})
    return Outcome.compare({"phase": want["healthy_phase"], "readyInstances": instances},
                           {"phase": status.get("phase"), "readyInstances": status.get("readyInstances", 0)},
                           evidence={"currentPrimary": status.get("currentPrimary")})


@control("cluster.gitea_db.credentials")
def gitea_db_credentials(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["gitea_db"]
    secret = snap.get("secrets", want["namespace"], want["secret"])
    expected = {"secret": want["secret"], "keys_present": sorted(want["credential_keys"])}
    if secret is None:
        return Outcome.compare(expected, f"no Secret {want['secret']} in {want['namespace']}")
    keys = secret_keys(secret)
    present = sorted(k for k in want["credential_keys"] if k in keys)
    return Outcome.compare(expected, {"secret": want["secret"], "keys_present": present}, evidence={"keys": keys})


def _leftovers(snap: ClusterSnapshot, name: str) -> list[str]:
    found = []
    for kind in ("statefulsets", "pods"):
        for obj in snap.list(kind):
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get("app.kubernetes.io/name") == name or name in meta["name"]:
                found.append(f"{kind[:-1]} {meta.get('namespace')}/{meta['name']}")
    return found


@control("cluster.postgresql_ha.absent")
def postgresql_ha_absent(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    return Outcome.compare([], _leftovers(snap, desired["absent"]["postgresql_ha"]))


@control("cluster.redis_cluster.absent")
def redis_cluster_absent(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    return Outcome.compare([], _leftovers(snap, desired["absent"]["redis_cluster"]))


def _gitea_config(snap: ClusterSnapshot, desired: Desired) -> dict | None:
    gitea = desired["gitea"]
    return snap.get("secrets", gitea["namespace"], gitea["config_secret"])


@control("cluster.gitea.database")
def gitea_database(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    gitea = desired["gitea"]
    secret = _gitea_config(snap, desired)
    if secret is None:
        return Outcome.compare(gitea["database"], f"no Secret {gitea['config_secret']} in {gitea['namespace']}")
    section = gitea_section(secret, "database") or {}
    observed = {key: section.get(key) for key in gitea["database"]}
    return Outcome.compare(dict(gitea["database"]), observed)


@control("cluster.gitea.available")
def gitea_available(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    gitea = desired["gitea"]
    deployment = next((d for d in snap.list("deployments", namespace=gitea["namespace"])
                       if d["metadata"]["name"] == gitea["deployment"]), None)
    if deployment is None:
        return Outcome.compare("an available Deployment", f"no Deployment {gitea['deployment']} in {gitea['namespace']}")
    state = _ready(deployment)
    n = state["replicas"]
    return Outcome.compare({"replicas": n, "available": n, "ready": n, "Available": "True"}, state)


def _endpoint(url: str | None) -> str | None:
    """``redis://:***@valkey.platform.svc.cluster.local:6379/0`` -> ``redis://valkey...:6379/0``."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


@control("cluster.gitea.cache")
def gitea_cache(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    gitea = desired["gitea"]
    secret = _gitea_config(snap, desired)
    expected = {name: dict(values) for name, values in gitea["cache"].items()}
    if secret is None:
        return Outcome.compare(expected, f"no Secret {gitea['config_secret']} in {gitea['namespace']}")
    observed = {}
    for name, values in gitea["cache"].items():
        section = gitea_section(secret, name) or {}
        observed[name] = {key: _endpoint(section.get(key)) for key in values}
    return Outcome.compare(expected, observed, evidence={"compared": "scheme://host:port/db (credentials ignored)"})


@control("cluster.valkey.release")
def valkey_release(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["valkey"]
    ns = want["namespace"]
    expected = {"status": "deployed", "chart": want["chart"], "statefulsets_ready": True, "auth": True,
                "password_key": True, "volumes": f"Bound {want['persistence_size']}"}
    releases = helm_releases(snap.list("secrets", label_selector="owner=helm"), ns, want["release"])
    if not releases:
        return Outcome.compare(expected, f"no Helm release {want['release']} in {ns}")
    release = decode_helm_release(releases[0])
    values = {**(release.get("chart", {}).get("values") or {}), **(release.get("config") or {})}
    instance = "app.kubernetes.io/instance=" + want["release"]
    sets = [s for s in snap.list("statefulsets", namespace=ns) if _labels_match(s, instance)]
    claims = [c for c in snap.list("persistentvolumeclaims", namespace=ns) if _labels_match(c, instance)]
    password = snap.get("secrets", ns, want["password_secret"])
    volumes = sorted({f"{c.get('status', {}).get('phase')} {c.get('status', {}).get('capacity', {}).get('storage')}"
                      for c in claims}) or ["no PVC"]
    want_bytes = quantity_bytes(want["persistence_size"])
    volumes_ok = bool(claims) and all(c.get("status", {}).get("phase") == "Bound" and quantity_bytes(
        c.get("status", {}).get("capacity", {}).get("storage", "0")) == want_bytes for c in claims)
    observed = {
        "status": release.get("info", {}).get("status"),
        "chart": release.get("chart", {}).get("metadata", {}).get("name"),
        "statefulsets_ready": bool(sets) and all(
            s.get("status", {}).get("readyReplicas", 0) == s.get("spec", {}).get("replicas", 1) for s in sets),
        "auth": bool((values.get("auth") or {}).get("enabled")),
        "password_key": password is not None and want["password_key"] in secret_keys(password),
        "volumes": expected["volumes"] if volumes_ok else ", ".join(volumes),
    }
    return Outcome.compare(expected, observed, evidence={"revision": release.get("version"),
                                                         "statefulsets": [s["metadata"]["name"] for s in sets]})


def gitea_ssh_nodeport(snap: ClusterSnapshot, desired: Desired) -> int:
    """The NodePort of Gitea's SSH Service (for the cross-layer host.gitea_ssh.config check)."""
    gitea = desired["gitea"]
    service = snap.get("services", gitea["namespace"], gitea["ssh_service"])
    if service is None:
        raise LookupError(f"no Service {gitea['ssh_service']} in {gitea['namespace']}")
    ports = [p.get("nodePort") for p in service.get("spec", {}).get("ports", []) if p.get("nodePort")]
    if service.get("spec", {}).get("type") != "NodePort" or not ports:
        raise LookupError(f"Service {gitea['namespace']}/{gitea['ssh_service']} is not a NodePort Service")
    return int(ports[0])


def pending(reason: str) -> Outcome:
    return Outcome(Status.PENDING, reason=reason)
