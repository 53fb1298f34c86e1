"""report.html's findings, drift first (``finding.LOUDEST_FIRST``): drift and could-not-verify one row per
group of identical findings across targets (``reporting.groups``), pending and waived one row per control
and reason, passing ones by layer and task; each finding keeps the anchor its matrix cell links to."""
from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

from railiance_conformance.finding import LOUDEST_FIRST, Finding, Status
from railiance_conformance.reporting import Run
from railiance_conformance.reporting.groups import (
    CauseGroup,
    DriftGroup,
    cause_groups,
    drift_groups,
    drifting_since,
    natural_key,
    natural_sorted,
    target_list,
)
from railiance_conformance.reporting.html_assets import TITLES
from railiance_conformance.reporting.html_parts import ElementIds, data_attributes, difference, escape, value_html


def _row(f: Finding, ids: ElementIds, first: bool, features: bool) -> str:
    if f.status is Status.DRIFT:
        detail = difference(f) + (f"<div>{escape(f.reason)}</div>" if f.reason else "")
    elif f.status is Status.ERROR:
        detail = escape(f.reason)
    elif f.status is Status.PASS:
        detail = value_html(f.observed)
    else:
        detail = escape(f.reason) + (f"<details class=folded><summary>values</summary>expected {value_html(f.expected)}"
                                     f"observed {value_html(f.observed)}</details>" if f.observed is not None else "")
    fix = escape(f.remediation) if f.status in (Status.DRIFT, Status.ERROR) else ""
    anchor = f' id="{ids.finding(f.key)}"' if first else ""
    control = f"<code>{escape(f.control_id)}</code>"
    if features:
        control = f'<a href="#{ids.feature(f.control_id)}">{control}</a>'
    return (f'<tr class="{f.status.value} finding"{anchor} {data_attributes(f)} data-key="{escape(f.key)}">'
            f'<td data-label="status">{f.status.value}</td>'
            f'<td data-label="control">{control}<br>{escape(f.title)}</td>'
            f'<td data-label="target">{escape(f.target)}</td>'
            f'<td data-label="{"expected → observed" if f.status is Status.DRIFT else "detail"}">{detail}</td>'
            f'<td data-label="fix">{fix}</td></tr>')


def _list_data(name: str, values: Iterable[str]) -> str:
    """A filterable attribute holding several values (``data-targets``), newline-separated (the script splits it)."""
    return f'data-{name}s="{escape(chr(10).join(values))}"'


def _anchors(findings: Iterable[Finding], ids: ElementIds, anchored: set[str],
             chosen: dict[str, Finding]) -> str:
    """An anchor per finding of a group, so each matrix cell still links to its own finding's row."""
    spans = []
    for f in findings:
        if chosen.get(f.key) is f and f.key not in anchored:
            anchored.add(f.key)
            spans.append(f'<span id="{ids.finding(f.key)}" data-key="{escape(f.key)}" data-status="{f.status.value}">'
                         "</span>")
    return "".join(spans)


def _targets_html(targets: list[str]) -> str:
    if len(targets) == 1:
        return escape(targets[0])
    return (f"<b>{len(targets)} targets</b><details class=folded><summary>{escape(target_list(targets))}</summary>"
            f"{escape(', '.join(targets))}</details>")


def _drift_group_row(group: DriftGroup, ids: ElementIds, anchored: set[str], chosen: dict[str, Finding],
                     features: bool, run: Run) -> str:
    f = group.first
    targets = group.targets
    control = f"<code>{escape(f.control_id)}</code>"
    if features:
        control = f'<a href="#{ids.feature(f.control_id)}">{control}</a>'
    streaks = [s for s in (drifting_since(run, x.key) for x in group.findings) if s]
    first = min(streaks, key=lambda s: s.started_at, default=None)
    since = (f'<div class="folded">drifting since run {escape(first.run_id)} ({escape(first.started_at)}), '
             f"{'at least ' if first.at_least else ''}{first.runs} runs</div>") if first else ""
    detail = difference(f) + (f"<div>{escape(f.reason)}</div>" if f.reason else "") + since
    data = (f'data-layer="{escape(f.layer)}" data-task="{escape(f.task)}" data-status="drift" '
            + (f'data-target="{escape(targets[0])}"' if len(targets) == 1 else _list_data("target", targets)))
    return (f'<tr class="drift finding" {data} data-n="{len(group.findings)}" data-key="{escape(f.key)}">'
            f'<td data-label="status">drift{_anchors(group.findings, ids, anchored, chosen)}</td>'
            f'<td data-label="control">{control}<br>{escape(f.title)}<br><span class="folded">{escape(f.layer)} · '
            f'{escape(f.task)} · {escape(f.severity)}</span></td>'
            f'<td data-label="target">{_targets_html(targets)}</td>'
            f'<td data-label="expected → observed">{detail}</td><td data-label="fix">{escape(f.remediation)}</td></tr>')


def _cause_group_row(group: CauseGroup, ids: ElementIds, anchored: set[str],
                     chosen: dict[str, Finding]) -> str:
    findings = group.findings
    layers = sorted({f.layer for f in findings})
    tasks = sorted({f.task for f in findings})
    controls = "".join(f"<code>{escape(c)}</code> " for c in group.controls)
    what = (f"<b>{len(group.controls)} controls</b><details class=folded><summary>which</summary>{controls}</details>"
            if len(group.controls) > 1 else controls)
    data = (f'data-status="error" {_list_data("layer", layers)} {_list_data("task", tasks)} '
            + (f'data-target="{escape(group.targets[0])}"' if len(group.targets) == 1
               else _list_data("target", list(group.targets))))
    return (f'<tr class="error finding" {data} data-n="{len(findings)}" data-key="{escape(findings[0].key)}">'
            f'<td data-label="status">error{_anchors(findings, ids, anchored, chosen)}</td>'
            f'<td data-label="control">{what}</td><td data-label="target">{_targets_html(list(group.targets))}</td>'
            f'<td data-label="cause">{escape(group.reason)}</td><td data-label="fix">{escape(findings[0].remediation)}</td></tr>')


def _brief_row(status: Status, findings: list[Finding], ids: ElementIds, anchored: set[str],
               chosen: dict[str, Finding], features: bool) -> str:
    """Pending or waived: one row per control and reason, its targets listed (each finding keeps its anchor)."""
    f = findings[0]
    targets = natural_sorted(x.target for x in findings)
    control = f"<code>{escape(f.control_id)}</code>"
    if features:
        control = f'<a href="#{ids.feature(f.control_id)}">{control}</a>'
    data = (f'data-layer="{escape(f.layer)}" data-task="{escape(f.task)}" data-status="{status.value}" '
            + (f'data-target="{escape(targets[0])}"' if len(targets) == 1 else _list_data("target", targets)))
    return (f'<tr class="{status.value} finding" {data} data-n="{len(findings)}" data-key="{escape(f.key)}">'
            f'<td data-label="status">{status.value}{_anchors(findings, ids, anchored, chosen)}</td>'
            f'<td data-label="control">{control}<br>{escape(f.title)}</td>'
            f'<td data-label="target">{_targets_html(targets)}</td><td data-label="detail">{escape(f.reason)}</td>'
            f'<td data-label="fix"></td></tr>')


def findings_html(run: Run, ids: ElementIds, features: bool) -> str:
    """Every status's section, loudest first; ``features``: link each control to its feature text."""
    parts: list[str] = []
    anchored: set[str] = set()
    chosen = {f.key: f for f in run.one_per_key()}
    for status in LOUDEST_FIRST:
        findings = sorted((f for f in run.findings if f.status is status),
                          key=lambda f: (f.layer, f.task, f.control_id, natural_key(f.target)))
        if not findings:
            continue
        parts.append(f'<section data-group="{status.value}"><h2 id="{status.value}">{TITLES[status]} ({len(findings)})</h2>')
        if status in (Status.DRIFT, Status.ERROR):  # identical findings across targets: one row per group
            if status is Status.DRIFT:
                drifted = drift_groups(findings)
                count, head = len(drifted), "expected → observed"
                rows = [_drift_group_row(g, ids, anchored, chosen, features, run) for g in drifted]
            else:
                causes = cause_groups(findings)
                count, head = len(causes), "cause"
                rows = [_cause_group_row(g, ids, anchored, chosen) for g in causes]
            parts.append(f'<p class="folded">{count} groups of identical findings</p><table class="findings">'
                         f"<tr><th>status</th><th>control</th><th>targets</th><th>{head}</th><th>fix</th></tr>"
                         + "".join(rows) + "</table></section>")
            continue
        if status in (Status.PENDING, Status.WAIVED):  # one row per control and reason, naming its targets
            keyed = sorted(findings, key=lambda f: (f.control_id, f.reason, natural_key(f.target)))
            rows = [_brief_row(status, list(g), ids, anchored, chosen, features)
                    for _, g in groupby(keyed, key=lambda f: (f.control_id, f.reason))]
            parts.append('<table class="findings"><tr><th>status</th><th>control</th><th>targets</th><th>detail</th>'
                         "<th>fix</th></tr>" + "".join(rows) + "</table></section>")
            continue
        for (layer, task), group in groupby(findings, key=lambda f: (f.layer, f.task)):
            parts.append(f'<section data-group="{status.value} {escape(layer)} {escape(task)}"><h3>{escape(layer)} · '
                         f'{escape(task)}</h3><table class="findings"><tr><th>status</th><th>control</th>'
                         f"<th>target</th><th>detail</th><th>fix</th></tr>")
            for f in group:
                first = chosen[f.key] is f and f.key not in anchored  # the matrix cell links to this row
                anchored.add(f.key) if first else None
                parts.append(_row(f, ids, first, features))
            parts.append("</table></section>")
        parts.append("</section>")
    return "".join(parts)
