"""findings.schema.json describes exactly what json_report.to_document writes."""
from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from railiance_conformance.finding import Status
from railiance_conformance.reporting import Run, json_report
from tests.unit.reporting_samples import FINDINGS, every_part_run, sample_run

SCHEMA_PATH = Path(json_report.__file__).parent / "schemas" / "findings.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def rendered(run) -> dict:
    return json.loads(json_report.render(run))


def test_sample_covers_every_status_layer_and_several_targets() -> None:
    assert {f.status for f in FINDINGS} == set(Status)
    assert {f.layer for f in FINDINGS} == {"S1", "S3", "S5"}
    assert len({f.target for f in FINDINGS}) >= 3


@pytest.mark.parametrize("run", [
    sample_run(),
    sample_run(partial=True),
    sample_run(findings=()),
    sample_run(workplan=None),
    every_part_run(),
], ids=["full", "partial", "empty", "no-workplan", "every-part"])
def test_rendered_reports_validate(validator, run) -> None:
    validator.validate(rendered(run))


def test_every_part_of_the_run_is_described(validator) -> None:
    run = every_part_run()
    described = set(validator.schema["properties"]["run"]["properties"])
    fields = {"id" if name == "run_id" else name for name in Run.__dataclass_fields__} - {"findings"}
    assert described == fields
    assert set(rendered(run)["run"]) == fields  # every part set: every part written
    assert set(rendered(sample_run())["run"]) == {"id", "started_at", "finished_at", "partial", "targets", "workplan"}


def test_every_finding_field_is_described(validator) -> None:
    described = set(validator.schema["$defs"]["finding"]["properties"])
    assert set(rendered(sample_run())["findings"][0]) == described


def test_non_json_values_render_and_validate(validator) -> None:
    odd = replace(FINDINGS[1], expected=("tuple", 1), observed={"set": frozenset({1})},
                  evidence=(("path", Path("/swapfile")),))
    document = rendered(sample_run(findings=(odd,)))
    validator.validate(document)
    assert document["findings"][0]["expected"] == ["tuple", 1]


@pytest.mark.parametrize("breakage", [
    lambda d: d.pop("summary"),
    lambda d: d.update(schema_version=2),
    lambda d: d["summary"].update(drift=-1),
    lambda d: d["summary"].update(unknown=1),
    lambda d: d["run"].update(partial="no"),
    lambda d: d["run"].pop("id"),
    lambda d: d["findings"][0].update(status="failed"),
    lambda d: d["findings"][0].update(layer="S9"),
    lambda d: d["findings"][0].update(severity="urgent"),
    lambda d: d["findings"][0].pop("remediation"),
    lambda d: d["findings"][0].update(extra=1),
    lambda d: d["findings"][0].update(evidence=[["path", "/swapfile"]]),
    lambda d: d["findings"][0].update(duration_s="fast"),
    lambda d: d["run"].update(meta={}),
    lambda d: d["run"]["gate"].update(verdict="maybe"),
    lambda d: d["run"]["diff"].pop("fixed"),
    lambda d: d["run"]["claims"][0].update(verdict="fine"),
    lambda d: d["run"]["history"]["host.swap.file@ampere"].update(consecutive_drift=-1),
], ids=["no-summary", "version", "negative-count", "unknown-status-count", "partial-type", "no-run-id",
        "bad-status", "bad-layer", "bad-severity", "no-remediation", "extra-field", "evidence-list",
        "duration-type", "unknown-run-field", "gate-verdict", "diff-field-missing", "claim-verdict",
        "negative-streak"])
def test_invalid_documents_fail(validator, breakage) -> None:
    document = copy.deepcopy(rendered(every_part_run()))
    validator.validate(copy.deepcopy(document))
    breakage(document)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(document)


def test_the_published_schema_names_the_layers_and_severities_of_levels():
    """findings.schema.json is read outside the suite, so it spells the enums out; they are levels.py's."""
    from railiance_conformance.levels import LAYERS, SEVERITIES

    schema = json.loads(SCHEMA_PATH.read_text())
    text = json.dumps(schema)
    assert f'"layer": {{"enum": {json.dumps(list(LAYERS))}}}' in text
    assert f'"severity": {{"enum": {json.dumps(list(SEVERITIES))}}}' in text
