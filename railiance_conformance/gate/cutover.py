"""The cutover gate: GO or NO-GO for one workplan task, evaluated now, with every reason.

It runs the suite (``pytest features/``), then judges: the task's prerequisite tasks verify,
no control of the task's layer is in error, the newest CloudNativePG Backup is recent, a restored
copy matches its source (two PostgreSQL connections: tables, exact counts, sequences) and the
restore drill behind it is fresh. Any NO-GO reason blocks.
Example: ``decide(GateInputs(...))`` -> ``GateResult(go=False, reasons=[...], findings=[...])``;
``result.verdict(task.id, "S5")`` -> the ``GateVerdict`` every report shows (``Run.gate``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from railiance_conformance.finding import Finding, Outcome, Status
from railiance_conformance.policy import Catalog
from railiance_conformance.recorder import FindingRecorder
from railiance_conformance.workplan import Task, Workplan


def findings_from_report(path: Path) -> list[Finding]:
    """Findings back from a ``findings.json`` (the suite run the gate judges)."""
    document = json.loads(path.read_text())
    out = []
    for item in document["findings"]:
        item = dict(item, status=Status(item["status"]), evidence=tuple(item["evidence"].items()))
        out.append(Finding(**item))
    return out


@dataclass
class GateInputs:
    task: Task
    workplan: Workplan
    suite_findings: list[Finding]
    layer: str                                        # the gated task's layer (from its controls)
    backup: Callable[[], Outcome] | None = None       # None: not configured for this task
    parity: Callable[[], Outcome] | None = None
    drill: Callable[[], Outcome] | None = None


class TableRows(NamedTuple):
    """Both sides' exact row count of one table in the restore-parity check (None: absent or unreadable)."""

    source: int | None
    restored: int | None


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What a gate run concluded, as every report shows it (``Run.gate``).

    ``evidence`` maps each gate control id to its finding's evidence (``gate.restore.parity``:
    ``{"schemas": [...], "sequences_checked": 4, "tables": {"public.customers": {"source": 120,
    "restored": 120}}}``, see ``parity_outcome``); controls without evidence are left out.
    Example: ``GateVerdict("RAIL-HO-WP-0004-T09", go=False, reasons=("gate.backup.recent: drift: ...",))``.
    """

    task: str                                  # the gated workplan task id
    go: bool
    reasons: tuple[str, ...] = ()              # every NO-GO reason, "<control id>: <status>: <detail>"
    layer: str = ""                            # the gated task's layer
    evidence: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cluster_uid: str | None = None             # the gated cluster's kube-system namespace uid (None: none read)

    @property
    def verdict(self) -> str:
        """``"GO"`` or ``"NO-GO"``."""
        return "GO" if self.go else "NO-GO"

    def parity_tables(self) -> dict[str, TableRows]:
        """``{"public.customers": TableRows(120, 120)}`` from the restore-parity evidence; {} without it."""
        tables = (self.evidence.get("gate.restore.parity") or {}).get("tables") or {}
        return {name: TableRows(rows.get("source"), rows.get("restored")) for name, rows in tables.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's ``run.gate``: ``{"task", "verdict", "reasons", "layer", "evidence"}`` and, when a
        cluster was targeted and its identity read, ``"cluster_uid"``."""
        return {"task": self.task, "verdict": self.verdict, "reasons": list(self.reasons), "layer": self.layer,
                "evidence": {control_id: dict(evidence) for control_id, evidence in self.evidence.items()},
                **({"cluster_uid": self.cluster_uid} if self.cluster_uid else {})}


@dataclass
class GateResult:
    go: bool
    reasons: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def verdict(self, task_id: str, layer: str, cluster_uid: str | None = None) -> GateVerdict:
        """The record the reports show: this result's verdict, reasons and its findings' evidence."""
        return GateVerdict(task_id, self.go, tuple(self.reasons), layer,
                           {f.control_id: dict(f.evidence) for f in self.findings if f.evidence}, cluster_uid)


def _preconditions(inputs: GateInputs) -> Outcome:
    expected = {short: "every control passes" for short in inputs.task.prerequisites}
    observed: dict[str, Any] = {}
    for short in inputs.task.prerequisites:
        task_id = f"{inputs.workplan.id}-{short}"
        mine = [f for f in inputs.suite_findings if f.task == task_id]
        bad = [f"{f.key}: {f.status.value}" for f in mine if not f.status.holds]
        if not mine:
            observed[short] = "no control verifies this task"
        elif bad:
            observed[short] = bad
        else:
            observed[short] = "every control passes"
    if not inputs.task.prerequisites:
        return Outcome(Status.PASS, expected, observed, reason="the workplan names no prerequisite")
    return Outcome.compare(expected, observed)


def _layer_errors(inputs: GateInputs) -> Outcome:
    errors = sorted(f"{f.key}: {f.reason}" for f in inputs.suite_findings
                    if f.layer == inputs.layer and f.status is Status.ERROR)
    return Outcome.compare([], errors, evidence={"layer": inputs.layer})


def decide(inputs: GateInputs, catalog: Catalog) -> GateResult:
    recorder = FindingRecorder(catalog)
    checks: list[tuple[str, Callable[[], Outcome]]] = [
        ("gate.preconditions", lambda: _preconditions(inputs)),
        ("gate.layer_errors", lambda: _layer_errors(inputs)),
        ("gate.backup.recent", inputs.backup or (lambda: Outcome.error("no backup check configured for "
                                                                       f"{inputs.task.short} (policies/gate.yaml)"))),
        ("gate.restore.parity", inputs.parity or (lambda: Outcome(
            Status.PASS, reason=f"no restore drill configured for {inputs.task.short} (policies/gate.yaml)"))),
        ("gate.restore.fresh", inputs.drill or (lambda: Outcome(
            Status.PASS, reason=f"no restore drill configured for {inputs.task.short} (policies/gate.yaml)"))),
    ]
    result = GateResult(go=True)
    for control_id, check in checks:
        finding = recorder.evaluate(control_id, inputs.task.id, check)
        finding = Finding(**{**{k: getattr(finding, k) for k in finding.__dataclass_fields__},
                             "task": inputs.task.id})
        result.findings.append(finding)
        if not finding.status.holds:
            result.go = False
            detail = finding.reason or f"expected {finding.expected!r}, observed {finding.observed!r}"
            result.reasons.append(f"{control_id}: {finding.status.value}: {detail}")
    return result


def parity_outcome(source_dsn: str, restored_dsn: str, **options) -> Outcome:
    """Restore parity as an Outcome: PASS with every table's two counts, DRIFT listing every mismatch,
    sequence behind its column and the source's write activity, or ERROR (a side or a table unreadable).

    The evidence, in every status: ``schemas`` compared, ``tables`` ``{name: {"source": n, "restored": m}}``
    (None where absent or unreadable), ``sequences_checked``, ``sequences`` ``{name: {"source": next value,
    "restored": next value}}``, and ``checksums`` when asked for.
    """
    from railiance_conformance.gate.parity import compare

    expected = "same tables, same row counts, every sequence ahead of its columns and not behind the source's"
    result = compare(source_dsn, restored_dsn, **options)
    if result.error:
        return Outcome.error(result.error, expected=expected)
    evidence: dict[str, Any] = {
        "source": result.evidence.get("source", {}).get("database"),
        "restored": result.evidence.get("restored", {}).get("database"),
        "schemas": result.schemas, "sequences_checked": result.sequences_checked,
        "tables": {name: {"source": a, "restored": b} for name, (a, b) in result.tables.items()}}
    if result.sequence_values:
        evidence["sequences"] = {name: {"source": a, "restored": b} for name, (a, b) in result.sequence_values.items()}
    if result.checksums:
        evidence["checksums"] = {name: {"source": a, "restored": b} for name, (a, b) in result.checksums.items()}
    problems = [*result.mismatches, *result.sequences, *result.source_writes]
    if problems:
        return Outcome(Status.DRIFT, expected, [*problems, *result.unreadable], "; ".join([*problems, *result.unreadable]),
                       tuple(evidence.items()))
    if result.unreadable:
        return Outcome(Status.ERROR, expected, None, "; ".join(result.unreadable), tuple(evidence.items()))
    observed = {name: f"{a} = {b}" for name, (a, b) in result.tables.items()}
    return Outcome(Status.PASS, expected, observed, evidence=tuple(evidence.items()))
