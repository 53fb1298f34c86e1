"""GitHub-flavoured Markdown summary for a CI job summary or an issue comment: ``summary.md``.

The verdict first (a gate run: GO/NO-GO and its reasons before it), what is new and fixed since the
previous run (named), the workplan's claims per task; then drift grouped across targets
(``reporting.groups``: one row per control and difference, naming its targets and since when it
drifts), could-not-verify grouped by cause; pending and waived briefly. A drift shows only the fields
that differ, ``expected → observed`` (``reporting.diff``); long values are cut at a word or field
boundary with a marker naming findings.json.
Example: ``render(run).splitlines()[0]`` -> ``"## Railiance conformance: DRIFT — 2 drift, 1 could not verify"``.
"""
from __future__ import annotations

import json
import re
from itertools import groupby
from typing import TYPE_CHECKING, Any

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register
from railiance_conformance.reporting.diff import finding_diff, show
from railiance_conformance.reporting.groups import (
    DriftGroup,
    cause_groups,
    clip,
    drift_groups,
    drifting_since,
    natural_key,
)

if TYPE_CHECKING:
    from railiance_conformance.gate.cutover import GateVerdict
    from railiance_conformance.history import RunDiff

MAX_ROWS = 100      # table rows in all; GitHub caps issue comments at 65,536 characters
MAX_ITEMS = 30      # list items per bullet (pending, waived, diff)
MAX_CELL = 160      # characters per value
MAX_CHANGE = 240    # characters per changed field (expected → observed)
MAX_DIFF_CELL = 400  # characters of changed fields per drift; the rest is counted
MAX_TARGETS = 12     # targets named per group row; the rest counted
MAX_BYTES = 1_000_000  # GitHub's job summary limit is 1 MiB per step
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")


def cell(value: Any, limit: int = MAX_CELL) -> str:
    """One table cell: ``cell("a|b\\nc")`` -> ``"a\\|b<br>c"``; JSON for non-strings, ``–`` for None."""
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _SPECIAL.sub(r"\\\1", printable(text.replace("\r\n", "\n")))  # control characters as escapes
    return text.replace("\n", "<br>") or "–"


def code(text: str, *, in_table: bool = True) -> str:
    """An identifier as a code span, ``code("host.swap.file")`` -> ``"`host.swap.file`"``."""
    if not text or "`" in text or "\n" in text or printable(text) != text:
        return cell(text)
    return "`" + (text.replace("|", "\\|") if in_table else text) + "`"


def _span(text: str) -> str:
    return code(text, in_table=False)


def difference(f: Finding) -> str:
    """A drift's cell: only the differing fields, ``field: expected → observed`` one per line
    (``reporting.diff``), then how many fields were as expected and the reason."""
    diff = finding_diff(f)
    parts: list[str] = []
    budget = MAX_DIFF_CELL
    for line in diff.lines():
        shown = cell(line, min(MAX_CHANGE, max(budget, 40)))
        if budget <= 0:
            parts.append(f"_… {len(diff.changes) - len(parts)} more changed fields (see findings.json)_")
            break
        parts.append(shown)
        budget -= len(shown)
    if not diff.changes:
        parts.append("values as expected: " + cell(show(f.observed)))
    if diff.folded():
        parts.append(f"_{diff.folded()}_")
    if f.reason:
        parts.append(f"({cell(f.reason)})")
    return "<br>".join(parts)


def _clipped(value: Any, limit: int = MAX_CELL) -> str:
    """A cell cut at a word or field boundary with a marker (``groups.clip``), then escaped."""
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return cell(clip(text, limit), limit + 60)


def _group_difference(group: DriftGroup) -> str:
    parts: list[str] = []
    budget = MAX_DIFF_CELL
    for line in group.changes:
        if budget <= 0:
            parts.append(f"_… {len(group.changes) - len(parts)} more changed fields (see findings.json)_")
            break
        shown = _clipped(line, min(MAX_CHANGE, max(budget, 40)))
        parts.append(shown)
        budget -= len(shown)
    if not group.changes or group.changes[0].startswith("values: "):
        parts = ["values as expected: " + _clipped(show(group.first.observed))]
    folded = finding_diff(group.first).folded()
    if folded:
        parts.append(f"_{folded}_")
    if group.reason:
        parts.append(f"({_clipped(group.reason)})")
    return "<br>".join(parts)


def _targets_cell(targets: list[str]) -> str:
    return ", ".join(code(t) for t in targets[:MAX_TARGETS]) + \
        (f", … {len(targets) - MAX_TARGETS} more" if len(targets) > MAX_TARGETS else "")


def _share(groups_by_control: dict[str, list], budget: int) -> dict[str, int]:
    """Rows per control: one each first (every control is named), the rest shared round-robin."""
    share = {control: 0 for control in groups_by_control}
    while budget > 0:
        given = False
        for control, groups in groups_by_control.items():
            if budget > 0 and share[control] < len(groups):
                share[control] += 1
                budget -= 1
                given = True
        if not given:
            break
    return share


def _drift_section(findings: list[Finding], budget: int, run: Run) -> tuple[list[str], int]:
    """One row per drift group (``groups.drift_groups``): the control, the targets it drifted on, the
    differing fields, since when, the fix; rows shared across controls so none is left unnamed."""
    groups = drift_groups(findings)
    if not groups:
        return [], budget
    by_control: dict[str, list[DriftGroup]] = {}
    for group in groups:
        by_control.setdefault(group.control_id, []).append(group)
    share = _share(by_control, max(budget, len(by_control)))
    lines = [f"### Drift: {len(by_control)} controls, {len(findings)} findings", "",
             "| control | drifted on | expected → observed | drifting since | fix |",
             "| --- | --- | --- | --- | --- |"]
    used = 0
    for control, control_groups in by_control.items():
        for group in control_groups[:share[control]]:
            streaks = [drifting_since(run, f.key) for f in group.findings]
            first = min((s for s in streaks if s), key=lambda s: s.started_at, default=None)
            since = "–" if first is None else \
                f"{code(first.run_id)} {cell(first.started_at)} ({'≥' if first.at_least else ''}{first.runs} run{'s' if first.runs != 1 else ''})"
            lines.append(f"| {code(control)} · {cell(group.first.layer)} {cell(group.first.task.rsplit('-', 1)[-1])} "
                         f"| {len(group.findings)}: {_targets_cell(group.targets)} | {_group_difference(group)} "
                         f"| {since} | {_clipped(group.first.remediation)} |")
            used += 1
        rest = control_groups[share[control]:]
        if rest:
            lines.append(f"| {code(control)} | … {sum(len(g.findings) for g in rest)} more targets, drifted in "
                         f"{len(rest)} other ways (see findings.json) | | | |")
    return [*lines, ""], budget - used


def _cause_section(findings: list[Finding], budget: int) -> tuple[list[str], int]:
    """Could not verify, one row per cause group (``groups.cause_groups``): targets, controls, the cause;
    every group is named (past the row budget with shorter cells)."""
    groups = cause_groups(findings)
    if not groups:
        return [], budget
    lines = [f"### Could not verify: {len(groups)} causes, {len(findings)} findings", "",
             "| targets | controls | cause | fix |", "| --- | --- | --- | --- |"]
    for index, group in enumerate(groups):
        controls = list(group.controls)
        named = ", ".join(code(c) for c in controls[:MAX_TARGETS]) + \
            (f", … {len(controls) - MAX_TARGETS} more" if len(controls) > MAX_TARGETS else "")
        limit = MAX_CELL if index < budget else 80
        lines.append(f"| {len(group.targets)}: {_targets_cell(list(group.targets))} | {len(controls)}: {named} "
                     f"| {_clipped(group.reason, limit)} | {_clipped(group.findings[0].remediation, limit)} |")
    return [*lines, ""], budget - len(groups)


def _bullets(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_ITEMS])
    return shown + (f", … {len(items) - MAX_ITEMS} more" if len(items) > MAX_ITEMS else "")


def _brief(title: str, findings: list[Finding]) -> list[str]:
    """Pending/waived: one bullet per control and reason, naming its targets."""
    if not findings:
        return []
    lines = [f"### {title} ({len(findings)})", ""]
    ordered = sorted(findings, key=lambda f: (f.control_id, f.reason, natural_key(f.target)))
    groups = [(k, [f.target for f in g]) for k, g in groupby(ordered, key=lambda f: (f.control_id, f.reason))]
    for (control_id, reason), targets in groups[:MAX_ITEMS]:
        lines.append(f"- {_span(control_id)} on {_bullets([_span(t) for t in targets])}"
                     + (f": {cell(reason)}" if reason else ""))
    if len(groups) > MAX_ITEMS:
        lines.append(f"- … {len(groups) - MAX_ITEMS} more")
    return [*lines, ""]


def _diff(diff: RunDiff) -> list[str]:
    lines = ["### Since the previous run", ""]
    if diff.from_run:
        lines += [f"Compared with run {_span(diff.from_run)}.", ""]
    listed = {*diff.new_drift, *diff.fixed}
    for label, keys in (("New drift", diff.new_drift), ("Fixed", diff.fixed), ("Persisting drift", diff.persisting)):
        lines.append(f"- **{label}** ({len(keys)})" + (f": {_bullets([_span(k) for k in keys])}" if keys else ""))
    changes = [c for c in diff.status_changes if c.key not in listed]
    lines.append(f"- **Other status changes** ({len(changes)})" + (": " + _bullets(
        [f"{_span(c.key)} {cell(c.before)} → {cell(c.after)}" for c in changes]) if changes else ""))
    return [*lines, ""]


VERDICT_WORDS = {"conformant": "CONFORMANT", "drift": "DRIFT", "could not verify": "COULD NOT VERIFY"}


def _headline(run: Run) -> str:
    counts = run.counts()
    parts = [f"{counts['drift']} drift"] if counts["drift"] else []
    parts += [f"{counts['error']} could not verify"] if counts["error"] else []
    return f"## Railiance conformance: {VERDICT_WORDS[run.verdict()]}" + (" — " + ", ".join(parts) if parts else "")


def _new_since(diff: RunDiff) -> list[str]:
    """What drifted anew and what was fixed since the previous run, named (near the top)."""
    lines = []
    for label, keys in (("New drift", diff.new_drift), ("Fixed", diff.fixed)):
        lines.append(f"**{label} since the previous run** ({len(keys)})"
                     + (f": {_bullets([_span(k) for k in keys])}" if keys else ""))
    return ["  \n".join(lines), ""]


def _claims(run: Run) -> list[str]:
    """The workplan's claims per task against this run (``Run.claims``), loudest first, with its Done-when."""
    if not run.claims:
        return []
    covered = {row.task: row for row in run.coverage or ()}
    lines = ["### Workplan claims vs. reality", "", "| task | verdict | workplan says | Done when | drifted |",
             "| --- | --- | --- | --- | --- |"]
    for claim in run.claims:
        row = covered.get(claim.task)
        says = claim.workplan_status + (", needs_human" if claim.needs_human else "")
        drifted = _bullets([_span(k) for k in claim.drifted]) if claim.drifted else "–"
        lines.append(f"| {cell(claim.task.rsplit('-', 1)[-1])} {_clipped(claim.title, 60)} | **{cell(claim.verdict)}** "
                     f"| {cell(says)} | {cell(row.summary()) if row else '–'} | {drifted} |")
    return [*lines, ""]


def _gate(gate: GateVerdict) -> list[str]:
    lines = [f"## Cutover gate {_span(gate.task)}: **{gate.verdict}**", ""]
    lines += [f"- {cell(reason, 400)}" for reason in gate.reasons] or ["- every precondition holds"]
    return [*lines, ""]


def render(run: Run, *, max_rows: int = MAX_ROWS) -> str:
    """The summary: a gate run's GO/NO-GO and reasons first, then the run's verdict heading, what is new
    since the previous run, the claims, the grouped drift and could-not-verify, the rest. Every drifted
    control and every could-not-verify group is named whatever the size; ``max_rows`` bounds the rows
    spent on one control's repeats and the text stays under ``MAX_BYTES``."""
    counts = run.counts()
    by_status = {s: [f for f in run.findings if f.status is s] for s in Status}
    lines = _gate(run.gate) if run.gate is not None else []
    lines += [_headline(run), "",
              f"Run {_span(run.run_id)} · {cell(run.started_at)} → {cell(run.finished_at)} · "
              f"{len(run.targets)} targets · {len(run.findings)} findings", "",
              "| pass | drift | could not verify | waived | pending |", "| ---: | ---: | ---: | ---: | ---: |",
              "| " + " | ".join(str(counts[s]) for s in ("pass", "drift", "error", "waived", "pending")) + " |", ""]
    if run.diff is not None:
        lines += _new_since(run.diff)
    if run.partial:
        lines += ["> **Partial run:** interrupted before every control was evaluated."
                  + (f" {cell(run.deadline, 400)}" if run.deadline else ""), ""]
    if run.output_failures:
        lines += ["> **Not written (the run's own output failed):** "
                  + "; ".join(cell(str(f), 400) for f in run.output_failures), ""]
    lines += _claims(run)
    if run.gate is not None:
        lines += _gate_tables(run.gate) + [""]
    drift, budget = _drift_section(by_status[Status.DRIFT], max_rows, run)
    errors, _ = _cause_section(by_status[Status.ERROR], budget)
    lines += drift + errors + _brief("Pending", by_status[Status.PENDING]) + _brief("Waived", by_status[Status.WAIVED])
    if run.diff is not None:
        lines += _diff(run.diff)
    lines += _coverage(run)
    text = "\n".join(lines).rstrip("\n") + "\n"
    if len(text.encode("utf-8")) > MAX_BYTES:  # a last guard: 100 hosts stay far below it (tested)
        cut = text.encode("utf-8")[:MAX_BYTES - 200].decode("utf-8", "ignore")
        text = cut[:cut.rfind("\n")] + "\n\n_… cut here to stay under the job summary limit: the whole record " \
                                       "is in findings.json_\n"
    return text


def _coverage(run: Run) -> list[str]:
    """Per workplan task, how many Done-when clauses this run verified, and each one it did not (``Run.coverage``)."""
    if not run.coverage:
        return []
    lines = ["", "### Done when: clauses verified per task", "", "| task | verified | not verified (state) |",
             "| --- | --- | --- |"]
    for row in run.coverage:
        others = "; ".join(f"{cell(c.clause, 120)} ({c.state})" for c in row.clauses if c.state != "verified")
        lines.append(f"| {cell(row.task)} | {row.summary()} | {others or '–'} |")
    return lines


def _gate_tables(gate: GateVerdict) -> list[str]:
    """The restore-parity evidence of a gate run: both sides' row count per table."""
    tables = gate.parity_tables()
    if not tables:
        return []
    lines = ["", "| table | source rows | restored rows |", "| --- | ---: | ---: |"]
    for name, rows in list(tables.items())[:MAX_ROWS]:
        lines.append(f"| {code(name)} | {cell(rows.source)} | {cell(rows.restored)} |")
    return lines


REPORTER = register(Reporter("markdown", "summary.md", render))
