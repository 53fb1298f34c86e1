"""What is derived from files that did not change, kept between runs: the validated policy and the features' specs.

Every run reads and validates the policy (YAML, JSON Schema) and parses every feature into its specs
before the first probe; with the same files and the same code the result is the same, so it is kept,
pickled, in ``$XDG_CACHE_HOME/railiance-conformance`` (default ``~/.cache/...``, mode 0700) under a key
made of the bytes of every input file and the size and mtime of every source file of this package
(a changed check kind or schema is a new key). Only results are kept, never errors: bad input is read,
validated and refused on every run as before. Any problem with the cache itself (no home, a read-only
disk, a damaged file) is silently the uncached path. ``RAILIANCE_CACHE=0`` turns it off.
Example: ``cached("policy", [policy_dir, features_dir], lambda: (load_catalog(...), load_specs(...)))``.
"""
from __future__ import annotations

import copyreg
import functools
import hashlib
import io
import os
import pickle
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Callable, Iterable

PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path | None:
    if os.environ.get("RAILIANCE_CACHE", "1") == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.expanduser("~/.cache") if os.path.expanduser("~") != "~" else "")
    return Path(base) / "railiance-conformance" if base else None


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if root.is_dir() else []


@functools.cache
def code_key() -> str:
    """This package's source files (path, size, mtime) and Python's version: part of every key. Read once per
    process (the policy, the inventory and the validation memo each ask for it; the code does not change
    while it runs)."""
    digest = hashlib.sha256(f"{sys.version}\0".encode())
    for path in _files(PACKAGE):
        if path.suffix in (".py", ".json", ".yaml"):
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def key(name: str, inputs: Iterable[Path]) -> str:
    """The cache key: the inputs' paths and bytes, this package's source files' sizes and mtimes, Python's version."""
    digest = hashlib.sha256(f"{name}\0".encode())
    for root in inputs:
        for path in _files(Path(root)):
            digest.update(f"{path}\0".encode())
            digest.update(path.read_bytes())
    digest.update(code_key().encode())
    return digest.hexdigest()[:32]


def _mappingproxy(value: dict) -> types.MappingProxyType:
    return types.MappingProxyType(value)


class _Pickler(pickle.Pickler):
    # the catalog and the specs hold read-only mappings (MappingProxyType), which pickle refuses: kept as
    # their dict and made read-only again on load. This pickler's own table: nothing else changes.
    dispatch_table = {**copyreg.dispatch_table, types.MappingProxyType: lambda m: (_mappingproxy, (dict(m),))}


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def family(name: str, inputs: list[Path]) -> str:
    """The entries of one name for one set of input paths (one checkout): replaced when its inputs change,
    never another checkout's."""
    digest = hashlib.sha256("\0".join([name, str(PACKAGE), *(str(Path(p).resolve()) for p in inputs)]).encode())
    return f"{name}-{digest.hexdigest()[:12]}"


def cached(name: str, inputs: Iterable[Path], compute: Callable[[], Any]) -> Any:
    """``compute()``'s result, from the cache when the inputs and the code are unchanged; else computed
    (its exceptions raised as they are) and stored."""
    if cache_dir() is None:
        return compute()
    inputs = [Path(p) for p in inputs]
    kept, entry = family(name, inputs), key(name, inputs)
    found = load(kept, entry)
    if found is not MISSING:
        return found
    value = compute()
    store(kept, entry, value)
    return value


MISSING = object()  # load()'s answer when there is no entry


def load(family: str, entry: str) -> Any:
    """The value stored under ``family`` (one name and checkout: ``_family``) and ``entry`` (a key of
    its inputs), or ``MISSING`` (none, a damaged one, or the cache off)."""
    directory = cache_dir()
    if directory is None:
        return MISSING
    path = directory / f"{family}-{entry}.pickle"
    try:
        with open(path, "rb") as handle:
            value = pickle.load(handle)
    except Exception:  # noqa: BLE001 - no cache, a stale or damaged one: computed as if there were none
        return MISSING
    try:
        os.utime(path)  # used now: the last an entry of a family with room for several (``store(keep=)``) to go
    except OSError:
        pass
    return value


def store(family: str, entry: str, value: Any, keep: int = 1) -> None:
    """Keep ``value`` under ``entry`` of ``family``, with at most ``keep - 1`` of the family's other entries, the
    most recently used (loaded or stored: their mtime), beside it; the others are removed, so a family holds at
    most ``keep`` files. ``keep=1``: the inputs changed, the old entry is of no more use. A cache that cannot be
    written costs the next run its time, nothing else (never raises)."""
    directory = cache_dir()
    if directory is None:
        return
    tmp: str | None = None
    try:
        data = _dumps(value)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        others = []
        for old in directory.glob(f"{family}-*.pickle"):
            try:
                others.append((old.stat().st_mtime_ns, old))
            except OSError:
                continue
        others = [o for o in sorted(others, reverse=True) if o[1].name != f"{family}-{entry}.pickle"]
        for _, old in others[max(0, keep - 1):]:
            old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{family}-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, directory / f"{family}-{entry}.pickle")
    except Exception:  # noqa: BLE001
        try:
            if tmp is not None:  # None: the failure came before the temporary file existed
                os.unlink(tmp)
        except Exception:  # noqa: BLE001
            pass
