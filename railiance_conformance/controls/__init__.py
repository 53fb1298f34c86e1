"""Check kinds by subject: ``host``, ``cluster``, ``boundary``, ``repo``.

Each module registers its kinds in ``vocabulary.CHECK_KINDS`` when imported; a scenario's Then sentence
names the kind (``vocabulary.load_specs``). ``EVALUATORS`` (control id -> evaluator) is the older
registry, kept only while something still imports it (benchmarks/host_controls.py); no check kind
registers there.
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


# goss.py is the one kind module no step module or command imports by name: it registers its repo
# kind whenever any check kind module is imported (steps/repo_steps.py generates its Then step)
from railiance_conformance.controls import goss  # noqa: E402,F401
