"""The record of one run that every reporter and the history read: ``Run`` and the records of its
parts (the diff against the previous run, each finding's history, the trend, the feature texts).

It imports none of the modules that make the parts (history, claims, coverage, the gate), so they
and the reporters can all import it. Example: ``Run("ab12", "2026-11-27T03:27:00Z",
"2026-11-27T03:27:05Z", findings, ("ampere",)).verdict()`` -> ``"drift"``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from railiance_conformance.finding import Finding, Status

if TYPE_CHECKING:  # annotations only: the modules that make these parts import nothing of this one
    from railiance_conformance.claims import Claim
    from railiance_conformance.coverage import TaskCoverage
    from railiance_conformance.gate.cutover import GateVerdict

CONFORMANT, DRIFT, UNVERIFIED = "conformant", "drift", "could not verify"


def verdict_of(counts: dict[str, int], partial: bool = False) -> str:
    """The run's verdict from its counts per status: ``drift`` when anything drifted, else ``could not
    verify`` when anything could not be verified (or the run was cut short), else ``conformant``."""
    if counts.get("drift"):
        return DRIFT
    if counts.get("error") or partial:
        return UNVERIFIED
    return CONFORMANT


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One recorded run, without its findings."""

    run_id: str
    started_at: str
    finished_at: str
    partial: bool
    targets: tuple[str, ...]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class StatusChange:
    key: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class RunDiff:
    """What changed from run ``from_run`` to run ``to_run``; keys are ``control_id@target``.

    ``status_changes`` lists every key present in both runs whose status differs (new drift and
    fixed included); ``new_drift`` includes keys the earlier run did not have.
    """

    from_run: str
    to_run: str
    new_drift: tuple[str, ...]
    fixed: tuple[str, ...]
    persisting: tuple[str, ...]
    status_changes: tuple[StatusChange, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data as the reports show ``Run.diff``: ``{"from_run": ..., "new_drift": [...], ...}``."""
        return {"from_run": self.from_run, "to_run": self.to_run, "new_drift": list(self.new_drift),
                "fixed": list(self.fixed), "persisting": list(self.persisting),
                "status_changes": [{"key": c.key, "from": c.before, "to": c.after} for c in self.status_changes]}


@dataclass(frozen=True, slots=True)
class FindingHistory:
    """One key over the recorded runs: first and last run that had it, and its drift streak."""

    key: str
    first_seen: str            # run_id
    first_seen_at: str         # that run's started_at
    last_seen: str
    last_seen_at: str
    last_status: str
    consecutive_drift: int     # runs in drift, counted back from the latest recorded run
    runs_seen: int

    def to_dict(self) -> dict[str, Any]:
        """What the reports show of it (``Run.history``): ``{"first_seen_run": "ab12", "first_seen_at":
        "2026-11-27T03:27:00Z", "last_seen_at": ..., "consecutive_drift": 2}``."""
        return {"first_seen_run": self.first_seen, "first_seen_at": self.first_seen_at,
                "last_seen_at": self.last_seen_at, "consecutive_drift": self.consecutive_drift}


@dataclass(frozen=True, slots=True)
class Trend:
    """The last recorded runs, oldest first, and each finding key's status in each of them
    (``None``: the key was not in that run). What the HTML report draws: the counts per run and a
    strip of statuses per key. Example: ``History(path).trend(30).statuses["host.swap.file@a"]``
    -> ``("pass", "drift", "drift")``."""

    runs: tuple[RunInfo, ...]
    statuses: Mapping[str, tuple[str | None, ...]]

    def to_dict(self) -> dict[str, Any]:
        """``{"runs": [{"run_id": ..., "counts": {...}}, ...], "statuses": {"host.swap.file@a": ["pass", null]}}``."""
        return {"runs": [{"run_id": r.run_id, "started_at": r.started_at, "finished_at": r.finished_at,
                          "partial": r.partial, "counts": dict(r.counts)} for r in self.runs],
                "statuses": {key: list(found) for key, found in self.statuses.items()}}


@dataclass(frozen=True, slots=True)
class OutputFailure:
    """A report or the history that could not be written, and why:
    ``OutputFailure("reports/findings.json", "No space left on device (ENOSPC)")``."""

    path: str
    cause: str

    def __str__(self) -> str:
        return f"{self.path}: {self.cause}"


@dataclass(frozen=True, slots=True)
class FeatureText:
    """Where a control's desired state is stated: its scenario, its Then sentence and ``file:line``.
    ``FeatureText("host.swap.file — ...", "/swapfile is a regular file of 4 GiB, ...",
    "features/S1/T01-swapfile.feature:14")``."""

    scenario: str
    sentence: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"scenario": self.scenario, "sentence": self.sentence, "source": self.source}


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the suite: when, against what, every Finding in order, and what else the
    reports show. Every reporter reads only this record. Each optional part is None when it does
    not apply to the run (no workplan given, not a gate run, no history) and is made by its own
    module: ``claims`` by ``claims.claims_table``, ``gate`` by ``gate.cutover.GateResult.verdict``,
    ``diff``, ``history`` and ``trend`` by ``history.History`` and ``features`` by
    ``reporting.features.feature_texts`` (both added in ``reporting.output.publish``).
    Example: ``Run("ab12", "2026-11-27T03:27:00Z", "2026-11-27T03:27:05Z", findings, ("ampere",))``.
    """

    run_id: str
    started_at: str                    # ISO 8601, UTC
    finished_at: str
    findings: tuple[Finding, ...]
    targets: tuple[str, ...] = ()
    partial: bool = False              # interrupted before every control was evaluated
    workplan: str | None = None        # the workplan id, "RAIL-HO-WP-0004"
    # host name -> how it was reached (targets.HostTarget.connection_evidence; never a secret)
    connections: Mapping[str, Mapping[str, Any]] | None = None
    deadline: str | None = None        # why a partial run stopped, "run deadline of 300 s exceeded: ..."
    claims: tuple[Claim, ...] | None = None       # the workplan's claims, loudest first (--workplan)
    gate: GateVerdict | None = None               # a cutover gate run's verdict
    diff: RunDiff | None = None                   # against the previous run in the history
    history: Mapping[str, FindingHistory] | None = None   # finding key -> its past, from the history
    output_failures: tuple[OutputFailure, ...] = ()          # what of this run's own output failed
    trend: Trend | None = None                    # the last recorded runs, this one included (history.Trend)
    features: Mapping[str, FeatureText] | None = None        # control id -> the feature sentence stating it
    # per workplan task, each Done-when clause's state in this run (coverage.coverage_table; --workplan)
    coverage: tuple[TaskCoverage, ...] | None = None

    def counts(self) -> dict[str, int]:
        """Findings per status, every status (zero included), in ``Status`` order."""
        counter = Counter(f.status for f in self.findings)
        return {status.value: counter.get(status, 0) for status in Status}

    def verdict(self) -> str:
        """``conformant``, ``drift`` or ``could not verify`` (``verdict_of``)."""
        return verdict_of(self.counts(), self.partial)

    def changes(self) -> dict[str, int] | None:
        """How many findings changed since the previous run, or None without a diff:
        ``{"new_drift": 1, "fixed": 0, "persisting": 2, "status_changes": 1}``."""
        if self.diff is None:
            return None
        return {name: len(getattr(self.diff, name)) for name in ("new_drift", "fixed", "persisting", "status_changes")}

    def one_per_key(self) -> list[Finding]:
        """One finding per ``control_id@target``, the loudest (``Status.loudness``) when a control
        was recorded twice on one target, in key order."""
        chosen: dict[str, Finding] = {}
        for finding in self.findings:
            if finding.key not in chosen or finding.status.loudness > chosen[finding.key].status.loudness:
                chosen[finding.key] = finding
        return [chosen[key] for key in sorted(chosen)]

    def details(self) -> dict[str, Any]:
        """The optional parts as plain JSON data, in a fixed order, parts that do not apply left
        out: ``{"workplan": "RAIL-HO-WP-0004", "connections": {...}, "diff": {...}}``. The JSON
        report's ``run`` object (findings.schema.json) and the history's ``runs.meta`` column."""
        parts: dict[str, Any] = {}
        if self.workplan is not None:
            parts["workplan"] = self.workplan
        if self.connections is not None:
            parts["connections"] = {name: dict(how) for name, how in self.connections.items()}
        if self.deadline is not None:
            parts["deadline"] = self.deadline
        if self.claims is not None:
            parts["claims"] = [claim.to_dict() for claim in self.claims]
        if self.gate is not None:
            parts["gate"] = self.gate.to_dict()
        if self.diff is not None:
            parts["diff"] = self.diff.to_dict()
        if self.history is not None:
            parts["history"] = {key: seen.to_dict() for key, seen in self.history.items()}
        if self.output_failures:
            parts["output_failures"] = [str(failure) for failure in self.output_failures]
        if self.trend is not None:
            parts["trend"] = self.trend.to_dict()
        if self.features is not None:
            parts["features"] = {control_id: text.to_dict() for control_id, text in self.features.items()}
        if self.coverage is not None:
            parts["coverage"] = [row.to_dict() for row in self.coverage]
        return parts
