"""The field-level difference between a finding's expected and observed values: the core of every format.

A drift shows only the fields that differ, ``expected → observed``, the rest folded away:

    >>> field_diff({"HOST": "gitea-db-rw:5432", "NAME": "gitea"}, {"HOST": "pgpool:5432", "NAME": "gitea"}).lines()
    ['HOST: gitea-db-rw:5432 → pgpool:5432']

Rules (what "differ" means is ``expectations.matches``, the evaluators' own comparison):

* mappings are compared key by key (nested to any depth); a key on one side only is ``(absent)``
  on the other;
* lists of plain values are compared as collections: each value missing from the observed list
  is ``value → (absent)``, each extra one ``(absent) → value``; when only the order differs, the
  whole list is one change; lists of mappings whose items all carry a ``name`` are matched by it
  (``[name=gitea]``), other lists item by item (``[2]``);
* an allowance (``{"between": [1, 3]}``, ``{"one_of": [...]}``) that the observed value satisfies
  is no difference; one it does not satisfy is shown as ``between 1 and 3``;
* values are already redacted (``recorder.sanitize``): a masked value shows as ``***`` and nothing
  else. Two masked values that read the same (``*** → ***``) cannot be told apart here, so they are
  folded unless nothing else explains the drift; then they are shown, marked as secret.

Values are plain text, not yet made inert: each format applies ``printable`` and its own escaping.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from railiance_conformance.expectations import is_allowance, matches
from railiance_conformance.redact import MASK

ARROW = "→"
ABSENT_TEXT = "(absent)"


class _Absent:
    """A field one side does not have."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One differing field: its path from the value's root (``("database", "HOST")``, ``(2,)``,
    ``("[name=gitea]",)``, ``()`` for the whole value) and both sides (``ABSENT`` when missing)."""

    path: tuple[str | int, ...]
    expected: Any
    observed: Any
    secret: bool = False            # both sides masked (``***``): not comparable in a report

    @property
    def where(self) -> str:
        """``"database.HOST"``, ``"remotes[2]"``, ``"items[name=gitea].image"``; ``""`` for the root."""
        text = ""
        for part in self.path:
            if isinstance(part, int):
                text += f"[{part}]"
            elif part.startswith("["):
                text += part
            else:
                text += ("." if text else "") + part
        return text

    def line(self) -> str:
        """``"HOST: a → b"``, or ``"10 → 60"`` for a whole value."""
        change = f"{show(self.expected)} {ARROW} {show(self.observed)}" + (" (secret: not shown)" if self.secret else "")
        return f"{self.where}: {change}" if self.path else change


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """Every differing field of one finding and how many equal fields were folded away."""

    changes: tuple[FieldChange, ...]
    same: int = 0

    def lines(self) -> list[str]:
        return [change.line() for change in self.changes]

    def folded(self) -> str:
        """``"3 more fields as expected"``, ``""`` when nothing was folded."""
        if not self.same:
            return ""
        return f"{self.same} more field{'s' if self.same != 1 else ''} as expected"


def show(value: Any) -> str:
    """One side of a change as text: strings as they are, ``(absent)``, allowances in words,
    everything else compact JSON. ``show({"between": [1, 3]})`` -> ``"between 1 and 3"``."""
    if value is ABSENT:
        return ABSENT_TEXT
    if isinstance(value, str):
        return value if value else '""'
    if is_allowance(value):
        (operator, operand), = value.items()
        if operator == "between":
            return f"between {show(operand[0])} and {show(operand[1])}"
        return "one of " + ", ".join(show(option) for option in operand)
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _masked(value: Any) -> bool:
    return isinstance(value, str) and MASK in value


def _plain(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple))


def _named(items: Iterable[Any]) -> bool:
    items = list(items)
    return bool(items) and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)


def _walk(expected: Any, observed: Any, path: tuple, changes: list[FieldChange], masked: list[FieldChange]) -> int:
    """Append the changes under ``path``; return how many equal leaf fields were seen."""
    if _plain(expected) or _plain(observed) or is_allowance(expected):
        if not matches(expected, observed):
            changes.append(FieldChange(path, expected, observed))
            return 0
        if _masked(expected) and _masked(observed):
            masked.append(FieldChange(path, expected, observed, secret=True))
        return 1
    if isinstance(expected, dict) and isinstance(observed, dict) and not is_allowance(expected):
        same = 0
        for key in [*expected, *(k for k in observed if k not in expected)]:
            child = (*path, str(key))
            if key not in observed:
                changes.append(FieldChange(child, expected[key], ABSENT))
            elif key not in expected:
                changes.append(FieldChange(child, ABSENT, observed[key]))
            else:
                same += _walk(expected[key], observed[key], child, changes, masked)
        return same
    if isinstance(expected, (list, tuple)) and isinstance(observed, (list, tuple)):
        return _walk_list(list(expected), list(observed), path, changes, masked)
    changes.append(FieldChange(path, expected, observed))
    return 0


def _walk_list(expected: list, observed: list, path: tuple, changes: list[FieldChange], masked: list) -> int:
    if all(_plain(v) for v in (*expected, *observed)):
        if len(expected) == len(observed) and all(matches(e, o) for e, o in zip(expected, observed, strict=True)):
            for index, (e, o) in enumerate(zip(expected, observed, strict=True)):
                if _masked(e) and _masked(o):
                    masked.append(FieldChange((*path, index), e, o, secret=True))
            return len(expected)
        remaining = list(observed)
        missing = []
        for value in expected:
            hit = next((i for i, o in enumerate(remaining) if matches(value, o)), None)
            if hit is None:
                missing.append(value)
            else:
                remaining.pop(hit)
        if not missing and not remaining:  # the same values in another order
            changes.append(FieldChange(path, expected, observed))
            return 0
        changes.extend(FieldChange((*path, "[]"), value, ABSENT) for value in missing)
        changes.extend(FieldChange((*path, "[]"), ABSENT, value) for value in remaining)
        return len(expected) - len(missing)
    if _named(expected) and _named(observed):
        by_name = {item["name"]: item for item in observed}
        same = 0
        for item in expected:
            child = (*path, f"[name={item['name']}]")
            if item["name"] in by_name:
                same += _walk(item, by_name.pop(item["name"]), child, changes, masked)
            else:
                changes.append(FieldChange(child, item, ABSENT))
        changes.extend(FieldChange((*path, f"[name={name}]"), ABSENT, item) for name, item in by_name.items())
        return same
    same = 0
    for index in range(max(len(expected), len(observed))):
        child = (*path, index)
        if index >= len(observed):
            changes.append(FieldChange(child, expected[index], ABSENT))
        elif index >= len(expected):
            changes.append(FieldChange(child, ABSENT, observed[index]))
        else:
            same += _walk(expected[index], observed[index], child, changes, masked)
    return same


def field_diff(expected: Any, observed: Any) -> FieldDiff:
    """The differing fields of ``expected`` and ``observed`` (see the module docstring).
    ``field_diff({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3]}).lines()`` -> ``['b[]: 2 → (absent)', 'b[]: (absent) → 3']``."""
    changes: list[FieldChange] = []
    masked: list[FieldChange] = []
    same = _walk(expected, observed, (), changes, masked)
    if not changes and masked:  # nothing visible explains the drift: the secret fields may
        return FieldDiff(tuple(masked), same - len(masked))
    return FieldDiff(tuple(changes), same)


def finding_diff(finding: Any) -> FieldDiff:
    """``field_diff`` of a Finding's expected and observed values."""
    return field_diff(finding.expected, finding.observed)
