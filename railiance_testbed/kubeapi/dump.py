"""Load a cluster dump: the objects the stand-in API serves.

A dump is one or more YAML (or JSON) files, or directories of them (``*.yaml``, ``*.yml``,
``*.json``, read in name order). Each file holds one or more YAML documents; a document is

* one Kubernetes object (``apiVersion``, ``kind``, ``metadata.name`` ...), or
* a ``kind: List`` / ``kind: <Kind>List`` with ``items`` -- what ``kubectl get -A -o yaml``
  prints, so ``kubectl get -A -o yaml deploy,svc,secret > dump.yaml`` is a valid dump, or
* an overlay document that deletes earlier objects::

      delete:
        - {apiVersion: apps/v1, kind: Deployment, namespace: gitea, name: gitea}
        - {kind: Secret, namespace: databases, name: gitea-db-credentials}   # any group
        - {apiVersion: v1, kind: Namespace, name: argocd}                    # cluster-scoped

* an overlay document that changes earlier objects by an RFC 7386 JSON merge patch (``null``
  removes a field, a list replaces the whole list; the object is named by ``apiVersion``,
  ``kind`` and ``metadata``; an error when nothing matches)::

      patch:
        apiVersion: apps/v1
        kind: Deployment
        metadata: {namespace: gitea, name: gitea}
        status: {readyReplicas: null, availableReplicas: null, unavailableReplicas: 1}

Several dumps are layered in the order given (``load_dump([base, drift])``): an object with
the same API group, kind, namespace and name as an earlier one replaces it, in place;
a ``delete:`` entry removes the matching objects loaded so far and is an error when nothing
matches (a typo in an overlay must not pass silently). A drifted variant is therefore
written as a small overlay directory next to ``dumps/conformant``, e.g.::

    # dumps/drift-gitea-sqlite/gitea.yaml
    delete:
      - {apiVersion: postgresql.cnpg.io/v1, kind: Cluster, namespace: databases, name: gitea-db}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: gitea-inline-config, namespace: gitea}
    type: Opaque
    stringData: {database: DB_TYPE=sqlite3}

``stringData`` on a Secret is folded into ``data`` (base64) as the apiserver does on write.

A time may be written relative to the moment the dump is loaded (the stand-in serves it right
after), so that a dump stays as fresh as it was on the day it was taken: a string value
``now-27h4m`` (or ``now+20h56m``; units ``d``, ``h``, ``m``, ``s``, at least one) becomes the RFC 3339
UTC time that far before (after) the load, e.g. ``stoppedAt: now-3h`` for a backup three hours old.
``load_dump(paths, now=datetime(...))`` fixes the reference time (tests of a given day).
"""

from __future__ import annotations

import base64
import os
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from railiance_testbed.merge_patch import merge_patch

DUMP_SUFFIXES = (".yaml", ".yml", ".json")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on a full dump
_RELATIVE = re.compile(r"now(?P<sign>[+-])(?=\d)(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


class DumpError(ValueError):
    """A dump file that cannot be served (bad YAML, an object without kind/name ...)."""


def object_key(obj: dict) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): what makes two dump objects "the same object"."""
    group = obj.get("apiVersion", "").rpartition("/")[0]
    meta = obj.get("metadata") or {}
    return group, obj.get("kind", ""), meta.get("namespace") or "", meta.get("name", "")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in DUMP_SUFFIXES)
    if path.is_file():
        return [path]
    raise DumpError(f"dump path does not exist: {path}")


def _documents(path: Path, now: datetime) -> Iterator[dict]:
    try:
        docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER))
    except yaml.YAMLError as exc:
        raise DumpError(f"{path}: not valid YAML: {exc}") from exc
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise DumpError(f"{path}: a document is a {type(doc).__name__}, not a mapping")
        if ("delete" in doc or "patch" in doc) and "kind" not in doc:
            yield doc
        elif str(doc.get("kind", "")).endswith("List") and "items" in doc:
            for item in doc.get("items") or []:
                yield _checked(path, item, now)
        else:
            yield _checked(path, doc, now)


def _plain(value, now: datetime):
    """YAML reads unquoted ``2026-04-01T11:20:07Z`` as a datetime; the API serves strings.
    ``now-3h``-style strings become the time that far from ``now``."""
    if isinstance(value, dict):
        return {key: _plain(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, now) for item in value]
    if isinstance(value, str) and (found := _RELATIVE.fullmatch(value)):
        offset = timedelta(days=int(found["d"] or 0), hours=int(found["h"] or 0), minutes=int(found["m"] or 0),
                           seconds=int(found["s"] or 0))
        value = now + offset if found["sign"] == "+" else now - offset
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return value


def _checked(path: Path, obj: dict, now: datetime) -> dict:
    obj = _plain(obj, now)
    if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind"):
        raise DumpError(f"{path}: object without apiVersion/kind: {str(obj)[:120]}")
    if not (obj.get("metadata") or {}).get("name"):
        raise DumpError(f"{path}: {obj['kind']} without metadata.name")
    if obj["kind"] == "Secret" and "stringData" in obj:
        obj = dict(obj)
        data = dict(obj.get("data") or {})
        for key, value in (obj.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    return obj


def _as_list(value) -> list[dict]:
    return value if isinstance(value, list) else [value]


def _matches(ref: dict, obj: dict) -> bool:
    group, kind, namespace, name = object_key(obj)
    if "apiVersion" in ref and ref["apiVersion"].rpartition("/")[0] != group:
        return False
    return ref.get("kind") == kind and (ref.get("namespace") or "") == namespace and ref.get("name") == name


def load_dump(paths: Iterable[str | os.PathLike] | str | os.PathLike, *, now: datetime | None = None) -> list[dict]:
    """Objects of the given dump files/dirs, later ones replacing or deleting earlier ones; relative
    times (``now-3h``) resolved against ``now`` (default: the current UTC time)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    objects: dict[tuple[str, str, str, str], dict] = {}
    for path in paths:
        for file in _files(Path(path)):
            for doc in _documents(file, now):
                if "delete" in doc and "kind" not in doc:
                    for ref in doc["delete"] or []:
                        doomed = [key for key, obj in objects.items() if _matches(ref, obj)]
                        if not doomed:
                            raise DumpError(f"{file}: delete matches no object loaded so far: {ref}")
                        for key in doomed:
                            del objects[key]
                elif "patch" in doc and "kind" not in doc:
                    for patch in _as_list(doc["patch"]):
                        key = object_key(patch)
                        if key not in objects:
                            raise DumpError(f"{file}: patch matches no object loaded so far: {'/'.join(key)}")
                        objects[key] = _checked(file, merge_patch(objects[key], _plain(patch, now)), now)
                else:
                    objects[object_key(doc)] = doc
    return list(objects.values())
