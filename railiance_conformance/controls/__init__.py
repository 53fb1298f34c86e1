"""Evaluators: plain functions from probe facts and desired values to an ``Outcome``.

Each control id maps to exactly one evaluator (``EVALUATORS``); steps look them up by id.
"""
from __future__ import annotations

from typing import Callable

from railiance_conformance.finding import Outcome

Evaluator = Callable[..., Outcome]
EVALUATORS: dict[str, Evaluator] = {}


def control(control_id: str) -> Callable[[Evaluator], Evaluator]:
    """Register ``fn`` as the evaluator of ``control_id``."""
    def register(fn: Evaluator) -> Evaluator:
        if control_id in EVALUATORS:
            raise ValueError(f"control {control_id} has two evaluators")
        EVALUATORS[control_id] = fn
        return fn
    return register
