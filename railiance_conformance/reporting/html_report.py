"""``report.html``: one self-contained page (inline CSS, SVG and one inline script; nothing fetched).

This module holds the page's skeleton and its head, verdict first (a gate run's GO/NO-GO above it),
the run's news, claims, diff, Done-when coverage and feature texts; the filters and matrix
(``html_matrix``), the trend (``html_trend``) and the findings (``html_findings``) are their own modules.
What the page shows, top to bottom: docs/results.md. Example: ``'<tr class="drift"' in render(run)``
-> True when something drifted.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from railiance_conformance.finding import Status
from railiance_conformance.reporting import Reporter, Run, register
from railiance_conformance.reporting.groups import natural_sorted, target_list
from railiance_conformance.reporting.html_assets import CSS, SCRIPT
from railiance_conformance.reporting.html_findings import findings_html
from railiance_conformance.reporting.html_matrix import filters, matrix
from railiance_conformance.reporting.html_parts import ElementIds, escape, forget
from railiance_conformance.reporting.html_trend import trend_html

if TYPE_CHECKING:
    from railiance_conformance.gate.cutover import GateVerdict
    from railiance_conformance.history import RunDiff


def _news(run: Run) -> str:
    """What drifted anew and what was fixed since the previous run, named, right under the verdict."""
    if run.diff is None:
        return "<p>No previous run in the history to compare with.</p>"
    items = []
    for label, keys in (("new drift", run.diff.new_drift), ("fixed", run.diff.fixed)):
        shown = ", ".join(f"<code>{escape(k)}</code>" for k in keys[:30]) + (f", … {len(keys) - 30} more" if len(keys) > 30 else "")
        items.append(f"<li><b>{label} since the previous run ({len(keys)})</b>{': ' + shown if keys else ''}</li>")
    return f'<ul class="news">{"".join(items)}</ul>'


def _claims(run: Run) -> str:
    """The workplan's claims per task (``Run.claims``), loudest first, with its Done-when summary."""
    covered = {row.task: row for row in run.coverage or ()}
    rows = []
    for claim in run.claims or ():
        row = covered.get(claim.task)
        says = claim.workplan_status + (", needs_human" if claim.needs_human else "")
        css = {"claimed done, drifted": "drift", "claimed done, could not verify": "error",
               "claimed done, verified": "pass", "pending": "pending"}.get(claim.verdict, "waived")
        rows.append(f'<tr class="{css}"><td>{escape(claim.verdict)}</td><td>{escape(claim.task.rsplit("-", 1)[-1])} '
                    f'{escape(claim.title)}</td><td>{escape(says)}</td><td>{escape(row.summary()) if row else "–"}</td>'
                    f'<td>{escape(", ".join(claim.drifted)) or "–"}</td></tr>')
    return ('<h2 id="claims">Workplan claims vs. reality</h2><table class="findings claims"><tr><th>verdict</th>'
            '<th>task</th><th>workplan says</th><th>Done when</th><th>drifted</th></tr>' + "".join(rows) + "</table>")


def _features(run: Run, ids: ElementIds) -> str:
    texts = run.features or {}
    items = []
    for control_id in sorted(ids.controls):
        text = texts.get(control_id)
        body = (f"{escape(text.scenario)}<br><q>{escape(text.sentence)}</q><br><code>{escape(text.source)}</code>"
                if text else "no feature text found for this control")
        items.append(f'<dt id="{ids.feature(control_id)}"><code>{escape(control_id)}</code></dt><dd>{body}</dd>')
    return (f'<h2 id="features" class="part">What each control states (the features)</h2>'
            f'<dl class="features">{"".join(items)}</dl>')


def _diff(diff: RunDiff) -> str:
    items = [("new drift", diff.new_drift), ("fixed", diff.fixed), ("persisting", diff.persisting),
             ("status changes", [f"{c.key}: {c.before} → {c.after}" for c in diff.status_changes])]
    rows = "".join(f"<tr><th>{name} ({len(keys)})</th><td>{escape(', '.join(keys)) or '–'}</td></tr>"
                   for name, keys in items)
    return (f'<h2 id="diff">Since the previous run</h2><p>from run {escape(diff.from_run)} '
            f'to run {escape(diff.to_run)}</p><table class="diff">{rows}</table>')


def _coverage(run: Run) -> str:
    """Per workplan task, how many Done-when clauses this run verified; each clause with its state and why."""
    rows = []
    for row in run.coverage or ():
        items = "".join(f'<li class="{"pass" if c.state == "verified" else ""}">{escape(c.clause)}: '
                        f'<b>{escape(c.state)}</b>{" (" + escape(", ".join(c.controls)) + ")" if c.controls else ""}'
                        f'{" — " + escape(c.why) if c.why else ""}</li>' for c in row.clauses)
        rows.append(f"<tr><th>{escape(row.task)}</th><td>{escape(row.summary())}</td><td><ul>{items}</ul></td></tr>")
    return (f'<h2 id="done-when">Done when: clauses verified per task</h2><table class="coverage">'
            f'<tr><th>task</th><th>verified</th><th>clauses</th></tr>{"".join(rows)}</table>')


def _gate(gate: GateVerdict) -> str:
    """The verdict, every reason, and the restore-parity evidence: both sides' row count per table."""
    reasons = "".join(f"<li>{escape(r)}</li>" for r in gate.reasons) or "<li>every precondition holds</li>"
    html = (f'<h1 id="gate" class="{"pass" if gate.go else "drift"}">Cutover gate '
            f'{escape(gate.task)}: {escape(gate.verdict)}</h1><ul>{reasons}</ul>')
    tables = gate.parity_tables()
    if tables:
        html += ('<table class="gate-tables"><tr><th>table</th><th>source rows</th><th>restored rows</th></tr>'
                 + "".join(f"<tr><td><code>{escape(name)}</code></td><td>{escape(str(rows.source))}</td>"
                           f"<td>{escape(str(rows.restored))}</td></tr>" for name, rows in tables.items())
                 + "</table>")
    return html


def render(run: Run) -> str:
    """report.html of ``run``: the page, verdict first."""
    try:
        return _page(run)
    finally:
        forget()  # escape()'s and value_html()'s answers live for one page


def _page(run: Run) -> str:
    counts = run.counts()
    ids = ElementIds(run)
    features = bool(run.findings)
    verdict = run.verdict()
    problems = [f"{counts['drift']} drift"] * bool(counts["drift"]) + [f"{counts['error']} could not verify"] * bool(counts["error"])
    targets = natural_sorted(run.targets)
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>"
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Railiance conformance: {escape(verdict)} · {escape(run.run_id)}</title><style>{CSS}</style></head><body>"]
    if run.gate is not None:
        parts.append(_gate(run.gate))
    parts += [f'<h1 id="verdict" class="verdict-{verdict.replace(" ", "-")}">Railiance conformance: {escape(verdict.upper())}'
              f"{' — ' + escape(', '.join(problems)) if problems else ''}{' (partial run)' if run.partial else ''}</h1>",
              f"<p>run {escape(run.run_id)}, {escape(run.started_at)} – {escape(run.finished_at)} (UTC); "
              f"{len(targets)} targets: {escape(target_list(targets, 12))}</p><p class=counts>",
              *(f'<span class="{s.value}">{counts[s.value]} {s.value}</span>' for s in Status), "</p>", _news(run)]
    if run.claims:
        parts.append(_claims(run))
    if run.deadline:
        parts.append(f'<p class="drift">{escape(run.deadline)}</p>')
    if run.output_failures:
        items = "".join(f"<li>{escape(str(f))}</li>" for f in run.output_failures)
        parts.append(f'<h2 id="output-failures" class="drift">Not written (the run\'s own output failed)</h2>'
                     f'<ul>{items}</ul>')
    if run.findings:
        parts += [filters(run), matrix(run, ids, features)]
    if run.diff is not None:
        parts.append(_diff(run.diff))
    if run.coverage:
        parts.append(_coverage(run))
    parts.append(trend_html(run, ids))
    parts.append(findings_html(run, ids, features))
    if run.findings:
        parts += [_features(run, ids), f"<script>{SCRIPT}</script>"]
    parts.append("</body></html>\n")
    return "".join(parts)


REPORTER = register(Reporter("html", "report.html", render))
