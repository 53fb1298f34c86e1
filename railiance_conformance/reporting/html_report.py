"""One self-contained HTML file (inline CSS, no scripts, nothing fetched at view time): ``report.html``.

Drift first, then could-not-verify, pending, waived and passes (``finding.LOUDEST_FIRST``), grouped by
layer and task; "Since the previous run" when the run carries a diff (``Run.diff``). Every value is HTML-escaped.
Example: ``'<tr class="drift"' in render(run)`` -> True when something drifted.
"""
from __future__ import annotations

import json
from html import escape as _html_escape
from itertools import groupby
from typing import TYPE_CHECKING, Any

from railiance_conformance.finding import LOUDEST_FIRST, Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register

if TYPE_CHECKING:
    from railiance_conformance.gate.cutover import GateVerdict
    from railiance_conformance.history import RunDiff

TITLES = {Status.DRIFT: "Drift", Status.ERROR: "Could not verify", Status.PENDING: "Pending",
          Status.WAIVED: "Waived", Status.PASS: "Passing"}
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1b1f24}
h1{font-size:1.5em}h2{margin-top:1.6em}h3{font-size:1em;color:#57606a}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,pre{font:12px ui-monospace,monospace;white-space:pre-wrap;margin:0}
.counts span{display:inline-block;margin-right:1em;padding:2px 8px;border-radius:4px}
tr.drift td:first-child,.counts .drift{background:#ffebe9;color:#a40e26;font-weight:bold}
tr.error td:first-child,.counts .error{background:#fbefff;color:#8250df;font-weight:bold}
tr.pending td:first-child,.counts .pending{background:#fff8c5}
tr.waived td:first-child,.counts .waived{background:#ddf4ff}
tr.pass td:first-child,.counts .pass{background:#dafbe1}
"""


def escape(text: str) -> str:
    """HTML-escaped and inert: control and bidi characters shown as escapes (``printable``)."""
    return _html_escape(printable(text))


def _value(value: Any) -> str:
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True, default=str)
    return f"<pre>{escape(text)}</pre>"


def _row(f: Finding) -> str:
    observed = escape(f.reason) if f.status is Status.ERROR else _value(f.observed) + (
        f"<br>{escape(f.reason)}" if f.reason else "")
    fix = escape(f.remediation) if f.status is Status.DRIFT else ""
    return (f'<tr class="{f.status.value}" data-key="{escape(f.key)}"><td>{f.status.value}</td>'
            f"<td><code>{escape(f.control_id)}</code><br>{escape(f.title)}</td><td>{escape(f.target)}</td>"
            f"<td>{_value(f.expected)}</td><td>{observed}</td><td>{fix}</td></tr>")


def _diff(diff: RunDiff) -> str:
    items = [("new drift", diff.new_drift), ("fixed", diff.fixed), ("persisting", diff.persisting),
             ("status changes", [f"{c.key}: {c.before} → {c.after}" for c in diff.status_changes])]
    rows = "".join(f"<tr><th>{name} ({len(keys)})</th><td>{escape(', '.join(keys)) or '–'}</td></tr>"
                   for name, keys in items)
    return (f'<h2 id="diff">Since the previous run</h2><p>from run {escape(diff.from_run)} '
            f'to run {escape(diff.to_run)}</p><table class="diff">{rows}</table>')


def _gate(gate: GateVerdict) -> str:
    """The verdict, every reason, and the restore-parity evidence: both sides' row count per table."""
    reasons = "".join(f"<li>{escape(r)}</li>" for r in gate.reasons) or "<li>every precondition holds</li>"
    html = (f'<h2 id="gate" class="{"pass" if gate.go else "drift"}">Cutover gate '
            f'{escape(gate.task)}: {escape(gate.verdict)}</h2><ul>{reasons}</ul>')
    tables = gate.parity_tables()
    if tables:
        html += ('<table class="gate-tables"><tr><th>table</th><th>source rows</th><th>restored rows</th></tr>'
                 + "".join(f"<tr><td><code>{escape(name)}</code></td><td>{escape(str(rows.source))}</td>"
                           f"<td>{escape(str(rows.restored))}</td></tr>" for name, rows in tables.items())
                 + "</table>")
    return html


def render(run: Run) -> str:
    counts = run.counts()
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             f"<title>Railiance conformance {escape(run.run_id)}</title><style>{CSS}</style></head><body>",
             f"<h1>Railiance conformance{' (partial run)' if run.partial else ''}</h1>",
             f"<p>run {escape(run.run_id)}, {escape(run.started_at)} – {escape(run.finished_at)} (UTC); "
             f"targets: {escape(', '.join(run.targets))}</p><p class=counts>",
             *(f'<span class="{s.value}">{counts[s.value]} {s.value}</span>' for s in Status), "</p>"]
    if run.gate is not None:
        parts.append(_gate(run.gate))
    if run.deadline:
        parts.append(f'<p class="drift">{escape(run.deadline)}</p>')
    if run.output_failures:
        items = "".join(f"<li>{escape(str(f))}</li>" for f in run.output_failures)
        parts.append(f'<h2 id="output-failures" class="drift">Not written (the run\'s own output failed)</h2>'
                     f'<ul>{items}</ul>')
    if run.diff is not None:
        parts.append(_diff(run.diff))
    for status in LOUDEST_FIRST:
        findings = sorted((f for f in run.findings if f.status is status),
                          key=lambda f: (f.layer, f.task, f.control_id, f.target))
        if not findings:
            continue
        parts.append(f'<h2 id="{status.value}">{TITLES[status]} ({len(findings)})</h2>')
        for (layer, task), group in groupby(findings, key=lambda f: (f.layer, f.task)):
            parts.append(f"<h3>{escape(layer)} · {escape(task)}</h3><table><tr><th>status</th><th>control</th>"
                         f"<th>target</th><th>expected</th><th>observed</th><th>fix</th></tr>")
            parts.extend(_row(f) for f in group)
            parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


REPORTER = register(Reporter("html", "report.html", render))
