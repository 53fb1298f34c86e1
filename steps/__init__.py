"""Step definitions, one module per target (host, cluster, repo), loaded as plugins by the root conftest.

``then_steps_for(target)`` defines, in the calling module, one Then step per check kind of that target:
its sentence is the kind's regular expression, and the step only calls ``check()`` (the plugin's
fixture: the scenario's control evaluated on its targets, ``railiance_conformance.evaluation``).
"""
from __future__ import annotations

from pytest_bdd import parsers, then

from railiance_conformance.vocabulary import check_kinds


def then_steps_for(target: str) -> None:
    """Define a Then step for every check kind of ``target`` in the caller's module (pytest-bdd injects
    each step's fixture into the module that defines it: ``stacklevel=2``)."""
    for kind in [k for k in check_kinds().values() if k.target == target]:
        def step(check) -> None:
            check()
        then(parsers.re(kind.sentence.pattern), stacklevel=2)(step)
