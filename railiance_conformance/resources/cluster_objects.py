"""Parsers for what the cluster holds: Helm release Secrets, Gitea's inline config, quantities.

Example: ``decode_helm_release(secret)["info"]["status"]`` -> ``"deployed"``;
``gitea_section(secret, "database")`` -> ``{"DB_TYPE": "postgres", ...}`` (passwords masked).
"""
from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from decimal import Decimal

from railiance_conformance.finding import FactUnavailable
from railiance_conformance.redact import MASK, redact_text

# What an observed field is when the API omits it (Kubernetes omits zero counts and unset fields):
# reported as absent, never as 0.
ABSENT = "absent"

_SECRET_KEYS = re.compile(r"(PASSWD|PASSWORD|SECRET|TOKEN|KEY)$", re.IGNORECASE)
_SUFFIX = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5, "Ei": 1024 ** 6,
           "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18, "": 1}


# HELM_DRIVER's values as Helm 3 reads them (pkg/action/action.go ``Configuration.Init``): "" and
# "secret(s)" -> the Secrets driver, "configmap(s)" -> the ConfigMaps driver, "memory", "sql"; any other
# value is Helm's error "unknown driver".
HELM_DRIVERS = {"": "secrets", "secret": "secrets", "secrets": "secrets", "configmap": "configmaps",
                "configmaps": "configmaps", "memory": "memory", "sql": "sql"}


class HelmReleaseUnreadable(FactUnavailable):
    """A Helm release record whose payload helm itself could not decode; the message names the Secret
    or ConfigMap, the layer that failed and why."""


def decode_helm_release(record: dict, kind: str = "secrets") -> dict:
    """A Helm 3 release record's release, as its storage driver reads it.

    Helm's ``encodeRelease`` (pkg/storage/driver/util.go) writes base64(gzip(json)); the Secrets
    driver (secrets.go ``newSecretsObject``) stores that string as ``Data["release"]`` bytes, which
    the API shows base64-encoded once more; the ConfigMaps driver (cfgmaps.go ``newConfigMapsObject``)
    stores it as the string ``data.release``. ``decodeRelease`` base64-decodes, gunzips when the gzip
    magic ``1f 8b 08`` leads (an uncompressed JSON is accepted too), then unmarshals the JSON. A
    payload that fails any step raises ``HelmReleaseUnreadable`` ("Helm release Secret NS/NAME:
    data.release is not a whole gzip stream (...)").
    """
    meta = record.get("metadata") or {}
    where = (f"Helm release {'Secret' if kind == 'secrets' else 'ConfigMap'} "
             f"{meta.get('namespace', '?')}/{meta.get('name', '?')}")
    encoded = (record.get("data") or {}).get("release")
    if not encoded:
        raise HelmReleaseUnreadable(f"{where}: has no data.release")
    try:
        # the Secrets driver's bytes come base64-encoded once more by the API; a ConfigMap holds the string
        inner = base64.b64decode(encoded, validate=True) if kind == "secrets" else str(encoded).encode()
        raw = base64.b64decode(inner.replace(b"\r", b"").replace(b"\n", b""), validate=True)  # Go skips CR/LF
    except (ValueError, TypeError) as exc:
        raise HelmReleaseUnreadable(f"{where}: data.release is not base64 ({exc})") from None
    if raw[:3] == b"\x1f\x8b\x08":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise HelmReleaseUnreadable(f"{where}: data.release is not a whole gzip stream ({exc})") from None
    try:
        release = json.loads(raw)
    except ValueError as exc:
        raise HelmReleaseUnreadable(f"{where}: data.release is not a JSON release ({exc})") from None
    if not isinstance(release, dict):
        raise HelmReleaseUnreadable(f"{where}: data.release is JSON but not a release object")
    return release


def helm_releases(records: list[dict], namespace: str, name: str, kind: str = "secrets") -> list[dict]:
    """The release records of one release, newest revision first: Secrets of type helm.sh/release.v1, or
    ConfigMaps, labelled ``owner=helm``, ``name=<release>``, ``version=<revision>`` (both drivers'
    ``new*Object`` set these labels and ``Query`` selects on them)."""
    mine = [s for s in records if s["metadata"].get("namespace") == namespace
            and (s["metadata"].get("labels") or {}).get("name") == name
            and (s["metadata"].get("labels") or {}).get("owner") == "helm"
            and (kind != "secrets" or s.get("type") == "helm.sh/release.v1")]
    return sorted(mine, key=lambda s: int(s["metadata"]["labels"].get("version", 0)), reverse=True)


def _ini_values(secret: dict, section: str) -> dict[str, str] | None:
    """The raw values of one app.ini section (never leaves this module unmasked)."""
    encoded = secret.get("data", {}).get(section)
    if encoded is None:
        return None
    values: dict[str, str] = {}
    for line in base64.b64decode(encoded).decode("utf-8", "replace").splitlines():
        if "=" not in line or line.lstrip().startswith(("#", ";")):
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        # go-ini as Gitea loads it (IgnoreInlineComment: a "#" belongs to the value); surrounding
        # quotes or backticks are removed; a later key replaces an earlier one
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
            value = value[1:-1]
        values[key] = value
    return values


def gitea_section(secret: dict, section: str) -> dict[str, str] | None:
    """One app.ini section of the Gitea chart's inline-config Secret, secret values masked.

    Values are masked before they leave this function: ``PASSWD`` and friends become ``***``,
    passwords inside URLs (``redis://:pw@host``) become ``redis://:***@host``.
    """
    values = _ini_values(secret, section)
    if values is None:
        return None
    return {key: MASK if _SECRET_KEYS.search(key) and value else redact_text(value) for key, value in values.items()}


def gitea_value_read(secret: dict, section: str, key: str, reader) -> str | None:
    """``reader(value)`` applied to the *unmasked* value (a connection string is read as its client reads
    it: masking first would change where it points); None when the key is absent. ``reader`` must return
    nothing secret (an endpoint: scheme, host, port, database)."""
    values = _ini_values(secret, section) or {}
    return reader(values[key]) if key in values else None


def secret_keys(secret: dict) -> list[str]:
    """Key names only: the values of a Secret are never looked at."""
    return sorted({*secret.get("data", {}), *secret.get("stringData", {})})


def quantity_bytes(text: str) -> int:
    """Kubernetes quantity -> bytes: ``2Gi`` -> 2147483648."""
    match = re.fullmatch(r"([0-9.]+)([KMGTPE]i|[kMGTPE])?", str(text).strip())
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    return int(Decimal(match[1]) * _SUFFIX[match[2] or ""])


def condition(obj: dict, kind: str) -> str | None:
    for item in obj.get("status", {}).get("conditions", []) or []:
        if item.get("type") == kind:
            return item.get("status")
    return None


def coalesce_values(defaults: dict, overrides: dict) -> dict:
    """Helm's ``chartutil.CoalesceValues``: the chart's defaults deep-merged with the user's values.

    Maps merge key by key, recursively; any other user value replaces the default; a user ``null``
    deletes the default key (pkg/chartutil/coalesce.go, "coalesceTablesFullKey"). Example:
    ``coalesce_values({"auth": {"enabled": True}}, {"auth": {"existingSecret": "v"}})``
    -> ``{"auth": {"enabled": True, "existingSecret": "v"}}``.
    """
    merged: dict = {}
    for key in {**defaults, **overrides}:
        if key in overrides:
            user = overrides[key]
            if user is None:
                continue  # null removes the chart's default
            if isinstance(user, dict) and isinstance(defaults.get(key), dict):
                merged[key] = coalesce_values(defaults[key], user)
            else:
                merged[key] = user
        else:
            merged[key] = defaults[key]
    return merged


def image_major(image: str) -> int | None:
    """The PostgreSQL major of an operand image by its tag: ``…/postgresql:16.6-bookworm`` -> 16.

    CloudNativePG's images are tagged ``MAJOR[.MINOR][-suffix]``; a digest-only or ``latest``
    image has no major in its name (None).
    """
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = re.match(r"(\d+)(?:[.\-_]|$)", last.rsplit(":", 1)[1])
    return int(match[1]) if match else None


def postgres_major(cluster: dict, get) -> tuple[int | str, dict]:
    """The PostgreSQL major a CloudNativePG Cluster runs, derived as the operator derives it.

    CNPG (api/v1 ClusterSpec): ``imageName`` if set; else ``imageCatalogRef`` {kind ImageCatalog|
    ClusterImageCatalog, name, major}: the catalog's ``spec.images[]`` entry whose ``major`` equals the
    ref's; else the operator's default image, which the Cluster reports as ``status.image``.
    ``get(kind, namespace, name)`` fetches the catalog (a dict, or None when it does not exist).
    Returns ``(major or a sentence saying why it is unknown, evidence)``.
    """
    spec, status = cluster.get("spec", {}), cluster.get("status", {})
    if spec.get("imageName"):
        major = image_major(spec["imageName"])
        return (major if major is not None else f"unknown: no major in the tag of {spec['imageName']}",
                {"imageName": spec["imageName"]})
    ref = spec.get("imageCatalogRef")
    if ref:
        kind = ref.get("kind", "ImageCatalog")
        plural = "clusterimagecatalogs.postgresql.cnpg.io" if kind == "ClusterImageCatalog" \
            else "imagecatalogs.postgresql.cnpg.io"
        namespace = None if kind == "ClusterImageCatalog" else cluster["metadata"].get("namespace")
        catalog = get(plural, namespace, ref.get("name"))
        evidence = {"imageCatalogRef": dict(ref)}
        if catalog is None:
            return f"{kind} {ref.get('name')} does not exist: the operator cannot choose an image", evidence
        images = [i for i in (catalog.get("spec", {}).get("images") or []) if i.get("major") == ref.get("major")]
        if not images:
            return f"{kind} {ref.get('name')} has no image for major {ref.get('major')}", evidence
        return int(ref["major"]), evidence | {"image": images[0].get("image")}
    if status.get("image"):
        major = image_major(status["image"])
        return (major if major is not None else f"unknown: no major in the tag of {status['image']}",
                {"status.image": status["image"], "from": "the operator's default image"})
    return "unknown: no imageName, no imageCatalogRef, and no status.image yet (the operator's default)", {}


def pod_problems(pods: list[dict], owner: dict) -> list[str]:
    """Why the pods of a workload are not ready, as the API already says it.

    Pods are those in the owner's namespace matching its ``spec.selector.matchLabels``. Each line
    names the pod and container and the kubelet's reason: a waiting reason (CrashLoopBackOff,
    ImagePullBackOff, CreateContainerConfigError …), the last termination (OOMKilled, Error with its
    exit code), or an unscheduled pod's condition message.
    """
    selector = ((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not selector:
        return []
    lines = []
    for pod in pods:
        meta = pod.get("metadata", {})
        labels = meta.get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        ref = f"pod {meta.get('namespace')}/{meta.get('name')}"
        status = pod.get("status", {})
        for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state, last = container.get("state") or {}, container.get("lastState") or {}
            parts = []
            if "waiting" in state and state["waiting"].get("reason"):
                parts.append(f"waiting: {state['waiting']['reason']}")
            if "terminated" in state and state["terminated"].get("reason"):
                parts.append(f"terminated: {state['terminated']['reason']}")
            if "terminated" in last and last["terminated"].get("reason"):
                code = last["terminated"].get("exitCode")
                parts.append(f"last terminated: {last['terminated']['reason']}" + (f" (exit {code})" if code else ""))
            if parts:
                lines.append(f"{ref} container {container.get('name')}: " + ", ".join(parts))
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                lines.append(f"{ref}: not scheduled: {cond.get('reason')}: {cond.get('message', '')}".rstrip(": "))
    return lines
