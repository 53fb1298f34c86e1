"""Step definitions for the host features: one Then step per host check kind, generated from the vocabulary.

Steps stay thin: each Then sentence is a check kind (``railiance_conformance.controls``, one module per subject) whose
params were parsed and validated before any probe ran (``vocabulary.load_specs``). The suite
evaluates the scenario's control on every selected host from facts gathered once (one SSH command
per host, ``railiance_conformance.evaluation``); the step passes or fails on those findings.
"""
from __future__ import annotations

from pytest_bdd import given

from steps import then_steps_for


@given("the host's facts, gathered in one SSH command")
def _(fact_store):
    """Every host is probed concurrently, one SSH connection and one command each."""


then_steps_for("host")
