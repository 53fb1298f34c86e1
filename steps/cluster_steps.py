"""Step definitions for the cluster features (S2 baseline, T03 CloudNativePG, T04 Gitea on cnpg, T05
Valkey, T06 layer boundaries, T09/T10 pending): one Then step per cluster check kind, generated from
the vocabulary.

The cluster is read lazily: only the kinds the selected scenarios' check kinds read, one LIST per
kind per run. Each Then sentence is a check kind (``railiance_conformance.controls``: ``workloads``,
``objects``, ``cnpg``, ``helm`` … and ``boundary``) whose params were parsed and validated before any
probe ran; the suite evaluates it (``railiance_conformance.evaluation``) and the step passes or fails
on the finding.
"""
from __future__ import annotations

from pytest_bdd import given

from steps import then_steps_for


@given("the cluster, read through the Kubernetes API")
def _(cluster_snapshot):
    """The cluster snapshot: one LIST per kind a selected check reads, cached for the run."""


then_steps_for("cluster")
