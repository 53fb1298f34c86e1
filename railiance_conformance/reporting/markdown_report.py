"""GitHub-flavoured Markdown summary for a CI job summary or an issue comment: ``summary.md``.

Drift first, then could-not-verify, one table per layer and task; a drift shows only the fields that
differ, ``expected → observed`` (``reporting.diff``); pending and waived briefly;
``Run.diff`` adds "Since the previous run", ``Run.history`` how long each drift has lasted.
Example: ``render(run).splitlines()[0]`` -> ``"## Railiance conformance: 2 drift, 1 could not verify"``.
"""
from __future__ import annotations

import json
import re
from itertools import groupby
from typing import TYPE_CHECKING, Any

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register
from railiance_conformance.reporting.diff import finding_diff, show

if TYPE_CHECKING:
    from railiance_conformance.gate.cutover import GateVerdict
    from railiance_conformance.history import RunDiff

MAX_ROWS = 100      # table rows in all; GitHub caps issue comments at 65,536 characters
MAX_ITEMS = 30      # list items per bullet (pending, waived, diff)
MAX_CELL = 160      # characters per value
MAX_CHANGE = 240    # characters per changed field (expected → observed)
MAX_DIFF_CELL = 400  # characters of changed fields per drift; the rest is counted
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


def _table(findings: list[Finding], detail: str, budget: int) -> list[str]:
    if detail == "observed":
        lines = ["| control | target | expected → observed | fix |", "| --- | --- | --- | --- |"]
        lines += [f"| {code(f.control_id)} | {code(f.target)} | {difference(f)} | {cell(f.remediation)} |"
                  for f in findings[:budget]]
        return lines
    lines = [f"| control | target | expected | {detail} | fix |", "| --- | --- | --- | --- | --- |"]
    for f in findings[:budget]:
        lines.append(f"| {code(f.control_id)} | {code(f.target)} | {cell(f.expected)} | {cell(f.reason)} "
                     f"| {cell(f.remediation)} |")
    return lines


def _section(title: str, detail: str, findings: list[Finding], budget: int) -> tuple[list[str], int]:
    if not findings:
        return [], budget
    lines = [f"### {title} ({len(findings)})", ""]
    ordered = sorted(findings, key=lambda f: (f.layer, f.task, f.control_id, f.target))
    for (layer, task), group in groupby(ordered, key=lambda f: (f.layer, f.task)):
        group = list(group)
        if budget <= 0:
            lines += [f"_… {len(group)} more in {cell(layer)} · {cell(task)} (see findings.json)_", ""]
            continue
        lines += [f"#### {cell(layer)} · {cell(task)}", "", *_table(group, detail, budget)]
        if len(group) > budget:
            lines.append(f"\n_… {len(group) - budget} more rows (see findings.json)_")
        lines.append("")
        budget -= len(group)
    return lines, budget


def _bullets(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_ITEMS])
    return shown + (f", … {len(items) - MAX_ITEMS} more" if len(items) > MAX_ITEMS else "")


def _brief(title: str, findings: list[Finding]) -> list[str]:
    """Pending/waived: one bullet per control and reason, naming its targets."""
    if not findings:
        return []
    lines = [f"### {title} ({len(findings)})", ""]
    ordered = sorted(findings, key=lambda f: (f.control_id, f.reason, f.target))
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


def _headline(counts: dict[str, int]) -> str:
    parts = [f"{counts['drift']} drift"] if counts["drift"] else []
    parts += [f"{counts['error']} could not verify"] if counts["error"] else []
    return "## Railiance conformance: " + (", ".join(parts) if parts else "no drift")


def render(run: Run, *, max_rows: int = MAX_ROWS) -> str:
    counts = run.counts()
    by_status = {s: [f for f in run.findings if f.status is s] for s in Status}
    lines = [_headline(counts), "",
             f"Run {_span(run.run_id)} · {cell(run.started_at)} → {cell(run.finished_at)} · "
             f"{len(run.targets)} targets · {len(run.findings)} findings", "",
             "| pass | drift | could not verify | waived | pending |", "| ---: | ---: | ---: | ---: | ---: |",
             "| " + " | ".join(str(counts[s]) for s in ("pass", "drift", "error", "waived", "pending")) + " |", ""]
    if run.partial:
        lines += ["> **Partial run:** interrupted before every control was evaluated."
                  + (f" {cell(run.deadline, 400)}" if run.deadline else ""), ""]
    if run.output_failures:
        lines += ["> **Not written (the run's own output failed):** "
                  + "; ".join(cell(str(f), 400) for f in run.output_failures), ""]
    if run.gate is not None:
        lines += [f"### Cutover gate {_span(run.gate.task)}: **{run.gate.verdict}**", ""]
        lines += [f"- {cell(reason, 400)}" for reason in run.gate.reasons] or ["- every precondition holds"]
        lines += _gate_tables(run.gate)
        lines.append("")
    drift, budget = _section("Drift", "observed", by_status[Status.DRIFT], max_rows)
    errors, _ = _section("Could not verify", "reason", by_status[Status.ERROR], budget)
    lines += drift + errors + _brief("Pending", by_status[Status.PENDING]) + _brief("Waived", by_status[Status.WAIVED])
    if run.diff is not None:
        lines += _diff(run.diff)
    lines += _streaks(run)
    lines += _coverage(run)
    return "\n".join(lines).rstrip("\n") + "\n"


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


def _streaks(run: Run) -> list[str]:
    """How long each drift has lasted (``Run.history``: first seen, consecutive runs in drift)."""
    drift = sorted(f.key for f in run.findings if f.status is Status.DRIFT)
    if run.history is None or not drift:
        return []
    lines = ["", "### How long it has drifted", "", "| finding | first seen | runs in drift in a row |",
             "| --- | --- | ---: |"]
    for key in drift[:MAX_ITEMS]:
        entry = run.history.get(key)
        lines.append(f"| {code(key)} | {cell(entry.first_seen_at if entry else None)} "
                     f"| {entry.consecutive_drift if entry else '–'} |")
    return lines


REPORTER = register(Reporter("markdown", "summary.md", render))
