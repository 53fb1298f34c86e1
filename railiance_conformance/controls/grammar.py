"""The sentence grammar the check kinds share: regular-expression tokens of a Then sentence, the JSON
Schema fragments of their params, and ``and_list`` for the lists a sentence writes out.

A token with a named group (``USER``, ``UNIT``, ``PROPERTIES``, ``SYSCTL_KEY``, ``LIMITS``) gives that
param; the others are pieces a kind's pattern wraps in its own group. The names follow the field:
``UNIT`` is a systemd unit name (systemd.unit(5)), ``NS``/``NAME`` Kubernetes object names (RFC 1123
labels and DNS subdomains), ``QUANTITY`` a Kubernetes resource quantity, ``SIZE`` a systemd size
(systemd.resource-control(5): bytes with a K/M/G/T/P/E suffix, a percentage, or ``infinity``).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

Params = Mapping[str, Any]

# --- hosts ---------------------------------------------------------------------------------------
USER = r"(?P<user>[a-z_][a-z0-9_-]{0,31})"
UNIT = r"(?P<unit>[A-Za-z0-9:_.@-]+\.(?:slice|service|scope|socket|target|timer|mount|swap|path))"
PROPERTIES = r"(?P<properties>[A-Z][A-Za-z]+ (?:to )?\S+(?:(?:, | and )[A-Z][A-Za-z]+ (?:to )?\S+)*)"
SYSCTL_KEY = r"(?P<key>[a-z0-9_]+(?:\.[A-Za-z0-9_-]+)+)"
LIMITS = r"(?P<item>[a-z]+) soft (?P<soft>\d+|unlimited) and hard (?P<hard>\d+|unlimited)"
LIMIT = {"oneOf": [{"type": "integer", "minimum": 0}, {"const": "unlimited"}]}
SIZE = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?[KMGTPE]?|infinity|[0-9]+(\.[0-9]+)?%)$"}

# --- clusters ------------------------------------------------------------------------------------
NS = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
NAME = r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?"
SELECTOR = r"[A-Za-z0-9./_-]+=[A-Za-z0-9._-]+(?:,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]+)*"
QUANTITY = r"[0-9]+(?:\.[0-9]+)?(?:[KMGTPE]i|[kMGTPE])?"

# --- repos ---------------------------------------------------------------------------------------
REPO = r"[A-Za-z0-9][A-Za-z0-9._-]*"
RELPATH = r"[A-Za-z0-9._*?\[\]-][A-Za-z0-9._/*?\[\]-]*"

# --- lists ---------------------------------------------------------------------------------------
AND = r"(?:, and |, | and )"
_SEPARATOR = re.compile(r",\s*(?:and\s+)?|\s+and\s+|\s+or\s+")


def and_list(text: str) -> list[str]:
    """The items of a list as a sentence writes it: ``"a, b and c"``, ``"a, b, and c"`` and
    ``"a or b"`` -> ``["a", "b", "c"]`` / ``["a", "b"]``; items are stripped, empty ones dropped."""
    return [part.strip() for part in _SEPARATOR.split(text) if part.strip()]
