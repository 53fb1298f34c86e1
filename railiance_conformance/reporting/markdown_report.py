"""GitHub-flavoured Markdown summary for a CI job summary or an issue comment: ``summary.md``.

Drift first, then could-not-verify, one table per layer and task; pending and waived briefly;
``run.meta["diff"]`` (``RunDiff.to_dict()``) adds "Since the previous run".
Example: ``render(run).splitlines()[0]`` -> ``"## Railiance conformance: 2 drift, 1 could not verify"``.
"""
from __future__ import annotations

import json
import re
from itertools import groupby
from typing import Any

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register

MAX_ROWS = 100      # table rows in all; GitHub caps issue comments at 65,536 characters
MAX_ITEMS = 30      # list items per bullet (pending, waived, diff)
MAX_CELL = 160      # characters per value
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


def _table(findings: list[Finding], detail: str, budget: int) -> list[str]:
    lines = [f"| control | target | expected | {detail} | fix |", "| --- | --- | --- | --- | --- |"]
    for f in findings[:budget]:
        shown = cell(f.reason) if f.status is Status.ERROR else (
            cell(f.observed) + (f" ({cell(f.reason)})" if f.reason else ""))
        lines.append(f"| {code(f.control_id)} | {code(f.target)} | {cell(f.expected)} | {shown} "
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


def _diff(diff: dict[str, Any]) -> list[str]:
    previous = diff.get("from_run")
    lines = ["### Since the previous run", ""]
    if previous:
        lines += [f"Compared with run {_span(str(previous))}.", ""]
    listed = set(diff.get("new_drift", ())) | set(diff.get("fixed", ()))
    for label, name in (("New drift", "new_drift"), ("Fixed", "fixed"), ("Persisting drift", "persisting")):
        keys = [str(k) for k in diff.get(name, ())]
        lines.append(f"- **{label}** ({len(keys)})" + (f": {_bullets([_span(k) for k in keys])}" if keys else ""))
    changes = [c for c in diff.get("status_changes", ()) if c.get("key") not in listed]
    lines.append(f"- **Other status changes** ({len(changes)})" + (": " + _bullets(
        [f"{_span(str(c.get('key')))} {cell(c.get('from'))} → {cell(c.get('to'))}" for c in changes])
        if changes else ""))
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
                  + (f" {cell(run.meta['deadline'], 400)}" if run.meta.get("deadline") else ""), ""]
    if run.meta.get("output_failures"):
        lines += ["> **Not written (the run's own output failed):** "
                  + "; ".join(cell(f, 400) for f in run.meta["output_failures"]), ""]
    gate = run.meta.get("gate")
    if isinstance(gate, dict):
        lines += [f"### Cutover gate {_span(gate['task'])}: **{gate['verdict']}**", ""]
        lines += [f"- {cell(reason, 400)}" for reason in gate.get("reasons", [])] or ["- every precondition holds"]
        lines += _gate_tables(gate)
        lines.append("")
    drift, budget = _section("Drift", "observed", by_status[Status.DRIFT], max_rows)
    errors, _ = _section("Could not verify", "reason", by_status[Status.ERROR], budget)
    lines += drift + errors + _brief("Pending", by_status[Status.PENDING]) + _brief("Waived", by_status[Status.WAIVED])
    diff = run.meta.get("diff")
    if isinstance(diff, dict):
        lines += _diff(diff)
    lines += _streaks(run)
    return "\n".join(lines).rstrip("\n") + "\n"


def _gate_tables(gate: dict[str, Any]) -> list[str]:
    """The restore-parity evidence of a gate run: both sides' row count per table."""
    tables = ((gate.get("evidence") or {}).get("gate.restore.parity") or {}).get("tables") or {}
    if not tables:
        return []
    lines = ["", "| table | source rows | restored rows |", "| --- | ---: | ---: |"]
    for name, counts in list(tables.items())[:MAX_ROWS]:
        lines.append(f"| {code(name)} | {cell(counts.get('source'))} | {cell(counts.get('restored'))} |")
    return lines


def _streaks(run: Run) -> list[str]:
    """How long each drift has lasted (``meta["history"]``: first seen, consecutive runs in drift)."""
    history = run.meta.get("history")
    drift = sorted(f.key for f in run.findings if f.status is Status.DRIFT)
    if not isinstance(history, dict) or not drift:
        return []
    lines = ["", "### How long it has drifted", "", "| finding | first seen | runs in drift in a row |",
             "| --- | --- | ---: |"]
    for key in drift[:MAX_ITEMS]:
        entry = history.get(key, {})
        lines.append(f"| {code(key)} | {cell(entry.get('first_seen_at'))} | {entry.get('consecutive_drift', '–')} |")
    return lines


REPORTER = register(Reporter("markdown", "summary.md", render))
