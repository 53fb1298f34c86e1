"""Parsers for what the cluster holds: Helm release Secrets, Gitea's inline config, quantities.

Example: ``decode_helm_release(secret)["info"]["status"]`` -> ``"deployed"``;
``gitea_section(secret, "database")`` -> ``{"DB_TYPE": "postgres", ...}`` (passwords masked).
"""
from __future__ import annotations

import base64
import gzip
import json
import re
from decimal import Decimal

from railiance_conformance.redact import MASK, redact_url

_SECRET_KEYS = re.compile(r"(PASSWD|PASSWORD|SECRET|TOKEN|KEY)$", re.IGNORECASE)
_SUFFIX = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5, "Ei": 1024 ** 6,
           "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18, "": 1}


def decode_helm_release(secret: dict) -> dict:
    """Helm 3 stores base64(gzip(json)) in ``data.release`` (base64 once more in the API)."""
    raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def helm_releases(secrets: list[dict], namespace: str, name: str) -> list[dict]:
    """The release Secrets of one release, newest revision first."""
    mine = [s for s in secrets if s["metadata"].get("namespace") == namespace
            and s["metadata"].get("labels", {}).get("name") == name
            and s.get("type") == "helm.sh/release.v1"]
    return sorted(mine, key=lambda s: int(s["metadata"]["labels"].get("version", 0)), reverse=True)


def gitea_section(secret: dict, section: str) -> dict[str, str] | None:
    """One app.ini section of the Gitea chart's inline-config Secret, secret values masked.

    Values are masked before they leave this function: ``PASSWD`` and friends become ``***``,
    passwords inside URLs (``redis://:pw@host``) become ``redis://:***@host``.
    """
    encoded = secret.get("data", {}).get(section)
    if encoded is None:
        return None
    values: dict[str, str] = {}
    for line in base64.b64decode(encoded).decode("utf-8", "replace").splitlines():
        if "=" not in line or line.lstrip().startswith(("#", ";")):
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        values[key] = MASK if _SECRET_KEYS.search(key) and value else redact_url(value)
    return values


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
