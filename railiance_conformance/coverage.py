"""What each task's "Done when" line promises, clause by clause, against what the run verified.

``policies/coverage.yaml`` (schema ``coverage.schema.json``) maps every clause of every task's
"Done when:" line (``workplan.done_when_clauses``) to the controls that verify it, or marks it not
verifiable read-only with the reason. In a run with ``--workplan``, :func:`coverage_table` gives per
task each clause's state, from the findings of its controls:

* ``verified``: every finding of its controls passes (or is waived);
* ``drifted`` / ``could not verify``: one of them drifts / none drifts but one is an error;
* ``pending``: its controls wait for a human (T09/T10); ``not checked``: no finding (deselected);
* ``not verifiable read-only``: the map says why; ``not mapped``: a clause the map does not know
  (a newer workplan), never counted as verified.

Example: ``coverage_table(workplan, load_coverage(Path("policies")), findings)[0].summary()``
-> ``"2 of 3 verified, 1 not verifiable read-only"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from railiance_conformance.finding import Finding, Status
from railiance_conformance.policy import PolicyError, load_document

VERIFIED, DRIFTED, UNVERIFIED = "verified", "drifted", "could not verify"
PENDING, NOT_CHECKED, NOT_VERIFIABLE, NOT_MAPPED = "pending", "not checked", "not verifiable read-only", "not mapped"
STATES = (DRIFTED, UNVERIFIED, NOT_MAPPED, NOT_CHECKED, PENDING, NOT_VERIFIABLE, VERIFIED)


@dataclass(frozen=True, slots=True)
class ClauseMapping:
    """One clause of the map: the controls that verify it, or why none can."""

    task: str                          # "T01"
    clause: str
    controls: tuple[str, ...] = ()
    not_verifiable: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class CoverageMap:
    workplan: str
    clauses: tuple[ClauseMapping, ...]
    source: str = "policies/coverage.yaml"

    def lookup(self, task: str, clause: str) -> ClauseMapping | None:
        key = _normal(clause)
        return next((c for c in self.clauses if c.task == task and _normal(c.clause) == key), None)


@dataclass(frozen=True, slots=True)
class ClauseCoverage:
    """One clause in a run: its state (``STATES``), the controls behind it, and why (reason or note)."""

    clause: str
    state: str
    controls: tuple[str, ...] = ()
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"clause": self.clause, "state": self.state, "controls": list(self.controls), "why": self.why}


@dataclass(frozen=True, slots=True)
class TaskCoverage:
    """A task's Done-when clauses in a run (``Run.coverage``)."""

    task: str                          # "RAIL-HO-WP-0004-T01"
    clauses: tuple[ClauseCoverage, ...]

    @property
    def verified(self) -> int:
        return sum(c.state == VERIFIED for c in self.clauses)

    @property
    def not_verifiable(self) -> int:
        return sum(c.state == NOT_VERIFIABLE for c in self.clauses)

    def summary(self) -> str:
        """``"2 of 3 verified, 1 not verifiable read-only"``."""
        text = f"{self.verified} of {len(self.clauses)} verified"
        return text + (f", {self.not_verifiable} not verifiable read-only" if self.not_verifiable else "")

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "verified": self.verified, "total": len(self.clauses),
                "not_verifiable": self.not_verifiable, "clauses": [c.to_dict() for c in self.clauses]}


def _normal(text: str) -> str:
    return " ".join(text.split()).rstrip(".").casefold()


def load_coverage(policy_dir: Path, known_controls: Iterable[str] | None = None) -> CoverageMap:
    """``policy_dir/coverage.yaml``, schema-checked; a control id the catalog does not know, or a clause
    mapped twice, is a PolicyError naming the file and field."""
    path = Path(policy_dir) / "coverage.yaml"
    doc = load_document(path, "coverage")
    known = set(known_controls) if known_controls is not None else None
    clauses = []
    for task, items in doc["tasks"].items():
        seen: set[str] = set()
        for index, item in enumerate(items):
            where = f"tasks.{task}[{index}]"
            if _normal(item["clause"]) in seen:
                raise PolicyError(str(path), f"{where}.clause", f"clause {item['clause']!r} is mapped twice")
            seen.add(_normal(item["clause"]))
            for control in item.get("controls", []):
                if known is not None and control not in known:
                    raise PolicyError(str(path), f"{where}.controls", f"unknown control id {control!r}")
            clauses.append(ClauseMapping(task, item["clause"], tuple(item.get("controls", [])),
                                         item.get("not_verifiable", ""), item.get("note", "")))
    return CoverageMap(doc["workplan"], tuple(clauses), str(path))


def _state(statuses: list[Status]) -> str:
    if not statuses:
        return NOT_CHECKED
    if Status.DRIFT in statuses:
        return DRIFTED
    if Status.ERROR in statuses:
        return UNVERIFIED
    if all(s is Status.PENDING for s in statuses):
        return PENDING
    return VERIFIED if all(s.holds or s is Status.PENDING for s in statuses) and \
        any(s.holds for s in statuses) else PENDING


def coverage_table(workplan: Any, mapping: CoverageMap, findings: Iterable[Finding]) -> tuple[TaskCoverage, ...]:
    """Per task of ``workplan`` (in its order), each Done-when clause's state in this run."""
    findings = list(findings)
    rows = []
    for short, task in workplan.tasks.items():
        clauses = []
        for clause in getattr(task, "done_when", ()):
            mapped = mapping.lookup(short, clause)
            if mapped is None:
                clauses.append(ClauseCoverage(clause, NOT_MAPPED, why=f"not in {mapping.source}"))
            elif mapped.not_verifiable:
                clauses.append(ClauseCoverage(clause, NOT_VERIFIABLE, why=mapped.not_verifiable))
            else:
                statuses = [f.status for f in findings if f.control_id in mapped.controls]
                clauses.append(ClauseCoverage(clause, _state(statuses), mapped.controls, mapped.note))
        rows.append(TaskCoverage(task.id, tuple(clauses)))
    return tuple(rows)


def by_task(coverage: Iterable[TaskCoverage] | None) -> Mapping[str, TaskCoverage]:
    """``{"RAIL-HO-WP-0004-T01": TaskCoverage, ...}`` for reporters joining claims and coverage."""
    return {row.task: row for row in coverage or ()}
