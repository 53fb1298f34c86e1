"""Machine-readable report: ``reports/findings.json``.

Example: ``json.loads(render(run))["findings"][0]["control_id"]`` -> ``"host.swap.file"``.
"""
from __future__ import annotations

from railiance_conformance.reporting import Reporter, Run, register
from railiance_conformance.reporting.encode import json_text

SCHEMA_VERSION = 1


def to_document(run: Run) -> dict:
    """The document findings.schema.json describes; ``run`` holds the fixed fields, then
    ``Run.details()`` (workplan, connections, deadline, claims, gate, diff, history, output_failures)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {"id": run.run_id, "started_at": run.started_at, "finished_at": run.finished_at,
                "partial": run.partial, "targets": list(run.targets), **run.details()},
        "summary": run.counts(),
        "findings": [finding.to_dict() for finding in run.findings],
    }


def render(run: Run) -> str:
    return json_text(to_document(run)) + "\n"


REPORTER = register(Reporter("json", "findings.json", render))
