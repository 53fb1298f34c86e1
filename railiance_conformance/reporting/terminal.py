"""A short rich summary for the terminal: drift first, grouped by layer and task.

Errors that share one cause on one target (a host that is down) collapse into one row; the
workplan's claims (``Run.claims``) and what changed since the previous run (``Run.diff``) follow.
Example: ``render_summary(run, width=120, color=False)`` -> text with a table and totals.
"""
from __future__ import annotations

import io
import json
from itertools import groupby
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.table import Table

from railiance_conformance.finding import LOUDEST_FIRST, Finding, Status
from railiance_conformance.reporting import Run, printable

if TYPE_CHECKING:
    from railiance_conformance.claims import Claim

STYLE = {Status.DRIFT: "bold red", Status.ERROR: "bold magenta", Status.PENDING: "yellow",
         Status.WAIVED: "cyan", Status.PASS: "green"}


def inert(text: str) -> str:
    """Target text for a rich console: control characters as escapes, ``[markup]`` escaped."""
    return escape_markup(printable(str(text)))


def short(value, limit: int = 90) -> str:
    """A value cut to ``limit`` characters, inert (see ``inert``)."""
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return inert(text if len(text) <= limit else text[: limit - 1] + "…")


def _rows(problems: list[Finding]):
    """(status, where, expected, observed) rows, loudest status first (``LOUDEST_FIRST``);
    same-cause errors of one target collapse into one row."""
    for status in LOUDEST_FIRST:
        mine = [f for f in problems if f.status is status]
        if status is not Status.ERROR:
            for f in mine:
                yield f.status, inert(f"{f.layer} {f.task.rsplit('-', 1)[-1]} {f.control_id} @ {f.target}"), \
                    short(f.expected), short(f.observed) + (f" ({inert(f.reason)})" if f.reason else "")
            continue
        for (target, reason), group in groupby(sorted(mine, key=lambda f: (f.target, f.reason)),
                                               key=lambda f: (f.target, f.reason)):
            group = list(group)
            where = group[0].control_id if len(group) == 1 else f"{len(group)} controls"
            yield Status.ERROR, inert(f"{where} @ {target}"), "", f"could not verify: {inert(reason)}"


CLAIM_STYLE = {"claimed done, drifted": "bold red", "claimed done, could not verify": "bold magenta",
               "claimed done, no control checks it": "magenta", "passing, not marked done": "cyan",
               "pending": "yellow", "claimed done, verified": "green"}


def _claims_table(claims: tuple[Claim, ...]) -> Table:
    """The workplan's claims against the findings, loudest first."""
    table = Table(title="Workplan claims vs. reality", expand=True)
    table.add_column("task", overflow="fold", ratio=2)
    table.add_column("workplan says", overflow="fold", ratio=1)
    table.add_column("verdict", no_wrap=True)
    table.add_column("findings", overflow="fold", ratio=1)
    table.add_column("drifted", overflow="fold", ratio=2)
    for claim in claims:
        says = claim.workplan_status + (" (needs_human)" if claim.needs_human else "")
        counts = ", ".join(f"{n} {s}" for s, n in claim.counts.items()) or "–"
        style = CLAIM_STYLE.get(claim.verdict, "")
        table.add_row(inert(f"{claim.task.rsplit('-', 1)[-1]} {claim.title[:40]}"), inert(says),
                      f"[{style}]{inert(claim.verdict)}[/]", inert(counts),
                      inert(", ".join(claim.drifted[:6]) + (" …" if len(claim.drifted) > 6 else "")))
    return table


def render_summary(run: Run, *, width: int = 120, color: bool = False) -> str:
    console = Console(file=io.StringIO(), width=max(width, 100), force_terminal=color,
                      color_system="standard" if color else None, highlight=False)
    problems = sorted((f for f in run.findings if f.status is not Status.PASS),
                      key=lambda f: (LOUDEST_FIRST.index(f.status), f.layer, f.task, f.control_id, f.target))
    if problems:
        table = Table(title="What does not hold", expand=True, show_lines=True)
        table.add_column("status", no_wrap=True)
        table.add_column("control @ target", ratio=2, overflow="fold")
        table.add_column("expected", ratio=3, overflow="fold")
        table.add_column("observed", ratio=3, overflow="fold")
        for status, where, expected, observed in _rows(problems):
            table.add_row(f"[{STYLE[status]}]{status.value}[/]", where, expected, observed)
        console.print(table)
        fixes = {f.control_id: f.remediation for f in problems if f.status is Status.DRIFT}
        if fixes:
            console.print("[bold]How to fix the drift[/]")
            for control_id, remediation in fixes.items():
                console.print(f"  {inert(control_id)}: {inert(remediation)}")
    if run.claims:
        console.print(_claims_table(run.claims))
    counts = run.counts()
    parts = [f"[{STYLE[s]}]{counts[s.value]} {s.value}[/]" for s in Status]
    console.print(f"{len(run.findings)} findings on {len(run.targets)} targets: " + ", ".join(parts)
                  + (" [bold](partial run)[/]" if run.partial else ""))
    changes = run.changes()
    if changes is not None:
        console.print(f"since the previous run: {changes['new_drift']} new drift, {changes['fixed']} fixed, "
                      f"{changes['persisting']} persisting, {changes['status_changes']} status changes")
    return console.file.getvalue()
