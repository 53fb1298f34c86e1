"""The catalog's layers and severities, declared once.

Every other place derives them from here: the catalog's JSON Schema (``policy.schema`` fills the
``enum`` of a control's ``layer`` and ``severity``), the pytest markers (``plugin.py``), the
Prometheus labels and the PolicyReport's severity mapping (``reporting/``), ``serve
--fail-severity``'s choices. ``reporting/schemas/findings.schema.json`` is a file for readers
outside the suite; a unit test keeps its two enums equal to these.
"""
from __future__ import annotations

# The platform's layers S1-S5 (hosts, cluster base, data, apps, edge: policies/layers.yaml) and X,
# the cross-cutting controls that belong to no one layer.
LAYERS: tuple[str, ...] = ("S1", "S2", "S3", "S4", "S5", "X")
# Loudest first, the common scale of policy engines (Kyverno's and the PolicyReport CRD's names).
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
