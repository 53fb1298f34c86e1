"""Step definitions for the repo checks (T03, T06, T08): one Then step per repo check kind, generated
from the vocabulary (``railiance_conformance.controls.repo``, ``.goss``).

The repo checkouts come from ``--repos DIR`` (the railiance-* checkouts side by side, named in
``policies/layers.yaml`` repos.names); what each must hold is stated by the feature's sentence.
"""
from __future__ import annotations

from pytest_bdd import given

from steps import then_steps_for


@given("the railiance-* repo checkouts")
def _(repos_dir):
    """The checkouts named in policies/layers.yaml under --repos DIR (absent: every repo check is an error)."""


then_steps_for("repo")
