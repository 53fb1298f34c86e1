"""The HTML report in headless Chromium at 1400 and 390 CSS pixels: the targets x controls matrix, the
trend, the filters (select elements and bookmarkable fragments) and the feature texts, asserted on the
live DOM over the DevTools protocol, with a full-page screenshot of each width.

The screenshots are written to ``$RAILIANCE_SCREENSHOTS`` (default: the test's tmp directory) for a human look.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from railiance_conformance.finding import LOUDEST_FIRST, Status
from railiance_conformance.reporting.groups import natural_sorted
from tests.browser.cdp import Chromium
from tests.browser.report_samples import recorded_nights

pytestmark = pytest.mark.browser
WIDTHS = (1400, 390)
NIGHTS = 8


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    published = recorded_nights(directory, NIGHTS)
    return directory / "report.html", published.run


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with Chromium(tmp_path_factory.mktemp("profile")) as chromium:
        yield chromium


def js(browser: Chromium, body: str):
    return browser.evaluate(f"(function(){{{body}}})()")


def select(browser: Chromium, name: str, value: str) -> None:
    js(browser, f"var s=document.querySelector('select[data-filter={name}]');s.value={json.dumps(value)};"
                "s.dispatchEvent(new Event('change'));")


def visible_findings(browser: Chromium) -> list[dict]:
    """Each finding shown, a row of a group of n identical findings counted n times (its targets listed)."""
    rows = js(browser, "return [].map.call(document.querySelectorAll('tr.finding'),function(tr){"
                       "return {status:tr.dataset.status,layer:tr.dataset.layer||tr.dataset.layers,"
                       "targets:tr.dataset.targets?tr.dataset.targets.split('\\n'):[tr.dataset.target],n:+(tr.dataset.n||1),"
                       "shown:!tr.hidden&&tr.offsetParent!==null};}).filter(function(r){return r.shown;});")
    return [{**row, "target": target} for row in rows for target in row["targets"]
            for _ in range(row["n"] // len(row["targets"]) or 1)]


def screenshot(browser: Chromium, tmp_path: Path, name: str) -> Path:
    shot = browser.screenshot(tmp_path / name)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("RAILIANCE_SCREENSHOTS"):
        Path(os.environ["RAILIANCE_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["RAILIANCE_SCREENSHOTS"]) / name)
    return shot


@pytest.mark.parametrize("width", WIDTHS)
def test_the_matrix_shows_every_target_and_control_coloured_and_linked(report, browser, tmp_path, width):
    page, run = report
    browser.open(page.as_uri(), width=width)
    chosen = {f.key: f for f in run.one_per_key()}
    targets = natural_sorted({f.target for f in run.findings})
    controls = sorted({f.control_id for f in run.findings})
    matrix = js(browser, """
        var rows=[].map.call(document.querySelectorAll('.matrix tbody tr'),function(tr){return tr.dataset.target;});
        var cells=[].map.call(document.querySelectorAll('.matrix td.cell'),function(td){
          var a=td.querySelector('a'),row=document.getElementById(a.getAttribute('href').slice(1));
          return {target:td.dataset.target,status:td.dataset.status,colour:getComputedStyle(a).backgroundColor,
                  key:row&&row.dataset.key,rowStatus:row&&row.dataset.status,w:a.getBoundingClientRect().width};});
        return {rows:rows,cells:cells,columns:document.querySelectorAll('.matrix thead th[data-col]').length,
                pageWidth:document.documentElement.scrollWidth,view:innerWidth};""")
    assert matrix["rows"] == targets and matrix["columns"] == len(controls)
    assert len(matrix["cells"]) == len(chosen)
    colours = {}
    for cell in matrix["cells"]:
        finding = chosen[cell["key"]]                           # the cell links to its own finding's row
        assert cell["target"] == finding.target and cell["status"] == cell["rowStatus"] == finding.status.value
        colours.setdefault(cell["status"], set()).add(cell["colour"])
        assert cell["w"] >= 14                                  # still a tappable square at 390 px
    assert all(len(c) == 1 for c in colours.values()) and len({min(c) for c in colours.values()}) == len(colours)
    assert colours["drift"] == {"rgb(207, 34, 46)"}
    assert matrix["pageWidth"] <= matrix["view"], "the page scrolls sideways (only the matrix may)"
    screenshot(browser, tmp_path, f"report-{width}.png")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_trend_is_an_svg_of_every_recorded_run(report, browser, width):
    page, run = report
    browser.open(page.as_uri(), width=width)
    trend = js(browser, """
        var svg=document.querySelector('.trend svg'),box=document.querySelector('.trend').getBoundingClientRect();
        return {bars:svg.querySelectorAll('.series path.line').length,
                legend:[].map.call(svg.querySelectorAll('.legends .legend text, .legend text'),function(t){return t.textContent;}),
                labels:[].map.call(svg.querySelectorAll('.axis.x .guides text'),function(t){return t.textContent;}),
                scripts:document.querySelectorAll('script[src], link[href], img[src]').length,
                width:box.width,view:innerWidth,
                strips:[].map.call(document.querySelectorAll('tr.streak'),function(tr){
                  return {key:tr.querySelector('code').textContent,streak:tr.children[2].textContent,
                          squares:[].map.call(tr.querySelectorAll('.strip rect'),function(r){return r.getAttribute('fill');})};})};""")
    assert trend["bars"] == 3                                   # one line per status: pass, drift, could not verify
    assert {"pass", "drift", "could not verify"} <= set(trend["legend"])
    assert len(trend["labels"]) == NIGHTS and trend["labels"][-1] == "night-07 03:17:00"   # run id and exact time
    assert trend["scripts"] == 0                                # nothing fetched
    assert 0 < trend["width"] <= trend["view"]                # the chart scrolls inside its box on a phone
    assert trend["strips"] and all(len(s["squares"]) == NIGHTS for s in trend["strips"])
    streaks = {s["key"]: int(s["streak"].lstrip("≥")) for s in trend["strips"]}
    assert streaks == {k: h.consecutive_drift for k, h in run.history.items() if k in streaks}
    runs = js(browser, "return [].map.call(document.querySelectorAll('table.runs tr'),function(tr){"
                       "return tr.children[0].textContent+' '+tr.children[1].textContent;}).slice(1);")
    assert runs == [f"{r.run_id} {r.started_at}" for r in reversed(run.trend.runs)]   # newest first, exact times
    targets = js(browser, "return [].map.call(document.querySelectorAll('tr.tstrip'),function(tr){"
                          "return [tr.dataset.target,tr.querySelectorAll('rect').length];});")
    assert [t for t, _ in targets] == natural_sorted({f.target for f in run.findings})
    assert all(n == NIGHTS for _, n in targets)
    assert all(s["squares"][-1] == "#cf222e" for s in trend["strips"] if int(s["streak"]) > 0)
    # the loudest streak first
    assert list(streaks.values()) == sorted(streaks.values(), reverse=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_filters_narrow_the_matrix_and_the_findings_and_are_bookmarkable(report, browser, tmp_path, width):
    page, run = report
    browser.open(page.as_uri(), width=width)
    assert len(visible_findings(browser)) == len(run.findings)
    select(browser, "status", "drift")
    shown = visible_findings(browser)
    assert {r["status"] for r in shown} == {"drift"} and len(shown) == run.counts()["drift"]
    assert js(browser, "return location.hash") == "#status=drift"
    dim = js(browser, "return [].map.call(document.querySelectorAll('.matrix td.cell'),function(td){"
                      "return [td.dataset.status, td.classList.contains('dim')];});")
    assert all(is_dim == (status != "drift") for status, is_dim in dim)
    select(browser, "layer", "S1")
    select(browser, "target", "drifted")
    shown = visible_findings(browser)
    expected = [f for f in run.findings if f.status is Status.DRIFT and f.layer == "S1" and f.target == "drifted"]
    assert len(shown) == len(expected) > 0 and {(r["layer"], r["target"]) for r in shown} == {("S1", "drifted")}
    assert js(browser, "return document.getElementById('shown').textContent") == str(len(expected))
    assert all(r["target"] == "drifted" for r in shown)
    matrix = js(browser, "return {rows:[].map.call(document.querySelectorAll('.matrix tbody tr:not([hidden])'),"
                         "function(tr){return tr.dataset.target;}),layers:[].map.call(document.querySelectorAll("
                         "'.matrix thead th[data-col]:not([hidden])'),function(th){return th.dataset.layer;})};")
    assert matrix["rows"] == ["drifted"] and set(matrix["layers"]) == {"S1"}
    hidden_sections = js(browser, "return [].map.call(document.querySelectorAll('section[data-group]'),"
                                  "function(s){return [s.dataset.group, s.hidden];});")
    assert [g for g, hidden in hidden_sections if not hidden and " " not in g] == ["drift"]
    screenshot(browser, tmp_path, f"report-filtered-{width}.png")
    fragment = js(browser, "return location.hash")
    assert fragment == "#layer=S1&status=drift&target=drifted"
    # the same view from a bookmark: a fresh load of the page with the fragment
    browser.open("about:blank", width=width)                  # a new document, not a same-page jump
    browser.open(page.as_uri() + fragment, width=width)
    assert len(visible_findings(browser)) == len(expected)
    assert js(browser, "return document.querySelector('select[data-filter=layer]').value") == "S1"
    js(browser, "document.getElementById('reset').click();")
    assert len(visible_findings(browser)) == len(run.findings) and js(browser, "return location.hash") == ""


@pytest.mark.parametrize("width", WIDTHS)
def test_each_control_links_to_its_feature_text_and_a_drift_shows_its_differing_field(report, browser, width):
    page, run = report
    browser.open(page.as_uri(), width=width)
    links = js(browser, """
        return [].map.call(document.querySelectorAll('.matrix thead th a'),function(a){
          var dt=document.getElementById(a.getAttribute('href').slice(1));
          return {id:a.textContent,dt:dt&&dt.textContent,dd:dt&&dt.nextElementSibling.textContent};});""")
    assert len(links) == len(run.features) == len({f.control_id for f in run.findings})
    for link in links:
        text = run.features[link["id"]]
        assert link["dt"] == link["id"] and text.sentence in link["dd"] and text.source in link["dd"]
    gitea = js(browser, """
        var tr=document.getElementById(document.querySelector('.matrix td.cell[data-target="railiance-testbed"]'+
          ' a[title^="cluster.gitea.database "]').getAttribute('href').slice(1)).closest('tr');
        return {changes:[].map.call(tr.querySelectorAll('.change'),function(c){return c.textContent;}),
                folded:tr.querySelector('details summary').textContent,open:tr.querySelector('details').open,
                feature:document.getElementById(tr.querySelector('td a').getAttribute('href').slice(1)).textContent};""")
    assert gitea["changes"] == ["HOST: gitea-db-rw.databases.svc.cluster.local:5432 → "
                                "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432"]
    assert gitea["folded"] == "4 more fields as expected" and gitea["open"] is False
    assert gitea["feature"] == "cluster.gitea.database"
    order = js(browser, "return [].map.call(document.querySelectorAll('section[data-group] > h2'),function(h){return h.id;});")
    assert order == [s.value for s in LOUDEST_FIRST]


def test_the_verdict_is_the_first_heading_and_the_claims_and_news_follow(report, browser, tmp_path):
    page, run = report
    browser.open(page.as_uri(), width=390)
    top = js(browser, "var h=document.querySelector('h1,h2,h3');return {tag:h.tagName,text:h.textContent,"
                      "news:document.querySelector('ul.news').textContent};")
    assert top["tag"] == "H1" and top["text"].startswith("Railiance conformance: DRIFT — ")
    assert f"new drift since the previous run ({len(run.diff.new_drift)})" in top["news"]


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory):
    """70 hosts (20 drifted) x 48 controls, as a run on namespace hosts gives: the matrix a phone must scroll."""
    from railiance_conformance.reporting.html_report import render
    from tests.unit.reporting_samples import finding, sample_run

    targets = [f"ns-drifted{i}" for i in range(1, 21)] + [f"ns-conformant{i}" for i in range(1, 51)]
    findings = tuple(finding(f"host.control{c:02d}", t, Status.DRIFT if t.startswith("ns-drifted") and c % 3 == 0
                             else Status.PASS, "a", "b", task=f"T0{c % 9 + 1}") for t in targets for c in range(48))
    page = tmp_path_factory.mktemp("wide") / "report.html"
    page.write_text(render(sample_run(findings=findings)), encoding="utf-8")
    return page, targets


@pytest.mark.parametrize("row", ["first", "last"])
def test_at_390_px_every_matrix_column_can_be_reached_with_its_header_in_view(wide_report, browser, row):
    """From the first row and from the last one (70 rows down), each of the 48 columns can be scrolled into
    view in the matrix's own box with its header still readable (sticky), the page itself never wider."""
    page, targets = wide_report
    browser.open(page.as_uri(), width=390, height=844)
    rows = js(browser, "return [].map.call(document.querySelectorAll('.matrix tbody tr'),function(tr){return tr.dataset.target;});")
    assert rows == natural_sorted(targets) and rows.index("ns-drifted2") < rows.index("ns-drifted10")
    reach = js(browser, MATRIX_REACH.replace("ROW", row))
    assert reach["columns"] == 48
    assert reach["scrolls"] and reach["unreached"] == [], reach
    assert reach["pageWidth"] <= 390, "the page itself scrolls sideways"


# For each column: scroll the matrix's own box so the column's header is just right of the sticky target
# column, then ask the DOM which element is at the header's centre: the header itself when it is reachable.
MATRIX_REACH = """
var box=document.querySelector('.matrix').parentElement,heads=[].slice.call(document.querySelectorAll('.matrix thead th[data-col]'));
var sticky=document.querySelector('.matrix thead th.target').getBoundingClientRect().width, unreached=[];
var rows=document.querySelectorAll('.matrix tbody tr'), row='ROW'==='last'?rows[rows.length-1]:rows[0];
box.scrollIntoView();
row.scrollIntoView({block:'nearest'});
heads.forEach(function(th,n){
  box.scrollLeft=Math.max(0,th.offsetLeft-sticky-4);
  var cell=row.querySelector('[data-col="'+n+'"]');
  var r=th.getBoundingClientRect(),b=box.getBoundingClientRect(),c=cell.getBoundingClientRect();
  var head=document.elementFromPoint(r.left+r.width/2,r.bottom-4),hit=document.elementFromPoint(c.left+c.width/2,c.top+c.height/2);
  if(!(r.left>=b.left-1&&r.right<=b.right+1&&r.top>=0&&head&&th.contains(head)&&hit&&cell.contains(hit)))
    unreached.push(th.textContent);
});
return {columns:heads.length,unreached:unreached,scrolls:getComputedStyle(box).overflowX!=='visible'&&box.scrollWidth>box.clientWidth,
        pageWidth:document.documentElement.scrollWidth};
"""
