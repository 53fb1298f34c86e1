"""``-k`` selects hosts of a one-item-per-control scenario as if the item were parametrised per host.

The rule is pytest's documented ``-k`` grammar (``_pytest/mark/expression.py``, "Using -k expr to
select tests"), read here through public API only: ``expr := and ('or' and)*``, ``and := not
('and' not)*``, ``not := 'not' not | '(' expr ')' | NAME``; a NAME matches when it is a
case-insensitive substring of one of the item's names (its node names below the root directory, its
extra keywords, the markers in scope, the attributes set on its function: ``KeywordMatcher.from_item``).
Example: ``selected_hosts(item, ["a", "b"], "swap and not b")`` -> ``["a"]``; a malformed expression
raises ValueError (pytest has already refused it as a usage error before any item runs).
"""
from __future__ import annotations

import re
from typing import Any, Callable

_TOKEN = re.compile(r"\s*(?:(\()|(\))|((?:\w|:|\+|-|\.|\[|\]|\\|/)+))")


def _tokens(expression: str) -> list[str]:
    tokens, at = [], 0
    while at < len(expression):
        if expression[at:].strip() == "":
            break
        found = _TOKEN.match(expression, at)
        if not found:
            raise ValueError(f"-k {expression!r}: unexpected character at column {at + 1}")
        tokens.append(found[0].strip())
        at = found.end()
    return tokens


def keyword_matches(expression: str, matches: Callable[[str], bool]) -> bool:
    """Evaluate a ``-k`` expression with ``matches(name)`` deciding each NAME (empty: True)."""
    tokens = _tokens(expression)
    at = 0

    def peek() -> str | None:
        return tokens[at] if at < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal at
        token = peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"-k {expression!r}: expected {expected or 'a name'} at token {at + 1}")
        at += 1
        return token

    def any_of() -> bool:
        value = all_of()
        while peek() == "or":
            take()
            value = all_of() or value
        return value

    def all_of() -> bool:
        value = negated()
        while peek() == "and":
            take()
            value = negated() and value
        return value

    def negated() -> bool:
        token = take()
        if token == "not":
            return not negated()
        if token == "(":
            value = any_of()
            take(")")
            return value
        if token in (")", "and", "or"):
            raise ValueError(f"-k {expression!r}: unexpected {token!r} at token {at}")
        return matches(token)

    if not tokens:
        return True
    value = any_of()
    if peek() is not None:
        raise ValueError(f"-k {expression!r}: unexpected {peek()!r} at token {at + 1}")
    return value


def item_names(item: Any) -> set[str]:
    """The names ``-k`` matches an item by (``KeywordMatcher.from_item``, through public Node API)."""
    import pytest

    names = set()
    for node in item.listchain():
        if isinstance(node, pytest.Session) or (isinstance(node, pytest.Directory)
                                                and isinstance(node.parent, pytest.Session)):
            continue
        names.add(node.name)
    names.update(item.listextrakeywords())
    function = getattr(item, "function", None)
    if function is not None:
        names.update(name for name in function.__dict__
                     if not name.startswith("_") and name not in ("pytestmark", "cache_parameters"))
    names.update(mark.name for mark in item.iter_markers())
    return names


def selected_hosts(item: Any, hosts: list[str], keyword: str) -> list[str]:
    """The hosts ``-k KEYWORD`` selects: each host is matched against the item's own names plus its
    own name (the host names pytest was told as extra keywords are not the item's own)."""
    if not keyword:
        return hosts
    own = item_names(item) - set(hosts)

    def chosen(host: str) -> bool:
        names = [name.lower() for name in (*own, host)]
        return keyword_matches(keyword, lambda word: any(word.lower() in name for name in names))

    return [host for host in hosts if chosen(host)]
