"""The one typed Run record and the one status order, as every reporter, the history, the claims
table and the gate read them."""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sqlite3
import xml.etree.ElementTree as ET

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from railiance_conformance.claims import DRIFTED, PASSING_NOT_DONE, UNCHECKED, UNVERIFIED, VERIFIED, _verdict
from railiance_conformance.finding import LOUDEST_FIRST, Status
from railiance_conformance.history import History
from railiance_conformance.reporting import Run, load_reporters
from railiance_conformance.reporting.html_report import render as render_html
from railiance_conformance.reporting.terminal import render_summary
from tests.unit.reporting_samples import FINDINGS, every_part_run, finding, sample_run


def test_the_status_order_names_every_status_once_loudest_first() -> None:
    assert sorted(LOUDEST_FIRST) == sorted(Status) and len(LOUDEST_FIRST) == len(Status)
    assert [s.loudness for s in LOUDEST_FIRST] == [4, 3, 2, 1, 0]
    assert {s for s in Status if s.holds} == {Status.PASS, Status.WAIVED}


def test_run_is_frozen_and_has_no_untyped_bag() -> None:
    run = sample_run()
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.partial = True  # type: ignore[misc]
    assert "meta" not in Run.__dataclass_fields__
    with pytest.raises(TypeError):
        Run("r", "", "", (), meta={})  # type: ignore[call-arg]


@pytest.mark.parametrize("first, second", list(itertools.permutations(Status, 2)))
def test_a_key_recorded_twice_keeps_its_louder_status_everywhere(tmp_path, first, second) -> None:
    twice = (finding("host.swap.file", "a", first), finding("host.swap.file", "a", second))
    louder = max(first, second, key=lambda s: s.loudness)
    run = sample_run(findings=twice)
    assert [f.status for f in run.one_per_key()] == [louder]
    history = History(tmp_path / "h.sqlite")
    history.record(run)
    assert history.statuses(run.run_id) == {"host.swap.file@a": louder.value}
    prom = text_string_to_metric_families(load_reporters()["prometheus"].render(run))
    series = next(f for f in prom if f.name == "railiance_conformance_control_status").samples
    assert [s.labels["status"] for s in series] == [louder.value]


def test_terminal_and_html_list_problems_loudest_first() -> None:
    shuffled = tuple(reversed(FINDINGS))
    text = render_summary(sample_run(findings=shuffled), width=200)
    rows = [line.split(" ", 1)[0] for line in text.splitlines() if line[:1].isalpha()]  # a block's status column
    shown = [Status(s) for s in rows if s in {st.value for st in Status}]
    assert shown == sorted(shown, key=LOUDEST_FIRST.index) and shown[0] is Status.DRIFT
    html = render_html(sample_run(findings=shuffled))
    sections = re.findall(r'<h2 id="(\w+)">', html)
    assert sections == [s.value for s in LOUDEST_FIRST]


@pytest.mark.parametrize("statuses, verdict", [
    ([Status.PASS, Status.ERROR, Status.DRIFT], DRIFTED), ([Status.PASS, Status.ERROR], UNVERIFIED),
    ([Status.PENDING], UNCHECKED), ([], UNCHECKED), ([Status.PASS, Status.WAIVED, Status.PENDING], VERIFIED)])
def test_a_task_claimed_done_takes_its_loudest_findings_verdict(statuses, verdict) -> None:
    assert _verdict(True, False, statuses) == verdict


def test_a_task_not_done_whose_checks_all_hold_is_passing() -> None:
    assert _verdict(False, False, [Status.PASS, Status.WAIVED, Status.PENDING]) == PASSING_NOT_DONE


def test_every_reporter_shows_the_typed_parts() -> None:
    run = every_part_run()
    reporters = load_reporters()
    document = json.loads(reporters["json"].render(run))["run"]
    assert document["gate"]["verdict"] == "NO-GO" and document["claims"][0]["verdict"] == DRIFTED
    assert document["diff"]["from_run"] == "run-a" and document["output_failures"] == [
        "reports/history.sqlite: disk full (ENOSPC)"]
    assert document["history"]["host.swap.file@ampere"] == {
        "first_seen_run": "run-a", "first_seen_at": "2026-11-26T03:27:00Z", "last_seen_at": "2026-11-27T03:27:00Z",
        "consecutive_drift": 2}
    markdown = reporters["markdown"].render(run)
    assert markdown.startswith("## Cutover gate `RAIL-HO-WP-0004-T09`: **NO-GO**\n\n- gate.backup.recent")
    assert "| `public.customers` | 120 | – |" in markdown and "drifting since" in markdown
    assert "| T01 Swap | **claimed done, drifted** |" in markdown
    assert "run deadline of 3 s exceeded" in markdown and "disk full (ENOSPC)" in markdown
    html = reporters["html"].render(run)
    assert 'id="gate" class="drift"' in html and 'id="diff"' in html and 'id="output-failures"' in html
    properties = {p.get("name"): p.get("value") for p in ET.fromstring(reporters["junit"].render(run)).iter("property")}
    assert properties["gate.verdict"] == "NO-GO" and properties["since_previous.from_run"] == "run-a"
    assert properties["gate.rows.public.customers"] == "source 120, restored None"
    assert properties["output_failure.0"] == "reports/history.sqlite: disk full (ENOSPC)"
    annotations = next(yaml.safe_load_all(reporters["policyreport"].render(run)))["metadata"]["annotations"]
    assert annotations["railiance.io/gate-verdict"] == "NO-GO" and annotations["railiance.io/since-previous-new-drift"] == "1"
    terminal = render_summary(run, width=200)
    assert "Workplan claims vs. reality" in terminal and "claimed done, drifted" in terminal
    assert "since the previous run: 1 new drift, 0 fixed, 2 persisting, 1 status changes" in terminal


def test_the_history_stores_the_parts_as_the_json_report_shows_them(tmp_path) -> None:
    run = dataclasses.replace(every_part_run(), diff=None, history=None)  # as publish records it
    History(tmp_path / "h.sqlite").record(run)
    with sqlite3.connect(tmp_path / "h.sqlite") as con:
        stored = json.loads(con.execute("SELECT meta FROM runs").fetchone()[0])
    assert stored == json.loads(json.dumps(run.details())) and stored["gate"]["task"] == "RAIL-HO-WP-0004-T09"


@pytest.mark.parametrize("summary, partial, code", [
    ({"pass": 3, "drift": 1, "error": 1, "pending": 1}, False, 1),   # drift is the loudest status
    ({"pass": 3, "error": 1, "waived": 1}, False, 2),
    ({"pass": 3, "pending": 2, "waived": 1}, False, 0),               # pending and waived do not fail a run
    ({"pass": 3}, True, 2),                                           # interrupted: could not verify the rest
    ({"pass": 3, "drift": 1}, True, 1),
])
def test_nightlys_exit_code_follows_the_loudest_status(summary, partial, code):
    from railiance_conformance.nightly import verdict

    document = {"summary": summary, "run": {"partial": partial}, "findings": [{}]}
    assert verdict(document) == code
    assert verdict({**document, "findings": []}) == verdict(None) == 2  # no finding: nothing was verified
