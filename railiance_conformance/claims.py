"""Workplan claims against reality: per task, what the workplan says and what the suite found.

Verdicts, loudest first: ``claimed done, drifted`` (the workplan says done, a control drifts),
``claimed done, could not verify``, ``claimed done, no control checks it``, ``passing, not marked
done`` (info), ``pending`` (todo or needs_human), ``claimed done, verified``. A task claimed done
takes the verdict of its loudest finding (``finding.LOUDEST_FIRST``): drift, then could not verify.
Example: ``claims_table(parse_workplan(path), findings)[0].verdict`` -> ``"claimed done, drifted"``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from railiance_conformance.finding import LOUDEST_FIRST, Finding, Status
from railiance_conformance.workplan import Workplan

DRIFTED, UNVERIFIED, UNCHECKED = "claimed done, drifted", "claimed done, could not verify", \
    "claimed done, no control checks it"
PASSING_NOT_DONE, PENDING, VERIFIED = "passing, not marked done", "pending", "claimed done, verified"
LOUDNESS = (DRIFTED, UNVERIFIED, UNCHECKED, PASSING_NOT_DONE, PENDING, VERIFIED)


@dataclass(frozen=True)
class Claim:
    """One workplan task's claim against the findings (``Run.claims``): its verdict, the findings'
    count per status (loudest first, statuses with none left out) and the keys that drift."""

    task: str
    title: str
    workplan_status: str
    needs_human: bool
    verdict: str
    counts: dict[str, int] = field(default_factory=dict)
    drifted: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self) | {"drifted": list(self.drifted)}


def _verdict(done: bool, waiting: bool, statuses: list[Status]) -> str:
    if waiting and not done:
        return PENDING
    checked = [s for s in statuses if s is not Status.PENDING]
    if done:
        loudest = max(checked, key=lambda s: s.loudness, default=None)
        return {None: UNCHECKED, Status.DRIFT: DRIFTED, Status.ERROR: UNVERIFIED}.get(loudest, VERIFIED)
    if checked and all(s.holds for s in checked):
        return PASSING_NOT_DONE
    return PENDING


def _clause_statuses(coverage, task_id: str) -> list[Status]:
    """The task's Done-when clauses that drifted or could not be verified, as statuses: a clause is
    verified by controls of other tasks too (T06's "Gitea operational" by T04's controls)."""
    from railiance_conformance.coverage import DRIFTED as CLAUSE_DRIFTED
    from railiance_conformance.coverage import UNVERIFIED as CLAUSE_UNVERIFIED

    states = {CLAUSE_DRIFTED: Status.DRIFT, CLAUSE_UNVERIFIED: Status.ERROR}
    row = next((r for r in coverage or () if r.task == task_id), None)
    return [states[c.state] for c in (row.clauses if row is not None else ()) if c.state in states]


def claims_table(workplan: Workplan, findings: list[Finding] | tuple[Finding, ...], coverage=None) -> list[Claim]:
    """One row per workplan task, loudest verdict first, then task order. With ``coverage``
    (``coverage.coverage_table``), a task whose Done-when clause drifted (or could not be verified)
    takes that verdict even when the drift is another task's control: a task is never "claimed done,
    verified" while its own Done-when line says it drifted."""
    rows = []
    for task in workplan.tasks.values():
        mine = [f for f in findings if f.task == task.id]
        statuses = [f.status for f in mine]
        counts = {s.value: statuses.count(s) for s in LOUDEST_FIRST if statuses.count(s)}
        verdict = _verdict(task.status == "done", task.needs_human or task.status != "done",
                           statuses + _clause_statuses(coverage, task.id))
        rows.append(Claim(task.id, task.title, task.status, task.needs_human, verdict, counts,
                          tuple(sorted(f.key for f in mine if f.status is Status.DRIFT))))
    return sorted(rows, key=lambda c: (LOUDNESS.index(c.verdict), c.task))
