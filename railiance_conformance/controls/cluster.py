"""S3/S5 cluster controls (RAIL-HO-WP-0004 T03, T04, T05): snapshot + desired -> Outcome.

Example: ``EVALUATORS["cluster.gitea_db.healthy"](snapshot, desired)``. Secret values never
leave ``resources.cluster_objects``: credentials are checked by key name, Gitea's config is
masked while it is parsed.
"""
from __future__ import annotations

from typing import Any, Mapping

from railiance_conformance.controls import control
from railiance_conformance.expectations import matches
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import (
    ABSENT, coalesce_values, condition, decode_helm_release, gitea_section, helm_releases, pod_problems,
    postgres_major, quantity_bytes, secret_keys)
from railiance_conformance.resources.endpoints import postgres_endpoint, redis_endpoint

Desired = Mapping[str, Any]


def _labels_match(obj: dict, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in (part.split("=", 1) for part in selector.split(",")))


def _ref(kind: str, obj: dict) -> str:
    """``Deployment gitea/gitea``: the object an observed value is about, as kubectl names it."""
    meta = obj.get("metadata", {})
    return f"{kind} {meta['namespace']}/{meta['name']}" if meta.get("namespace") else f"{kind} {meta.get('name')}"


def _ready(deployment: dict) -> dict[str, Any]:
    """Replica counts as the API reports them; a count the API omits is ``"absent"``, never 0."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    return {"object": _ref("Deployment", deployment), "replicas": spec.get("replicas", 1),
            "available": status.get("availableReplicas", ABSENT), "ready": status.get("readyReplicas", ABSENT),
            "Available": condition(deployment, "Available") or ABSENT}


def _available(snap: ClusterSnapshot, deployment: dict) -> Outcome:
    """An available Deployment: every replica available and ready; otherwise the pods' own causes."""
    state = _ready(deployment)
    n = state["replicas"]
    expected = {"object": state["object"], "replicas": n, "available": n, "ready": n, "Available": "True"}
    if state != expected:
        causes = pod_problems(snap.list("pods", namespace=deployment["metadata"].get("namespace")), deployment)
        if causes:
            state["causes"] = causes
    return Outcome.compare(expected, state)


@control("cluster.cnpg.operator")
def cnpg_operator(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["cnpg_operator"]
    found = [d for d in snap.list("deployments", namespace=want["namespace"]) if _labels_match(d, want["selector"])]
    if not found:
        return Outcome.compare("an available operator Deployment",
                               f"no Deployment labelled {want['selector']} in {want['namespace']}")
    outcome = _available(snap, found[0])
    return Outcome(outcome.status, outcome.expected, outcome.observed,
                   evidence=(("deployment", found[0]["metadata"]["name"]),))


def _gitea_db(snap: ClusterSnapshot, want: Mapping[str, Any]) -> dict | None:
    return next((c for c in snap.list("clusters.postgresql.cnpg.io", namespace=want["namespace"])
                 if c["metadata"]["name"] == want["name"]), None)


@control("cluster.gitea_db.spec")
def gitea_db_spec(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["gitea_db"]
    ref = f"Cluster {want['namespace']}/{want['name']}"
    expected = {"object": ref, "instances": want["instances"], "postgres_major": want["postgres_major"],
                "storage_size": want["storage_size"], "database": want["database"], "owner": want["owner"],
                "secret_name": want["secret"]}
    cluster = _gitea_db(snap, want)
    if cluster is None:
        return Outcome.compare(expected, f"no {ref}")
    spec = cluster.get("spec", {})
    initdb = spec.get("bootstrap", {}).get("initdb", {})
    major, image_source = postgres_major(cluster, lambda kind, ns, name: snap.get(kind, ns, name))
    observed = {"object": ref, "instances": spec.get("instances", ABSENT), "postgres_major": major,
                "storage_size": spec.get("storage", {}).get("size", ABSENT), "database": initdb.get("database", ABSENT),
                "owner": initdb.get("owner", ABSENT), "secret_name": (initdb.get("secret") or {}).get("name", ABSENT)}
    size = observed["storage_size"]
    if size != ABSENT and quantity_bytes(size) == quantity_bytes(want["storage_size"]):
        observed["storage_size"] = want["storage_size"]  # 10Gi == 10240Mi
    return Outcome.compare(expected, observed, evidence={"image": image_source})


@control("cluster.gitea_db.healthy")
def gitea_db_healthy(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    want = desired["gitea_db"]
    ref = f"Cluster {want['namespace']}/{want['name']}"
    cluster = _gitea_db(snap, want)
    if cluster is None:
        return Outcome.compare(want["healthy_phase"], f"no {ref}")
    instances = cluster.get("spec", {}).get("instances", ABSENT)
    status = cluster.get("status", {})
    observed = {"object": ref, "phase": status.get("phase", ABSENT), "readyInstances": status.get("readyInstances", ABSENT)}
    expected = {"object": ref, "phase": want["healthy_phase"], "readyInstances": instances}
    if not matches(expected, observed) and status.get("phaseReason"):
        observed["phaseReason"] = status["phaseReason"]
    return Outcome.compare(expected, observed, evidence={"currentPrimary": status.get("currentPrimary")})


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
    expected = dict(gitea["database"])
    observed = {key: section.get(key, ABSENT) for key in expected}
    written = {}
    if "HOST" in expected and observed["HOST"] != ABSENT:
        # the same endpoint written differently (no port, a short service name) is the same endpoint
        want = postgres_endpoint(expected["HOST"], client_namespace=gitea["namespace"],
                                 cluster_domain=desired.get("cluster_domain", "cluster.local"))
        try:
            got = postgres_endpoint(observed["HOST"], client_namespace=gitea["namespace"],
                                    cluster_domain=desired.get("cluster_domain", "cluster.local"))
        except ValueError as exc:
            got = f"unusable HOST: {exc}"
        written["HOST"] = observed["HOST"]
        observed["HOST"] = expected["HOST"] if got == want else (
            f"{got.host}:{got.port}" if not isinstance(got, str) else got)
    return Outcome.compare(expected, observed, evidence={
        "object": f"Secret {gitea['namespace']}/{gitea['config_secret']} [database]", "as_written": written,
        "compared": "HOST as lib/pq connects (default port 5432, service DNS completed)"})


@control("cluster.gitea.available")
def gitea_available(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    gitea = desired["gitea"]
    deployment = next((d for d in snap.list("deployments", namespace=gitea["namespace"])
                       if d["metadata"]["name"] == gitea["deployment"]), None)
    if deployment is None:
        return Outcome.compare("an available Deployment", f"no Deployment {gitea['deployment']} in {gitea['namespace']}")
    return _available(snap, deployment)


def _redis(value: str | None, namespace: str, domain: str) -> str:
    """Gitea's redis connection setting as its client connects: ``redis://host:port/db``, no credentials."""
    if value is None:
        return ABSENT
    try:
        endpoint = redis_endpoint(value, client_namespace=namespace, cluster_domain=domain)
    except ValueError as exc:
        return f"unusable connection string: {exc}"
    if endpoint.port is None and not endpoint.scheme.endswith("socket"):
        return f"{endpoint} (no port: Gitea's redis client cannot connect)"
    return str(endpoint)


@control("cluster.gitea.cache")
def gitea_cache(snap: ClusterSnapshot, desired: Desired) -> Outcome:
    gitea = desired["gitea"]
    secret = _gitea_config(snap, desired)
    expected = {name: dict(values) for name, values in gitea["cache"].items()}
    if secret is None:
        return Outcome.compare(expected, f"no Secret {gitea['config_secret']} in {gitea['namespace']}")
    domain = desired.get("cluster_domain", "cluster.local")
    observed, written = {}, {}
    for name, values in gitea["cache"].items():
        section = gitea_section(secret, name) or {}
        observed[name], written[name] = {}, {}
        for key, want in values.items():
            got = section.get(key)
            if "://" in str(want):  # a connection string: compare where the client connects
                observed[name][key] = want if _redis(want, gitea["namespace"], domain) == \
                    _redis(got, gitea["namespace"], domain) else _redis(got, gitea["namespace"], domain)
                written[name][key] = got
            else:
                observed[name][key] = got if got is not None else ABSENT
    return Outcome.compare(expected, observed, evidence={
        "object": f"Secret {gitea['namespace']}/{gitea['config_secret']}", "as_written": written,
        "compared": "where Gitea's redis client connects: scheme://host:port/db (nosql.ToRedisURI; credentials ignored)"})


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
    # what `helm get values --all` shows: the chart's defaults deep-merged with the user's values
    values = coalesce_values(release.get("chart", {}).get("values") or {}, release.get("config") or {})
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
