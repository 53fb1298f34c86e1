"""Desired values that allow more than one observed value, where the workplan itself does.

A desired value in a policy or feature is either a plain value (equal to it) or one of:

* ``{"between": [LOW, HIGH]}`` — any number with LOW <= observed <= HIGH (both inclusive);
* ``{"one_of": [A, B, ...]}`` — any of the listed values.

Example: T03's manifest says ``instances: 1  # single-node to start; bump to 3 when RAM allows``,
so the policy says ``instances: {between: [1, 3]}`` and a healthy gitea-db with 3 instances passes:
``matches({"between": [1, 3]}, 3)`` -> True. Mappings and lists are compared element by element,
so an allowed range may sit anywhere inside an expected dict.
"""
from __future__ import annotations

from typing import Any

OPERATORS = ("between", "one_of")


def is_allowance(value: Any) -> bool:
    """True for ``{"between": [...]}`` / ``{"one_of": [...]}``."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in OPERATORS


def matches(expected: Any, observed: Any) -> bool:
    """Whether ``observed`` satisfies ``expected`` (plain equality, or an allowance, recursively)."""
    if is_allowance(expected):
        (operator, operand), = expected.items()
        if operator == "between":
            low, high = operand
            return isinstance(observed, (int, float)) and not isinstance(observed, bool) and low <= observed <= high
        return any(matches(option, observed) for option in operand)
    if isinstance(expected, dict) and isinstance(observed, dict):
        return expected.keys() == observed.keys() and all(matches(expected[k], observed[k]) for k in expected)
    if isinstance(expected, (list, tuple)) and isinstance(observed, (list, tuple)):
        return len(expected) == len(observed) and all(matches(e, o) for e, o in zip(expected, observed, strict=True))
    return expected == observed
