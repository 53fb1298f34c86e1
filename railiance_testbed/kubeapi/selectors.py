"""Label and field selectors, parsed the way the kube-apiserver parses them.

    >>> parse_label_selector("app.kubernetes.io/name in (gitea,valkey),!canary")(obj)
    >>> parse_field_selector("metadata.namespace=gitea,status.phase!=Running")(obj)

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists),
``!k`` (does not exist), ``k>n`` / ``k<n`` (integers); requirements are ANDed by commas.
``!=`` and ``notin`` also match objects that lack the label, as in Kubernetes.

Field selectors: ``path=v``, ``path==v``, ``path!=v`` on any dotted path (``metadata.name``,
``status.phase``, ``spec.nodeName``...). A missing field compares as the empty string, so
``spec.nodeName=`` finds unscheduled pods like the real server; ``\\,`` ``\\=`` ``\\\\`` escape.

Both parsers raise ``SelectorError`` (the server answers 400 BadRequest) on bad syntax.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Predicate = Callable[[dict], bool]

_KEY = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SET_OP = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_BINARY_OP = re.compile(r"^(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>\S*)$")


class SelectorError(ValueError):
    """A selector string the real apiserver would reject."""


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside a parenthesised ``in (...)`` value set."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced parenthesis in selector {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unbalanced parenthesis in selector {text!r}")
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _check_key(key: str) -> str:
    if not _KEY.match(key):
        raise SelectorError(f"invalid label key {key!r}")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(f"invalid label value: {value!r}")
    return value


def _label_requirement(text: str) -> Predicate:
    if not text:
        raise SelectorError("found '', expected: identifier")
    if text.startswith("!"):
        key = _check_key(text[1:].strip())
        return lambda labels: key not in labels
    match = _SET_OP.match(text)
    if match:
        key = _check_key(match["key"])
        values = {_check_value(v.strip()) for v in match["values"].split(",")}
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    match = _BINARY_OP.match(text)
    if match:
        key, op, value = _check_key(match["key"]), match["op"], match["value"]
        if op in ("=", "=="):
            _check_value(value)
            return lambda labels: key in labels and labels[key] == value
        if op == "!=":
            _check_value(value)
            return lambda labels: labels.get(key) != value
        if not re.fullmatch(r"-?\d+", value):
            raise SelectorError(f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}")
        bound = int(value)

        def compare(labels: dict) -> bool:
            raw = labels.get(key)
            if raw is None or not re.fullmatch(r"-?\d+", raw):
                return False
            return int(raw) > bound if op == ">" else int(raw) < bound

        return compare
    key = _check_key(text)
    return lambda labels: key in labels


def parse_label_selector(selector: str | None) -> Predicate:
    """Return a predicate over whole objects, e.g. ``parse_label_selector("app=gitea")(obj)``."""
    if not selector or not selector.strip():
        return lambda obj: True
    requirements = [_label_requirement(part) for part in _split_top_level(selector)]

    def matches(obj: dict) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise SelectorError("invalid field selector: trailing backslash")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def field_value(obj: dict, path: str) -> str:
    """The string form of a dotted field as the apiserver compares it; missing -> ''."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return ""
        current = current[part]
    if isinstance(current, bool):
        return "true" if current else "false"
    if current is None or isinstance(current, (dict, list)):
        return ""
    return str(current)


def _field_requirement(text: str) -> Predicate:
    index, escaped = 0, False
    while index < len(text):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif text.startswith(("!=", "=="), index) or char == "=":
            break
        index += 1
    else:
        raise SelectorError(f"invalid selector: '{text}'; can't understand '{text}'")
    op = text[index:index + 2] if text.startswith(("!=", "=="), index) else "="
    path, value = text[:index].strip(), _unescape(text[index + len(op):].strip())
    if not path:
        raise SelectorError(f"invalid field selector {text!r}")
    if op == "!=":
        return lambda obj: field_value(obj, path) != value
    return lambda obj: field_value(obj, path) == value


def parse_field_selector(selector: str | None) -> Predicate:
    """Return a predicate, e.g. ``parse_field_selector("metadata.name=gitea-db")(obj)``."""
    if not selector or not selector.strip():
        return lambda obj: True
    requirements = [_field_requirement(part.strip()) for part in _split_unescaped(selector, ",") if part.strip()]
    return lambda obj: all(requirement(obj) for requirement in requirements)
