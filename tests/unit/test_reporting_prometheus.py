"""prometheus_report: textfile-collector format written by prometheus_client, checked with its own parser."""
from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from railiance_conformance.finding import Status
from railiance_conformance.reporting import REPORTERS, prometheus_report
from railiance_conformance.reporting.prometheus_report import epoch_seconds, render
from tests.unit.reporting_samples import FINDINGS, every_part_run, finding, sample_run


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_registered() -> None:
    assert REPORTERS["prometheus"].filename == "railiance_conformance.prom"
    assert REPORTERS["prometheus"].render is prometheus_report.render


def test_parses_with_help_and_type() -> None:
    text = render(sample_run())
    parsed = families(text)
    assert set(parsed) == {"railiance_conformance_control_status", "railiance_conformance_findings",
                           "railiance_conformance_findings_by_severity", "railiance_conformance_run_verdict",
                           "railiance_conformance_run_timestamp_seconds",
                           "railiance_conformance_last_complete_run_timestamp_seconds",
                           "railiance_conformance_run_duration_seconds", "railiance_conformance_run_partial"}
    assert all(family.type == "gauge" and family.documentation for family in parsed.values())
    assert text.endswith("\n") and text.count("# HELP") == text.count("# TYPE") == 8


def test_one_series_per_control_and_target() -> None:
    samples = families(render(sample_run()))["railiance_conformance_control_status"].samples
    assert len(samples) == len(FINDINGS)
    by_key = {(s.labels["control_id"], s.labels["target"]): s for s in samples}
    drift = by_key[("host.swap.file", "ampere")]
    assert drift.value == 1
    assert drift.labels == {"control_id": "host.swap.file", "task": "RAIL-HO-WP-0004-T01", "layer": "S1",
                            "target": "ampere", "severity": "high", "status": "drift"}
    assert {s.labels["status"] for s in samples} == {s.value for s in Status}
    assert {s.labels["layer"] for s in samples} == {"S1", "S3", "S5"}


def test_totals_and_run_metrics() -> None:
    parsed = families(render(sample_run(partial=True)))
    totals = {s.labels["status"]: s.value for s in parsed["railiance_conformance_findings"].samples}
    assert totals == {"pass": 2, "drift": 3, "error": 2, "waived": 1, "pending": 1}
    assert parsed["railiance_conformance_run_timestamp_seconds"].samples[0].value == 1795750025.0
    assert parsed["railiance_conformance_run_partial"].samples[0].value == 1
    assert families(render(sample_run()))["railiance_conformance_run_partial"].samples[0].value == 0


def test_label_values_are_escaped() -> None:
    nasty = 'host "a"\\b\nc'
    text = render(sample_run(findings=(finding("host.swap.file", nasty, Status.DRIFT, 1, 2),)))
    assert 'target="host \\"a\\"\\\\b\\nc"' in text
    sample = families(text)["railiance_conformance_control_status"].samples[0]
    assert sample.labels["target"] == nasty


@pytest.mark.parametrize("value, written", [("plain", "plain"), ('a"b', 'a\\"b'), ("a\\b", "a\\\\b"),
                                            ("a\nb", "a\\nb"), ("a\x1bb", "a\\\\x1bb")])
def test_label_escaping(value, written) -> None:
    text = render(sample_run(findings=(finding("host.swap.file", value, Status.DRIFT),)))
    assert f'target="{written}"' in text
    sample = families(text)["railiance_conformance_control_status"].samples[0]
    assert sample.labels["target"] == value.replace("\x1b", "\\x1b")  # a control character as its escape


def test_duplicate_key_exposes_the_worse_status_once() -> None:
    twice = (FINDINGS[0], replace(FINDINGS[0], status=Status.DRIFT), replace(FINDINGS[0], status=Status.WAIVED))
    samples = families(render(sample_run(findings=twice)))["railiance_conformance_control_status"].samples
    assert [s.labels["status"] for s in samples] == ["drift"]


def test_empty_run_still_parses() -> None:
    parsed = families(render(sample_run(findings=(), finished_at="", started_at="")))
    assert parsed["railiance_conformance_control_status"].samples == []
    assert "railiance_conformance_run_timestamp_seconds" not in parsed


@pytest.mark.parametrize("text, expected", [("1970-01-01T00:01:00Z", 60.0), ("1970-01-01T00:01:00", 60.0),
                                            ("1970-01-01T01:01:00+01:00", 60.0), ("", None), ("soon", None)])
def test_epoch_seconds(text, expected) -> None:
    assert epoch_seconds(text) == expected


def test_no_sample_timestamps() -> None:
    for family in text_string_to_metric_families(render(sample_run())):
        assert all(sample.timestamp is None for sample in family.samples)


def test_gate_and_changes() -> None:
    parsed = families(render(every_part_run()))
    gate = parsed["railiance_conformance_gate_go"].samples
    assert [(s.labels, s.value) for s in gate] == [({"task": "RAIL-HO-WP-0004-T09"}, 0)]
    rows = parsed["railiance_conformance_gate_table_rows"].samples
    assert [(s.labels, s.value) for s in rows] == [
        ({"task": "RAIL-HO-WP-0004-T09", "table": "public.customers", "side": "source"}, 120)]  # restored: unknown
    changes = {s.labels["change"]: s.value for s in parsed["railiance_conformance_changes"].samples}
    assert changes == {"new_drift": 1, "fixed": 0, "persisting": 2, "status_changes": 1}


def test_the_process_registry_is_untouched() -> None:
    from prometheus_client import REGISTRY

    before = {m.name for m in REGISTRY.collect()}
    render(every_part_run())
    render(every_part_run())  # a second run registers its metrics again without a clash
    assert {m.name for m in REGISTRY.collect()} == before


def test_severity_is_a_label_and_every_status_severity_pair_is_counted() -> None:
    parsed = families(render(sample_run()))
    pairs = {(s.labels["status"], s.labels["severity"]): s.value
             for s in parsed["railiance_conformance_findings_by_severity"].samples}
    assert len(pairs) == 5 * 5 and pairs[("drift", "high")] == 1 and pairs[("drift", "medium")] == 1
    assert pairs[("drift", "low")] == 1 and pairs[("drift", "critical")] == 0 and pairs[("waived", "critical")] == 1
    verdict = {s.labels["verdict"]: s.value for s in parsed["railiance_conformance_run_verdict"].samples}
    assert verdict == {"conformant": 0, "drift": 1, "could_not_verify": 0}


def test_duration_and_the_last_complete_run() -> None:
    parsed = families(render(sample_run()))
    assert parsed["railiance_conformance_run_duration_seconds"].samples[0].value == 5.0
    assert parsed["railiance_conformance_last_complete_run_timestamp_seconds"].samples[0].value == 1795750025.0
    assert "railiance_conformance_last_complete_run_timestamp_seconds" not in families(render(sample_run(partial=True)))
    # a partial run with a history: the last complete run's time stays visible
    partial = families(render(every_part_run()))          # partial, its trend's earlier run complete
    assert partial["railiance_conformance_last_complete_run_timestamp_seconds"].samples[0].value == \
        epoch_seconds("2026-11-26T03:27:05Z")


FREE_TEXT = ("reason", "message", "detail", "error", "observed", "expected")


def test_no_label_takes_free_text() -> None:
    """Every label is an identifier (control, task, layer, target, table) or from a closed set; a finding's
    reason, value or message never becomes a label (a new series per text)."""
    parsed = families(render(every_part_run()))
    closed = {"status": {s.value for s in Status} | {"drift", "fixed"},
              "severity": set(prometheus_report.SEVERITIES), "verdict": {"conformant", "drift", "could_not_verify"},
              "side": {"source", "restored"}, "change": {"new_drift", "fixed", "persisting", "status_changes"}}
    for family in parsed.values():
        for sample in family.samples:
            assert not set(sample.labels) & set(FREE_TEXT), (family.name, sample.labels)
            for name, allowed in closed.items():
                if name in sample.labels:
                    assert sample.labels[name] in allowed, (family.name, sample.labels)
            assert all(" " not in v or name == "state" for name, v in sample.labels.items()), sample.labels


def _gauge_series(run) -> str:
    """The control_status family as a prometheus_client Gauge writes it (how the reporter wrote it before)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    from railiance_conformance.reporting.prometheus_report import _label, severity_label

    registry = CollectorRegistry()
    gauge = Gauge("railiance_conformance_control_status", "1 for each control and target, labelled with its current "
                  "status and the control's severity.", ("control_id", "task", "layer", "target", "severity", "status"),
                  registry=registry)
    for f in run.one_per_key():
        gauge.labels(_label(f.control_id), _label(f.task), _label(f.layer), _label(f.target),
                     severity_label(f.severity), f.status.value).set(1)
    return generate_latest(registry).decode()


@pytest.mark.parametrize("run", [sample_run(), every_part_run(), sample_run(findings=(
    # two targets that print alike ("a\x1b" is shown as a\x1b): one series, as a Gauge keeps one child per label set
    finding("host.swap.file", "a\x1b", Status.PASS), finding("host.swap.file", "a\\x1b", Status.PASS),
    finding("host.swap.file", "b", Status.DRIFT, severity="odd")))])
def test_the_control_series_are_what_a_gauge_writes(run) -> None:
    text = render(run)
    series = _gauge_series(run)
    assert series in text and text.startswith(series)
