"""The stand-in's storage: dump objects indexed per resource, listed like etcd lists them.

    >>> store = ObjectStore(objects, registry)
    >>> page = store.list(pods, namespace=None, limit=2)   # all namespaces, namespace/name order
    >>> store.list(pods, None, limit=2, continue_token=page.continue_token)

Paging follows the apiserver's etcd3 storage: items ordered by key (``namespace/name``), a
``limit`` returns at most that many items plus an opaque ``continue`` token (base64url JSON
``{"v": "meta.k8s.io/v1", "rv": N, "start": "<next key>"}``) and, when no selector was given,
``remainingItemCount``. A token that does not decode is a ``ContinueError`` (HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import uuid
from dataclasses import dataclass
from typing import Callable

from .resources import ResourceRegistry, ResourceType

DEFAULT_CREATION_TIMESTAMP = "2026-03-26T09:00:00Z"


class ContinueError(ValueError):
    """An invalid ``continue`` token (the apiserver answers 400 BadRequest)."""


@dataclass(frozen=True)
class ListPage:
    items: list[dict]
    resource_version: str
    continue_token: str | None
    remaining: int | None


def encode_continue(start_key: str, resource_version: int) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": start_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_continue(token: str) -> str:
    """The start key inside a continue token; raises ContinueError like storage.DecodeContinue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ContinueError(f"continue key is not valid: {exc}") from None
    if not isinstance(decoded, dict) or decoded.get("v") != "meta.k8s.io/v1":
        raise ContinueError("continue key is not valid: server does not recognize this encoded version")
    if not isinstance(decoded.get("rv"), int) or decoded["rv"] <= 0:
        raise ContinueError("continue key is not valid: "
                            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    start = decoded.get("start")
    if not isinstance(start, str) or not start:
        raise ContinueError("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")
    if ".." in start.split("/") or "." in start.split("/"):
        raise ContinueError("continue key is not valid")
    return start


def _normalised(obj: dict, index: int) -> dict:
    """A copy carrying the metadata every stored object has (uid, resourceVersion, timestamps)."""
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    identity = f"{obj['apiVersion']}/{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"
    meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, "railiance-testbed:" + identity)))
    meta.setdefault("resourceVersion", str(1000 + index))
    meta.setdefault("creationTimestamp", DEFAULT_CREATION_TIMESTAMP)
    return obj


class ObjectStore:
    """Read-only objects per (group, plural), each list kept in key order."""

    def __init__(self, objects: list[dict], registry: ResourceRegistry):
        self.registry = registry
        self._objects: dict[tuple[str, str], dict[str, dict]] = {}
        revision = 1
        for index, raw in enumerate(objects):
            rtype = registry.for_object(raw)
            obj = _normalised(raw, index)
            if str(obj["metadata"]["resourceVersion"]).isdigit():
                revision = max(revision, int(obj["metadata"]["resourceVersion"]))
            bucket = self._objects.setdefault((rtype.group, rtype.plural), {})
            bucket[self._key(obj, rtype)] = obj
        for group_plural, bucket in self._objects.items():
            self._objects[group_plural] = dict(sorted(bucket.items()))
        self.revision = revision

    @staticmethod
    def _key(obj: dict, rtype: ResourceType) -> str:
        meta = obj["metadata"]
        return f"{meta.get('namespace', '')}/{meta['name']}" if rtype.namespaced else meta["name"]

    @staticmethod
    def _present(obj: dict, rtype: ResourceType) -> dict:
        """The object as served: a shallow copy (answers are serialised, never mutated)."""
        return {**obj, "apiVersion": rtype.group_version, "kind": rtype.kind}

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        key = f"{namespace or ''}/{name}" if rtype.namespaced else name
        obj = self._objects.get((rtype.group, rtype.plural), {}).get(key)
        return self._present(obj, rtype) if obj is not None else None

    def list(self, rtype: ResourceType, namespace: str | None, *, limit: int = 0,
             continue_token: str | None = None, predicate: Callable[[dict], bool] | None = None) -> ListPage:
        """One page of the objects of ``rtype`` in ``namespace`` (None: all namespaces)."""
        bucket = self._objects.get((rtype.group, rtype.plural), {})
        prefix = f"{namespace}/" if rtype.namespaced and namespace else ""
        start = prefix + decode_continue(continue_token) if continue_token else prefix
        keys = [k for k in bucket if k.startswith(prefix) and k >= start]
        matching = [k for k in keys if predicate is None or predicate(bucket[k])]
        page = matching[:limit] if limit > 0 else matching
        token, remaining = None, None
        if limit > 0 and len(matching) > limit:
            last = page[-1]
            token = encode_continue(last[len(prefix):] + "\x00", self.revision)
            remaining = None if predicate is not None else len(matching) - limit
        return ListPage([self._present(bucket[k], rtype) for k in page], str(self.revision), token, remaining)

    def put(self, rtype: ResourceType, obj: dict) -> tuple[dict, bool]:
        """Store ``obj`` (a server-side apply's result) under a new resourceVersion; (stored, created)."""
        bucket = self._objects.setdefault((rtype.group, rtype.plural), {})
        key = self._key(obj, rtype)
        created = key not in bucket
        self.revision += 1
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not created:
            meta["uid"] = bucket[key]["metadata"]["uid"]
            meta["creationTimestamp"] = bucket[key]["metadata"]["creationTimestamp"]
        stored = _normalised({**obj, "metadata": {**meta, "resourceVersion": str(self.revision)}}, 0)
        bucket[key] = stored
        self._objects[(rtype.group, rtype.plural)] = dict(sorted(bucket.items()))
        return self._present(stored, rtype), created

    def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        """Remove one object under a new resourceVersion; the object removed, or None when there was none."""
        bucket = self._objects.get((rtype.group, rtype.plural), {})
        key = f"{namespace or ''}/{name}" if rtype.namespaced else name
        if key not in bucket:
            return None
        self.revision += 1
        return self._present(bucket.pop(key), rtype)
