"""Helm 3 release Secrets, encoded exactly as Helm's secrets storage driver writes them.

Helm stores a release as JSON, gzipped, base64-encoded into the Secret's ``release`` key -- which
the apiserver base64-encodes again in ``data``: ``data.release = b64(b64(gzip(json)))``. The
Secret is ``sh.helm.release.v1.<name>.v<revision>``, type ``helm.sh/release.v1``, labelled
``owner=helm``, ``name``, ``status``, ``version``, ``modifiedAt``.

    >>> secret = release_secret(name="valkey", namespace="platform", revision=1, chart="valkey",
    ...                         chart_version="2.4.7", app_version="8.1.1", config={"auth": {"enabled": True}},
    ...                         deployed_at="2026-04-02T10:00:00Z")
    >>> decode_release(secret["data"]["release"])["chart"]["metadata"]["version"]
    '2.4.7'

``python -m railiance_testbed.kubeapi.helm_release <dump.yaml>`` prints every release found in a
dump (name, revision, status, chart) -- handy when writing drifted variants.
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
from datetime import datetime


def encode_release(release: dict) -> str:
    """``data.release`` of the Secret for a release dict (double base64 of gzipped JSON)."""
    helm_payload = base64.b64encode(gzip.compress(json.dumps(release).encode(), compresslevel=9, mtime=0))
    return base64.b64encode(helm_payload).decode()


def decode_release(data_release: str) -> dict:
    """The release dict in a Secret's ``data.release`` (as read through the API)."""
    helm_payload = base64.b64decode(base64.b64decode(data_release))
    if helm_payload[:2] == b"\x1f\x8b":  # Helm only gzips when it helps; it always has so far
        helm_payload = gzip.decompress(helm_payload)
    return json.loads(helm_payload)


def release_secret(*, name: str, namespace: str, revision: int, chart: str, chart_version: str,
                   app_version: str, config: dict, deployed_at: str, first_deployed_at: str | None = None,
                   status: str = "deployed", manifest: str = "", description: str | None = None,
                   chart_extra: dict | None = None) -> dict:
    """A complete Secret object for one release revision."""
    release = {
        "name": name,
        "info": {"first_deployed": first_deployed_at or deployed_at, "last_deployed": deployed_at, "deleted": "",
                 "description": description or ("Install complete" if revision == 1 else "Upgrade complete"),
                 "status": status},
        "chart": {"metadata": {"name": chart, "version": chart_version, "appVersion": app_version,
                               "apiVersion": "v2", "type": "application", **(chart_extra or {})},
                  "lock": None, "templates": [], "values": {}, "schema": None, "files": []},
        "config": config,
        "manifest": manifest,
        "version": revision,
        "namespace": namespace,
    }
    modified = int(datetime.fromisoformat(deployed_at.replace("Z", "+00:00")).timestamp())
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v{revision}",
            "namespace": namespace,
            "creationTimestamp": deployed_at,
            "labels": {"modifiedAt": str(modified), "name": name, "owner": "helm", "status": status,
                       "version": str(revision)},
        },
        "type": "helm.sh/release.v1",
        "data": {"release": encode_release(release)},
    }


def _main(paths: list[str]) -> int:
    from .dump import load_dump

    for obj in load_dump(paths):
        if obj.get("type") == "helm.sh/release.v1":
            release = decode_release(obj["data"]["release"])
            meta = release["chart"]["metadata"]
            print(f"{release['namespace']}/{release['name']} v{release['version']} {release['info']['status']} "
                  f"{meta['name']}-{meta['version']} (app {meta.get('appVersion')})")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
