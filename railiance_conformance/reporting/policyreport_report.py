"""A ``wgpolicyk8s.io/v1alpha2`` ClusterPolicyReport: ``policyreport.yaml``, for ``kubectl apply``.

One result per control and target: policy = control id, rule = task, category = layer;
drift -> fail, error -> error, waived and pending -> skip. Properties hold strings only.
Example: ``yaml.safe_load(render(run))["results"][0]["policy"]`` -> ``"host.swap.file"``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import yaml

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Reporter, Run, register

API_VERSION = "wgpolicyk8s.io/v1alpha2"
NAME = "railiance-conformance"
SOURCE = "railiance-conformance"
RESULT = {Status.PASS: "pass", Status.DRIFT: "fail", Status.ERROR: "error",
          Status.WAIVED: "skip", Status.PENDING: "skip"}
SEVERITIES = ("critical", "high", "medium", "low", "info")
KINDS = {"host": "Host", "cluster": "Cluster"}


def text(value: Any) -> str:
    """A value as a property string: ``text({"a": 1})`` -> ``'{"a": 1}'``; strings unchanged."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def timestamp(value: str) -> dict[str, int] | None:
    """``timestamp("1970-01-01T00:00:01.5Z")`` -> ``{"seconds": 1, "nanos": 500000000}``; None if unparsable."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return {"seconds": delta.days * 86400 + delta.seconds, "nanos": delta.microseconds * 1000}


def message(finding: Finding) -> str:
    """``"<title>: drift: expected 4; observed 2; fix: ..."`` and the like per status."""
    detail = {
        Status.PASS: f"holds: observed {text(finding.observed)}",
        Status.DRIFT: f"drift: expected {text(finding.expected)}; observed {text(finding.observed)}"
                      + (f" ({finding.reason})" if finding.reason else "") + f"; fix: {finding.remediation}",
        Status.ERROR: f"could not verify: {finding.reason}; expected {text(finding.expected)}",
        Status.WAIVED: f"waived: {finding.reason}",
        Status.PENDING: f"pending: {finding.reason}",
    }[finding.status]
    return f"{finding.title}: {detail}" if finding.title else detail


def result(finding: Finding, run_id: str) -> dict[str, Any]:
    properties = {"target": finding.target, "status": finding.status.value, "run_id": run_id,
                  "severity": finding.severity}
    for name, value in (("expected", finding.expected), ("observed", finding.observed),
                        ("remediation", finding.remediation or None), ("reason", finding.reason or None),
                        ("evidence", dict(finding.evidence) or None)):
        if value is not None:
            properties[name] = text(value)
    item: dict[str, Any] = {
        "policy": finding.control_id, "rule": finding.task, "category": finding.layer,
        "severity": finding.severity.lower() if finding.severity.lower() in SEVERITIES else "info",
        "result": RESULT[finding.status], "scored": finding.status not in (Status.WAIVED, Status.PENDING),
        "source": SOURCE, "message": message(finding),
        "resources": [{"kind": KINDS.get(finding.control_id.split(".", 1)[0], "Target"), "name": finding.target}],
        "properties": properties,
    }
    if (stamp := timestamp(finding.started_at)) is not None:
        item["timestamp"] = stamp
    return item


def to_document(run: Run) -> dict[str, Any]:
    results = [result(f, run.run_id) for f in run.findings]
    changes = {f"railiance.io/since-previous-{name.replace('_', '-')}": str(n)
               for name, n in (run.changes() or {}).items()}
    if run.gate is not None:
        changes |= {"railiance.io/gate-task": run.gate.task, "railiance.io/gate-verdict": run.gate.verdict}
    # annotation keys: a task id is a valid name part ("railiance.io/done-when-RAIL-HO-WP-0004-T01")
    changes |= {f"railiance.io/done-when-{row.task}": row.summary() for row in run.coverage or ()}
    summary = {key: sum(1 for r in results if r["result"] == key) for key in ("pass", "fail", "warn", "error", "skip")}
    return {
        "apiVersion": API_VERSION, "kind": "ClusterPolicyReport",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/managed-by": SOURCE},
                     "annotations": {"railiance.io/run-id": run.run_id, "railiance.io/started-at": run.started_at,
                                     "railiance.io/finished-at": run.finished_at,
                                     "railiance.io/partial": str(run.partial).lower(), **changes}},
        "results": results,
        "summary": summary,
    }


def render(run: Run) -> str:
    # allow_unicode=False: bidi and invisible characters from a target are \u-escaped, never raw (data stays exact)
    # libyaml's emitter (CSafeDumper) when PyYAML has it: the same YAML ~20x faster than the pure-Python one
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(to_document(run), Dumper=dumper, sort_keys=False, allow_unicode=False, width=4096)


REPORTER = register(Reporter("policyreport", "policyreport.yaml", render))
