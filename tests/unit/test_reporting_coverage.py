"""Every report format shows, per workplan task, how many Done-when clauses the run verified (``Run.coverage``):
terminal and Markdown list the clauses not verified, HTML all of them, JSON the whole
record, JUnit and the PolicyReport a per-task summary, Prometheus a gauge per task and state."""
from __future__ import annotations

from dataclasses import replace

import yaml

from railiance_conformance.claims import Claim
from railiance_conformance.coverage import ClauseCoverage, TaskCoverage
from railiance_conformance.reporting import load_reporters
from railiance_conformance.reporting.terminal import render_summary
from tests.unit.reporting_samples import WORKPLAN, sample_run

COVERAGE = (TaskCoverage(f"{WORKPLAN}-T01", (
    ClauseCoverage("Convergence runs without errors", "not verifiable read-only", (), "needs a converge"),
    ClauseCoverage("free -h on CoulombCore shows 4 GB swap", "verified", ("host.swap.total",)),
    ClauseCoverage("Goss verify passes", "drifted", ("repo.goss.swap",), "goss is not run"))),)


def every_part_run():
    return sample_run(coverage=COVERAGE)

SUMMARY = "1 of 3 verified, 1 not verifiable read-only"


def rendered(name: str, run) -> str:
    return load_reporters()[name].render(run)


def test_every_format_shows_the_clauses_verified_per_task():
    run = every_part_run()
    assert SUMMARY in rendered("markdown", run) and "Goss verify passes (drifted)" in rendered("markdown", run)
    html = rendered("html", run)
    assert SUMMARY in html and "free -h on CoulombCore shows 4 GB swap: <b>verified</b>" in html
    import json

    import jsonschema

    from tests.unit.test_reporting_findings_schema import SCHEMA_PATH
    document = json.loads(rendered("json", run))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    coverage = document["run"]["coverage"]
    assert coverage[0]["verified"] == 1 and coverage[0]["total"] == 3 and coverage[0]["not_verifiable"] == 1
    assert f'name="done_when.{WORKPLAN}-T01" value="{SUMMARY}"' in rendered("junit", run)
    annotations = next(yaml.safe_load_all(rendered("policyreport", run)))["metadata"]["annotations"]
    assert annotations[f"railiance.io/done-when-{WORKPLAN}-T01"] == SUMMARY
    prom = rendered("prometheus", run)
    assert f'railiance_conformance_done_when_clauses{{state="verified",task="{WORKPLAN}-T01"}} 1.0' in prom
    assert f'railiance_conformance_done_when_clauses{{state="not verifiable read-only",task="{WORKPLAN}-T01"}} 1.0' in prom


def test_the_terminal_claims_table_shows_the_clauses_not_verified():
    run = replace(every_part_run(), claims=(Claim(f"{WORKPLAN}-T01", "Swap", "done", False, "claimed done, drifted",
                                                  {"drift": 1}),))
    text = render_summary(run, width=120)
    assert f"Done when: {SUMMARY}" in text
    assert "- Goss verify passes (drifted)" in text and "- Convergence runs without errors (not verifiable read-only)" in text
    assert "- free -h" not in text


def test_without_a_workplan_no_format_mentions_coverage():
    run = sample_run()
    for name in ("markdown", "html", "junit", "prometheus", "policyreport", "json"):
        assert "done_when" not in rendered(name, run) and "Done when" not in rendered(name, run), name
