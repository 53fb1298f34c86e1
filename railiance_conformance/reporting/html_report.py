"""One self-contained HTML page (inline CSS, SVG and one inline script; nothing fetched): ``report.html``.

What it shows, top to bottom:

* a cutover gate run's GO/NO-GO and its reasons (the first heading of a gate run); the run's verdict
  (conformant / drift / could not verify: the first heading otherwise), the counts, what drifted anew and
  what was fixed since the previous run (named), the workplan's claims per task;
* the counts, filters by layer, task, status and target (plain ``<select>`` elements and a small
  inline script; the filter is kept in the address's fragment, ``report.html#status=drift&layer=S1``,
  so a filtered view can be bookmarked or sent; no server is involved);
* a targets × controls matrix, each cell coloured by its status and linking to its finding;
* the trend over the recorded runs (``Run.trend``): pass / drift / could-not-verify per run as one line
  each, drawn as SVG by pygal (``trend_svg``), a table of every run (id, exact time, counts and the
  change from the run before), per target a strip of its loudest status per run, and per finding the
  first run of its current drift streak ("drifting since"), its length and a strip of its status in
  each run (plain SVG rectangles);
* the findings, drift first (``finding.LOUDEST_FIRST``): drift and could-not-verify one row per group
  of identical findings across targets (``reporting.groups``), pending and waived one row per control
  and reason, passing ones by layer and task; a drift shows
  only the fields that differ, ``expected → observed`` (``reporting.diff``), the whole values folded;
* targets in natural order (``ns2`` before ``ns10``); the matrix scrolls in its own box with sticky row
  and column headers, so every column is reachable on a 390 px screen;
* each control's feature text (``Run.features``: scenario, sentence, ``file:line``), linked from the
  matrix and the findings.

Every value from a target is HTML-escaped and inert (``printable``); element ids and filter values
are indexes, never target text. Example: ``'<tr class="drift"' in render(run)`` -> True when something drifted.
"""
from __future__ import annotations

import json
from html import escape as _html_escape
from itertools import groupby
from typing import TYPE_CHECKING, Any

from railiance_conformance.finding import LOUDEST_FIRST, Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register
from railiance_conformance.reporting.diff import ARROW, finding_diff, show
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

if TYPE_CHECKING:
    from railiance_conformance.gate.cutover import GateVerdict
    from railiance_conformance.history import RunDiff, Trend

TITLES = {Status.DRIFT: "Drift", Status.ERROR: "Could not verify", Status.PENDING: "Pending",
          Status.WAIVED: "Waived", Status.PASS: "Passing"}
COLOURS = {Status.PASS: "#2da44e", Status.DRIFT: "#cf222e", Status.ERROR: "#8250df", Status.PENDING: "#d4a72c",
           Status.WAIVED: "#54aeff"}
TREND_SERIES = ((Status.PASS, "pass"), (Status.DRIFT, "drift"), (Status.ERROR, "could not verify"))
MAX_STRIPS = 200
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;max-width:1600px}
h1{font-size:1.5em;margin:.2em 0}h2{margin-top:1.6em}h3{font-size:1em;color:#57606a}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
table.diff td{overflow-wrap:anywhere}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,pre{font:12px ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
.counts span{display:inline-block;margin:0 .6em .3em 0;padding:2px 8px;border-radius:4px}
tr.drift td:first-child,.counts .drift{background:#ffebe9;color:#a40e26;font-weight:bold}
tr.error td:first-child,.counts .error{background:#fbefff;color:#8250df;font-weight:bold}
tr.pending td:first-child,.counts .pending{background:#fff8c5}
tr.waived td:first-child,.counts .waived{background:#ddf4ff}
tr.pass td:first-child,.counts .pass{background:#dafbe1}
.filters{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:end;padding:.6em;background:#f6f8fa;
 border:1px solid #d0d7de;border-radius:6px;position:sticky;top:0;z-index:2}
.filters label{display:flex;flex-direction:column;font-size:12px;color:#57606a}
.filters select{font-size:14px;min-width:8em;max-width:16em}
.scroll{overflow:auto;max-width:100%;max-height:80vh;-webkit-overflow-scrolling:touch;border:1px solid #eaeef2}
.matrix thead th{position:sticky;top:0;z-index:1;background:#fff}
.matrix thead th.target{z-index:3;left:0}
h1.verdict-drift{color:#a40e26}h1.verdict-could-not-verify{color:#8250df}h1.verdict-conformant{color:#1a7f37}
.news li{margin:.2em 0}.runs td,.runs th{font:12px ui-monospace,monospace;white-space:nowrap}
.delta-up{color:#a40e26}.delta-down{color:#1a7f37}
table.matrix{width:auto;border-collapse:separate;border-spacing:2px}
.matrix th,.matrix td{border:0;padding:0}
.matrix thead th{vertical-align:bottom}
.matrix thead th a{writing-mode:vertical-rl;transform:rotate(180deg);display:inline-block;max-height:24em;
 overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font:11px ui-monospace,monospace;color:#1b1f24;
 text-decoration:none;padding:2px 0}
.matrix th.target{position:sticky;left:0;background:#fff;padding-right:.6em;white-space:nowrap;font-weight:normal;
 text-align:right;font:12px ui-monospace,monospace}
.matrix td a{display:block;width:18px;height:18px;border-radius:3px}
.matrix td.empty{background:repeating-linear-gradient(45deg,#f6f8fa,#f6f8fa 3px,#fff 3px,#fff 6px);width:18px;height:18px}
.matrix td.dim a{opacity:.12}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:12px;height:12px;
 border-radius:2px;margin-right:4px;vertical-align:-1px}
.trend{overflow-x:auto}.trend svg{width:100%;max-width:960px;min-width:560px;height:auto}
.strip svg{display:block}
.change{font:12px ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
.change .arrow{color:#57606a;font-weight:bold}
.folded{color:#57606a;font-size:12px}
dl.features dt{margin-top:.8em}dl.features dd{margin-left:1.2em}
q{font-style:italic}
@media (max-width:700px){
 body{margin:.6em}
 table.findings,table.findings tbody,table.findings tr,table.findings td{display:block;width:auto}
 table.findings tr:first-child{display:none}
 table.findings tr{border:1px solid #d0d7de;border-radius:6px;margin:.5em 0;overflow:hidden}
 table.findings td{border:0;border-top:1px solid #eaeef2}
 table.findings td[data-label]::before{content:attr(data-label);display:block;font-size:11px;color:#57606a}
 .filters select{min-width:6em;max-width:10em}
 .scroll{max-width:calc(100vw - 1.2em)}
 .filters{position:static}
 .trend svg{min-width:0}
}
""" + "".join(f".s-{s.value}{{background:{c}}}" for s, c in COLOURS.items())

SCRIPT = """
(function(){
var selects=[].slice.call(document.querySelectorAll('select[data-filter]'));
function wanted(){var w={};selects.forEach(function(s){if(s.value)w[s.dataset.filter]=s.value;});return w;}
function fits(el,w){return Object.keys(w).every(function(k){var list=el.dataset[k+'s'];
 return list!==undefined?list.split('\\n').indexOf(w[k])>=0:el.dataset[k]===w[k];});}
function apply(){
 var w=wanted(),shown=0,cells=0;
 document.querySelectorAll('tr.finding').forEach(function(tr){var ok=fits(tr,w);tr.hidden=!ok;if(ok)shown+=+(tr.dataset.n||1);});
 document.querySelectorAll('tr.streak').forEach(function(tr){tr.hidden=!fits(tr,w);});
 document.querySelectorAll('tr.tstrip').forEach(function(tr){tr.hidden=!!(w.target&&tr.dataset.target!==w.target);});
 var where={target:w.target,layer:w.layer,task:w.task};
 document.querySelectorAll('.matrix [data-col]').forEach(function(el){
  el.hidden=!!((w.layer&&el.dataset.layer!==w.layer)||(w.task&&el.dataset.task!==w.task));});
 document.querySelectorAll('.matrix tr[data-target]').forEach(function(tr){tr.hidden=!!(w.target&&tr.dataset.target!==w.target);});
 document.querySelectorAll('.matrix td[data-status]').forEach(function(td){
  var dim=!!(w.status&&td.dataset.status!==w.status);td.classList.toggle('dim',dim);if(!dim&&!td.hidden)cells++;});
 document.querySelectorAll('[data-group]').forEach(function(g){g.hidden=!g.querySelector('tr.finding:not([hidden])');});
 document.getElementById('shown').textContent=shown;
 document.body.dataset.filtered=Object.keys(w).length?'yes':'no';
 var hash=Object.keys(w).map(function(k){return k+'='+encodeURIComponent(w[k]);}).join('&');
 if(('#'+hash)!==location.hash&&(hash||location.hash))history.replaceState(null,'',hash?'#'+hash:location.pathname);
}
function load(){
 var h=location.hash.replace(/^#/,''),w={};
 if(h.indexOf('=')<0){apply();return;}
 h.split('&').forEach(function(p){var kv=p.split('=');try{w[kv[0]]=decodeURIComponent(kv[1]||'');}catch(e){}});
 selects.forEach(function(s){var v=w[s.dataset.filter];s.value=[].some.call(s.options,function(o){return o.value===v;})?v:'';});
 apply();
}
selects.forEach(function(s){s.addEventListener('change',apply);});
document.getElementById('reset').addEventListener('click',function(e){e.preventDefault();
 selects.forEach(function(s){s.value='';});apply();});
window.addEventListener('hashchange',load);
load();
})();
"""


def escape(text: str) -> str:
    """HTML-escaped and inert: control and bidi characters shown as escapes (``printable``)."""
    return _html_escape(printable(str(text)))


def _value(value: Any) -> str:
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True, default=str)
    return f"<pre>{escape(text)}</pre>"


class _Ids:
    """Index-based element ids: a target's text never becomes an id or a selector."""

    def __init__(self, run: Run):
        self.keys = {f.key: n for n, f in enumerate(run.one_per_key())}
        self.controls = {c: n for n, c in enumerate(sorted({f.control_id for f in run.findings}))}

    def finding(self, key: str) -> str:
        return f"f-{self.keys[key]}"

    def feature(self, control_id: str) -> str:
        return f"ft-{self.controls[control_id]}"


def _data(f: Finding) -> str:
    return (f'data-layer="{escape(f.layer)}" data-task="{escape(f.task)}" data-status="{f.status.value}" '
            f'data-target="{escape(f.target)}"')


def difference(f: Finding) -> str:
    """A drift's differing fields, ``field: expected → observed`` one per line, the rest folded."""
    diff = finding_diff(f)
    lines = []
    for change in diff.changes:
        where = f"{escape(change.where)}: " if change.where else ""
        secret = " (secret: not shown)" if change.secret else ""
        lines.append(f'<div class="change">{where}{escape(show(change.expected))} <span class="arrow">{ARROW}</span> '
                     f"{escape(show(change.observed))}{secret}</div>")
    if not diff.changes:
        lines.append(f'<div class="change">values as expected: {escape(show(f.observed))}</div>')
    folded = diff.folded() or "whole values"
    lines.append(f'<details class="folded"><summary>{escape(folded)}</summary>expected {_value(f.expected)}'
                 f"observed {_value(f.observed)}</details>")
    return "".join(lines)


def _row(f: Finding, ids: _Ids, first: bool, features: bool) -> str:
    if f.status is Status.DRIFT:
        detail = difference(f) + (f"<div>{escape(f.reason)}</div>" if f.reason else "")
    elif f.status is Status.ERROR:
        detail = escape(f.reason)
    elif f.status is Status.PASS:
        detail = _value(f.observed)
    else:
        detail = escape(f.reason) + (f"<details class=folded><summary>values</summary>expected {_value(f.expected)}"
                                     f"observed {_value(f.observed)}</details>" if f.observed is not None else "")
    fix = escape(f.remediation) if f.status in (Status.DRIFT, Status.ERROR) else ""
    anchor = f' id="{ids.finding(f.key)}"' if first else ""
    control = f"<code>{escape(f.control_id)}</code>"
    if features:
        control = f'<a href="#{ids.feature(f.control_id)}">{control}</a>'
    return (f'<tr class="{f.status.value} finding"{anchor} {_data(f)} data-key="{escape(f.key)}">'
            f'<td data-label="status">{f.status.value}</td>'
            f'<td data-label="control">{control}<br>{escape(f.title)}</td>'
            f'<td data-label="target">{escape(f.target)}</td>'
            f'<td data-label="{"expected → observed" if f.status is Status.DRIFT else "detail"}">{detail}</td>'
            f'<td data-label="fix">{fix}</td></tr>')


def _options(name: str, label: str, values: list[tuple[str, str]]) -> str:
    options = "".join(f'<option value="{escape(v)}">{escape(t)}</option>' for v, t in values)
    return (f'<label>{label}<select data-filter="{name}" name="{name}"><option value="">all</option>'
            f"{options}</select></label>")


def _filters(run: Run) -> str:
    present = {f.status for f in run.findings}
    statuses = [(s.value, TITLES[s].lower()) for s in LOUDEST_FIRST if s in present]
    layers = sorted({f.layer for f in run.findings})
    tasks = sorted({f.task for f in run.findings})
    targets = natural_sorted({f.target for f in run.findings})
    return ('<form class="filters" id="filters" onsubmit="return false">'
            + _options("layer", "layer", [(v, v) for v in layers])
            + _options("task", "task", [(v, v.rsplit("-", 1)[-1]) for v in tasks])
            + _options("status", "status", statuses)
            + _options("target", "target", [(v, v) for v in targets])
            + f'<span><a href="#" id="reset">show all</a> · <span id="shown">{len(run.findings)}</span> '
              f"findings shown</span></form>")


def _matrix(run: Run, ids: _Ids, features: bool) -> str:
    """Targets (rows) × controls (columns, by layer and task), each cell its status, linked to the finding."""
    chosen = {f.key: f for f in run.one_per_key()}
    controls = sorted({(f.layer, f.task, f.control_id) for f in chosen.values()})
    targets = natural_sorted({f.target for f in chosen.values()})
    head = "".join(
        f'<th data-col="{n}" data-layer="{escape(layer)}" data-task="{escape(task)}">'
        f'<a href="#{ids.feature(cid)}" title="{escape(cid)} ({escape(layer)} {escape(task)})">{escape(cid)}</a></th>'
        if features else
        f'<th data-col="{n}" data-layer="{escape(layer)}" data-task="{escape(task)}"><a title="{escape(cid)}">'
        f"{escape(cid)}</a></th>"
        for n, (layer, task, cid) in enumerate(controls))
    rows = []
    for target in targets:
        cells = []
        for n, (layer, task, cid) in enumerate(controls):
            f = chosen.get(f"{cid}@{target}")
            if f is None:
                cells.append(f'<td class="empty" data-col="{n}" data-layer="{escape(layer)}" data-task="{escape(task)}" '
                             f'title="{escape(cid)} is not checked on {escape(target)}"></td>')
                continue
            cells.append(f'<td class="cell {f.status.value}" data-col="{n}" {_data(f)}>'
                         f'<a class="s-{f.status.value}" href="#{ids.finding(f.key)}" '
                         f'title="{escape(cid)} @ {escape(target)}: {f.status.value}"></a></td>')
        rows.append(f'<tr data-target="{escape(target)}"><th class="target" scope="row">{escape(target)}</th>'
                    + "".join(cells) + "</tr>")
    legend = "".join(f'<span><i class="s-{s.value}"></i>{TITLES[s].lower()}</span>' for s in LOUDEST_FIRST)
    return (f'<h2 id="matrix" class="part">Targets × controls</h2><p class="legend">{legend}</p>'
            f'<div class="scroll"><table class="matrix"><thead><tr><th class="target"></th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def trend_svg(trend: Trend) -> str:
    """Pass / drift / could-not-verify per recorded run, one line per status, each run labelled by its id and
    exact start time: static SVG from pygal (no script, nothing fetched; it scales to its container)."""
    import pygal
    from pygal.style import Style

    style = Style(background="transparent", plot_background="transparent", foreground="#1b1f24",
                  foreground_strong="#1b1f24", foreground_subtle="#d0d7de", font_family="system-ui, sans-serif",
                  colors=tuple(COLOURS[s] for s, _ in TREND_SERIES), label_font_size=11, legend_font_size=12,
                  major_label_font_size=11)
    chart = pygal.Line(js=[], disable_xml_declaration=True, width=960, height=280, style=style,
                       legend_at_bottom=True, legend_at_bottom_columns=3, show_y_guides=True,
                       x_label_rotation=30 if len(trend.runs) > 6 else 0, truncate_label=-1,
                       show_minor_x_labels=len(trend.runs) <= 15, x_labels_major_every=max(1, len(trend.runs) // 8),
                       margin=8, spacing=8, print_values=False, tooltip_border_radius=0, dots_size=3)
    # each run by its id and exact start time (two runs in one minute stay apart)
    chart.x_labels = [printable(f"{r.run_id[:12]} {r.started_at[11:19]}") for r in trend.runs]
    for status, title in TREND_SERIES:
        chart.add(title, [r.counts.get(status.value, 0) for r in trend.runs])
    return chart.render(is_unicode=True)


def strip_svg(statuses: tuple[str | None, ...], runs: tuple) -> str:
    """One finding's status in each recorded run, a square per run (plain SVG: pygal has no
    categorical strip), the run and status as each square's tooltip."""
    size, gap = 10, 2
    rects = []
    for n, status in enumerate(statuses):
        colour = COLOURS[Status(status)] if status else "#eaeef2"
        tip = f"{runs[n].run_id} {runs[n].started_at}: {status or 'not checked'}"
        rects.append(f'<rect x="{n * (size + gap)}" y="0" width="{size}" height="{size}" rx="2" fill="{colour}">'
                     f"<title>{escape(tip)}</title></rect>")
    width = max(1, len(statuses) * (size + gap) - gap)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{size}" viewBox="0 0 {width} {size}" '
            f'role="img" aria-label="status per run">{"".join(rects)}</svg>')


def _trend(run: Run, ids: _Ids) -> str:
    trend = run.trend
    if trend is None or not trend.runs:
        return ('<h2 id="trend" class="part">Trend</h2><p>No history recorded (<code>--history none</code>): '
                "no trend.</p>")
    by_key = {f.key: f for f in run.one_per_key()}
    streaks = run.history or {}

    def loud(key: str) -> tuple:
        seen = streaks.get(key)
        current = by_key.get(key)
        return (-(seen.consecutive_drift if seen else 0),
                -(current.status.loudness if current else 0), key)

    keys = sorted((k for k, st in trend.statuses.items() if Status.DRIFT.value in st), key=loud)
    rows = []
    for key in keys[:MAX_STRIPS]:
        seen, current = streaks.get(key), by_key.get(key)
        data = _data(current) if current else f'data-target="{escape(key.rsplit("@", 1)[-1])}"'
        link = f'<a href="#{ids.finding(key)}"><code>{escape(key)}</code></a>' if current else f"<code>{escape(key)}</code>"
        since = drifting_since(run, key)
        first = (f"{escape(since.run_id)}<br>{escape(since.started_at)}" if since else
                 f"not drifting now (first seen {escape(seen.first_seen_at)})" if seen else "–")
        streak = (("≥" if since.at_least else "") + str(since.runs)) if since else "0"
        rows.append(f'<tr class="streak" {data}><td data-label="finding">{link}</td><td data-label="first seen">{first}</td>'
                    f'<td data-label="runs in drift in a row">{streak}</td>'
                    f'<td class="strip" data-label="each run">{strip_svg(trend.statuses[key], trend.runs)}</td></tr>')
    more = f"<p>… {len(keys) - MAX_STRIPS} more findings not shown.</p>" if len(keys) > MAX_STRIPS else ""
    table = ('<table class="findings streaks"><tr><th>finding</th><th>drifting since</th><th>runs in drift in a row</th>'
             f'<th>each run, oldest first</th></tr>{"".join(rows)}</table>{more}' if rows else
             "<p>Nothing drifted in the recorded runs.</p>")
    return (f'<h2 id="trend" class="part">Trend over the last {len(trend.runs)} recorded runs</h2>'
            f'<div class="trend" role="img" aria-label="pass, drift and could not verify per run">{trend_svg(trend)}</div>'
            f'<h3>Each run</h3>{_runs_table(trend)}{_per_target(trend)}'
            f'<h3>Findings that drifted in some recorded run</h3>{table}')


def _list_data(name: str, values) -> str:
    """A filterable attribute holding several values (``data-targets``), newline-separated (the script splits it)."""
    return f'data-{name}s="{escape(chr(10).join(values))}"'


def _anchors(findings, ids: _Ids, anchored: set[str], chosen: dict) -> str:
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


def _drift_group_row(group: DriftGroup, ids: _Ids, anchored: set[str], chosen: dict, features: bool, run: Run) -> str:
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


def _cause_group_row(group: CauseGroup, ids: _Ids, anchored: set[str], chosen: dict) -> str:
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


def _brief_row(status: Status, findings: list[Finding], ids: _Ids, anchored: set[str], chosen: dict,
               features: bool) -> str:
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


def _runs_table(trend: Trend) -> str:
    """Each recorded run: its id, exact start time, counts per status and the change from the run before."""
    rows = []
    for index, info in enumerate(trend.runs):
        cells = []
        for status, _ in TREND_SERIES:
            count = info.counts.get(status.value, 0)
            delta = "" if index == 0 else count - trend.runs[index - 1].counts.get(status.value, 0)
            mark = "" if delta in ("", 0) else (f' <span class="delta-{"up" if (delta > 0) == (status is not Status.PASS) else "down"}">'
                                                f"({delta:+d})</span>")
            cells.append(f"<td>{count}{mark}</td>")
        rows.append(f"<tr><td>{escape(info.run_id)}</td><td>{escape(info.started_at)}</td>"
                    f"<td>{'partial' if info.partial else ''}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{title}</th>" for _, title in TREND_SERIES)
    return (f'<div class="scroll"><table class="runs"><tr><th>run</th><th>started (UTC)</th><th></th>{head}</tr>'
            f'{"".join(reversed(rows))}</table></div>')


def _per_target(trend: Trend) -> str:
    """Per target, its loudest status in each recorded run (a strip), targets in natural order."""
    by_target: dict[str, list[str | None]] = {}
    for key, statuses in trend.statuses.items():
        target = key.rsplit("@", 1)[-1]
        row = by_target.setdefault(target, [None] * len(trend.runs))
        for n, status in enumerate(statuses):
            if status and (row[n] is None or Status(status).loudness > Status(row[n]).loudness):
                row[n] = status
    rows = "".join(f'<tr class="tstrip" data-target="{escape(t)}"><td data-label="target">{escape(t)}</td>'
                   f'<td class="strip" data-label="each run">{strip_svg(tuple(by_target[t]), trend.runs)}</td></tr>'
                   for t in natural_sorted(by_target))
    return ('<h3>Per target: its loudest status in each run, oldest first</h3><table class="findings per-target">'
            f"<tr><th>target</th><th>each run</th></tr>{rows}</table>")


def _features(run: Run, ids: _Ids) -> str:
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
    counts = run.counts()
    ids = _Ids(run)
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
        parts += [_filters(run), _matrix(run, ids, features)]
    if run.diff is not None:
        parts.append(_diff(run.diff))
    if run.coverage:
        parts.append(_coverage(run))
    parts.append(_trend(run, ids))
    anchored: set[str] = set()
    chosen = {f.key: f for f in run.one_per_key()}
    for status in LOUDEST_FIRST:
        findings = sorted((f for f in run.findings if f.status is status),
                          key=lambda f: (f.layer, f.task, f.control_id, natural_key(f.target)))
        if not findings:
            continue
        parts.append(f'<section data-group="{status.value}"><h2 id="{status.value}">{TITLES[status]} ({len(findings)})</h2>')
        if status in (Status.DRIFT, Status.ERROR):  # identical findings across targets: one row per group
            grouped = drift_groups(findings) if status is Status.DRIFT else cause_groups(findings)
            head = "expected → observed" if status is Status.DRIFT else "cause"
            rows = [_drift_group_row(g, ids, anchored, chosen, features, run) if status is Status.DRIFT
                    else _cause_group_row(g, ids, anchored, chosen) for g in grouped]
            parts.append(f'<p class="folded">{len(grouped)} groups of identical findings</p><table class="findings">'
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
    if run.findings:
        parts += [_features(run, ids), f"<script>{SCRIPT}</script>"]
    parts.append("</body></html>\n")
    return "".join(parts)


REPORTER = register(Reporter("html", "report.html", render))
