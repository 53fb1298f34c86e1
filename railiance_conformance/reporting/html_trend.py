"""report.html's trend over the recorded runs (``Run.trend``): the pygal line chart, the table of runs,
per target and per finding a strip of its status in each run (plain SVG), and the drift streaks."""
from __future__ import annotations

from typing import TYPE_CHECKING

from railiance_conformance.finding import Status
from railiance_conformance.reporting import Run, printable
from railiance_conformance.reporting.groups import drifting_since, natural_sorted
from railiance_conformance.reporting.html_assets import COLOURS
from railiance_conformance.reporting.html_parts import ElementIds, data_attributes, escape

if TYPE_CHECKING:
    from railiance_conformance.history import Trend

TREND_SERIES = ((Status.PASS, "pass"), (Status.DRIFT, "drift"), (Status.ERROR, "could not verify"))
MAX_STRIPS = 200


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


def trend_html(run: Run, ids: ElementIds) -> str:
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
        data = data_attributes(current) if current else f'data-target="{escape(key.rsplit("@", 1)[-1])}"'
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


def _runs_table(trend: Trend) -> str:
    """Each recorded run: its id, exact start time, counts per status and the change from the run before."""
    rows = []
    for index, info in enumerate(trend.runs):
        cells = []
        for status, _ in TREND_SERIES:
            count = info.counts.get(status.value, 0)
            delta = 0 if index == 0 else count - trend.runs[index - 1].counts.get(status.value, 0)
            mark = "" if not delta else (f' <span class="delta-{"up" if (delta > 0) == (status is not Status.PASS) else "down"}">'
                                                f"({delta:+d})</span>")
            cells.append(f"<td>{count}{mark}</td>")
        rows.append(f"<tr><td>{escape(info.run_id)}</td><td>{escape(info.started_at)}</td>"
                    f"<td>{'partial' if info.partial else ''}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{title}</th>" for _, title in TREND_SERIES)
    return (f'<div class="scroll"><table class="runs"><tr><th>run</th><th>started (UTC)</th><th></th>{head}</tr>'
            f'{"".join(reversed(rows))}</table></div>')


_LOUDNESS = {status.value: status.loudness for status in Status}


def _loudness(status: str) -> int:
    """``Status(status).loudness`` (a ValueError for a status the suite does not know), without building the
    enum member: this is asked for every finding in every recorded run."""
    loudness = _LOUDNESS.get(status)
    return Status(status).loudness if loudness is None else loudness


def _per_target(trend: Trend) -> str:
    """Per target, its loudest status in each recorded run (a strip), targets in natural order."""
    by_target: dict[str, list[str | None]] = {}
    for key, statuses in trend.statuses.items():
        target = key.rsplit("@", 1)[-1]
        row = by_target.setdefault(target, [None] * len(trend.runs))
        for n, status in enumerate(statuses):
            if status and ((shown := row[n]) is None or _loudness(status) > _loudness(shown)):
                row[n] = status
    rows = "".join(f'<tr class="tstrip" data-target="{escape(t)}"><td data-label="target">{escape(t)}</td>'
                   f'<td class="strip" data-label="each run">{strip_svg(tuple(by_target[t]), trend.runs)}</td></tr>'
                   for t in natural_sorted(by_target))
    return ('<h3>Per target: its loudest status in each run, oldest first</h3><table class="findings per-target">'
            f"<tr><th>target</th><th>each run</th></tr>{rows}</table>")
