"""RFC 7386 JSON merge patch, for fixtures written as a small change to a base (host states, cluster dumps)."""
from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied (RFC 7386 section 2): mappings merge key by key, ``None``
    removes a key, anything else (lists included) replaces. Neither argument is modified.
    ``merge_patch({"a": 1, "b": {"c": 2}}, {"b": {"c": None}, "d": [1]})`` -> ``{"a": 1, "b": {}, "d": [1]}``."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
