"""report.html's filters (layer, task, status, target) and its targets × controls matrix, each cell
coloured by its status and linked to its finding; targets in natural order."""
from __future__ import annotations

from railiance_conformance.finding import LOUDEST_FIRST
from railiance_conformance.reporting import Run
from railiance_conformance.reporting.groups import natural_sorted
from railiance_conformance.reporting.html_assets import TITLES
from railiance_conformance.reporting.html_parts import ElementIds, data_attributes, escape


def _options(name: str, label: str, values: list[tuple[str, str]]) -> str:
    options = "".join(f'<option value="{escape(v)}">{escape(t)}</option>' for v, t in values)
    return (f'<label>{label}<select data-filter="{name}" name="{name}"><option value="">all</option>'
            f"{options}</select></label>")


def filters(run: Run) -> str:
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


def matrix(run: Run, ids: ElementIds, features: bool) -> str:
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
            cells.append(f'<td class="cell {f.status.value}" data-col="{n}" {data_attributes(f)}>'
                         f'<a class="s-{f.status.value}" href="#{ids.finding(f.key)}" '
                         f'title="{escape(cid)} @ {escape(target)}: {f.status.value}"></a></td>')
        rows.append(f'<tr data-target="{escape(target)}"><th class="target" scope="row">{escape(target)}</th>'
                    + "".join(cells) + "</tr>")
    legend = "".join(f'<span><i class="s-{s.value}"></i>{TITLES[s].lower()}</span>' for s in LOUDEST_FIRST)
    return (f'<h2 id="matrix" class="part">Targets × controls</h2><p class="legend">{legend}</p>'
            f'<div class="scroll"><table class="matrix"><thead><tr><th class="target"></th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')
