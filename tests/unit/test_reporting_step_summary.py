"""CI-native summaries ($GITHUB_STEP_SUMMARY, appended), the history's trend query and each control's feature text."""
from __future__ import annotations

from dataclasses import replace

from railiance_conformance.finding import Status
from railiance_conformance.history import History
from railiance_conformance.reporting.features import feature_texts
from railiance_conformance.reporting.output import publish
from tests.unit.reporting_samples import FINDINGS, finding, sample_run


def test_the_markdown_summary_is_appended_to_the_step_summary(tmp_path, monkeypatch) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("## an earlier step's summary\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    first = publish(sample_run("run-a"), tmp_path / "r", ["json"], None)   # markdown not among the formats
    second = publish(sample_run("run-b"), tmp_path / "r", ["json"], None)
    assert first.failures == second.failures == ()
    text = summary.read_text()
    assert text.startswith("## an earlier step's summary\n")                # appended, never replaced
    assert text.count("## Railiance conformance: DRIFT — 3 drift, 2 could not verify") == 2
    assert text.index("Run `run-a`") < text.index("Run `run-b`")
    assert not (tmp_path / "r" / "summary.md").exists()


def test_without_the_variable_nothing_is_written_and_a_failure_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert publish(sample_run(), tmp_path / "r", ["json"], None).failures == ()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing-dir" / "summary.md"))
    failures = publish(sample_run("run-c"), tmp_path / "r", ["json"], None).failures
    assert [(f.path, f.cause) for f in failures] == [(str(tmp_path / "missing-dir" / "summary.md"),
                                                      "No such file or directory (ENOENT)")]


def test_the_trend_lists_the_last_runs_and_each_keys_status(tmp_path) -> None:
    history = History(tmp_path / "h.sqlite")
    drift = FINDINGS[1]
    for n, status in enumerate([Status.PASS, Status.DRIFT, Status.DRIFT]):
        others = (FINDINGS[0],) if n else ()          # FINDINGS[0] is checked from run-1 on
        history.record(sample_run(f"run-{n}", findings=(replace(drift, status=status), *others)))
    trend = history.trend(2)
    assert [r.run_id for r in trend.runs] == ["run-1", "run-2"]
    assert trend.statuses[drift.key] == ("drift", "drift")
    assert trend.statuses[FINDINGS[0].key] == ("pass", "pass")
    assert history.trend(10).statuses[FINDINGS[0].key] == (None, "pass", "pass")   # not checked in run-0
    assert trend.to_dict()["runs"][0]["counts"]["drift"] == 1


def test_feature_texts_come_from_the_line_the_finding_names(tmp_path) -> None:
    from railiance_conformance.checks import bundled_plan

    spec = bundled_plan().specs["host.swap.file"]
    bundled = finding("host.swap.file", "a", Status.PASS, evidence={"expected_from": {"size_gib": spec.source}})
    feature = tmp_path / "features" / "mine.feature"
    feature.parent.mkdir()
    feature.write_text("Feature: x\n  Scenario: host.swappiness.live — my own\n    Then vm.swappiness is 30\n")
    own = finding("host.swappiness.live", "a", Status.DRIFT, 30, 60,
                  evidence={"expected_from": {"value": "features/mine.feature:3"}})
    texts = feature_texts((bundled, own), roots=[tmp_path])
    assert texts["host.swap.file"].sentence == spec.sentence and texts["host.swap.file"].source == spec.source
    assert (texts["host.swappiness.live"].scenario, texts["host.swappiness.live"].sentence) == \
        ("host.swappiness.live — my own", "vm.swappiness is 30")
    assert "host.limits.nofile" not in feature_texts((FINDINGS[4],))  # no such control: no text, no error


def test_reports_are_readable_by_another_user(tmp_path) -> None:
    """node_exporter's textfile collector runs as its own user: the .prom file (every report) is 0644."""
    import stat

    published = publish(sample_run("run-a"), tmp_path / "r", ["prometheus", "json", "markdown"], None)
    assert published.failures == ()
    for path in published.written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    fallback = tmp_path / "f" / "x.prom"
    from railiance_conformance.reporting import atomic_write
    atomic_write(fallback, "x 1\n")
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o644
