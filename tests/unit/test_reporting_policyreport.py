"""policyreport_report: a ClusterPolicyReport that the vendored v1alpha2 CRD schema accepts."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from railiance_conformance.finding import Status
from railiance_conformance.reporting import REPORTERS, policyreport_report
from railiance_conformance.reporting.policyreport_report import message, render, timestamp
from tests.unit.reporting_samples import FINDINGS, finding, sample_run

SCHEMA_PATH = Path(policyreport_report.__file__).parent / "schemas" / "policyreport-v1alpha2.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def report() -> dict:
    return yaml.safe_load(render(sample_run()))


def result_of(report: dict, policy: str, target: str) -> dict:
    return next(r for r in report["results"] if r["policy"] == policy and r["properties"]["target"] == target)


def test_registered() -> None:
    assert REPORTERS["policyreport"].filename == "policyreport.yaml"
    assert REPORTERS["policyreport"].render is policyreport_report.render


def test_vendored_schema_is_the_v1alpha2_crd(schema) -> None:
    result = schema["properties"]["results"]["items"]["properties"]
    assert result["severity"]["enum"] == ["critical", "high", "low", "medium", "info"]
    assert result["result"]["enum"] == ["pass", "fail", "warn", "error", "skip"]
    assert "v1alpha2" in (SCHEMA_PATH.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("run", [sample_run(), sample_run(partial=True), sample_run(findings=())],
                         ids=["full", "partial", "empty"])
def test_validates_against_the_crd_schema(schema, run) -> None:
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(render(run)))


def test_uses_only_fields_the_crd_declares(schema, report) -> None:
    """The API server prunes unknown fields of a structural schema: none may be lost."""
    assert set(report) <= set(schema["properties"])
    declared = schema["properties"]["results"]["items"]["properties"]
    for item in report["results"]:
        assert set(item) <= set(declared)
        for resource in item["resources"]:
            assert set(resource) <= set(schema["$defs"]["objectReference"]["properties"])


def test_header(report) -> None:
    assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and report["kind"] == "ClusterPolicyReport"
    assert report["metadata"]["name"] == "railiance-conformance"
    assert report["metadata"]["annotations"]["railiance.io/run-id"] == "run-b"


@pytest.mark.parametrize("status, expected", [(Status.PASS, "pass"), (Status.DRIFT, "fail"), (Status.ERROR, "error"),
                                              (Status.WAIVED, "skip"), (Status.PENDING, "skip")])
def test_result_mapping(status, expected) -> None:
    item = yaml.safe_load(render(sample_run(findings=(finding("host.swap.file", "a", status, 1, 2),))))["results"][0]
    assert item["result"] == expected
    assert item["scored"] is (status not in (Status.WAIVED, Status.PENDING))


def test_result_fields(report) -> None:
    item = result_of(report, "host.swap.file", "ampere")
    assert (item["policy"], item["rule"], item["category"], item["severity"]) == (
        "host.swap.file", "RAIL-HO-WP-0004-T01", "S1", "high")
    assert item["resources"] == [{"kind": "Host", "name": "ampere"}]
    assert item["timestamp"] == {"seconds": 1795750021, "nanos": 0}
    assert "expected" in item["message"] and "observed" in item["message"] and "fix: railiance-infra" in item["message"]
    assert result_of(report, "cluster.backup.schedule", "railiance-prod")["resources"][0]["kind"] == "Cluster"
    assert {r["category"] for r in report["results"]} == {"S1", "S3", "S5"}


def test_properties_are_strings_only(report) -> None:
    for item in report["results"]:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in item["properties"].items())
    props = result_of(report, "host.swappiness.live", "ampere")["properties"]
    assert props["expected"] == "10" and props["observed"] == "60" and props["status"] == "drift"
    assert json.loads(result_of(report, "host.swap.file", "ampere")["properties"]["observed"]) == {
        "mode": "0644", "size_bytes": 2147483648}
    assert "observed" not in result_of(report, "host.swappiness.live", "volta")["properties"]


def test_summary_counts(report) -> None:
    assert report["summary"] == {"pass": 2, "fail": 3, "warn": 0, "error": 2, "skip": 2}


@pytest.mark.parametrize("severity, expected", [("critical", "critical"), ("HIGH", "high"), ("info", "info"),
                                                ("urgent", "info")])
def test_severity_mapping(severity, expected) -> None:
    f = finding("host.swap.file", "a", Status.DRIFT, 1, 2, severity=severity)
    assert yaml.safe_load(render(sample_run(findings=(f,))))["results"][0]["severity"] == expected


def test_messages_per_status() -> None:
    by_status = {f.status: message(f) for f in FINDINGS[:7] + FINDINGS[7:8]}
    assert "could not verify: ssh: connect to host volta" in by_status[Status.ERROR]
    assert "waived: RFC-12" in by_status[Status.WAIVED] and "pending: task T09" in by_status[Status.PENDING]


def test_yaml_keeps_ambiguous_strings_strings() -> None:
    f = finding("host.swap.file", "yes", Status.DRIFT, "on", "0600", evidence={"n": 1})
    item = yaml.safe_load(render(sample_run(findings=(f,))))["results"][0]
    assert item["resources"][0]["name"] == "yes"
    assert item["properties"]["expected"] == "on" and item["properties"]["observed"] == "0600"


@pytest.mark.parametrize("text, expected", [("1970-01-01T00:00:01.5Z", {"seconds": 1, "nanos": 500_000_000}),
                                            ("2026-11-27T03:27:01Z", {"seconds": 1795750021, "nanos": 0}),
                                            ("", None), ("later", None)])
def test_timestamp(text, expected) -> None:
    assert timestamp(text) == expected


@pytest.mark.parametrize("field, value", [("result", "drift"), ("severity", "urgent"), ("scored", "yes")])
def test_schema_rejects_values_outside_the_crd(schema, report, field, value) -> None:
    broken = {**report, "results": [{**report["results"][0], field: value}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def test_schema_rejects_non_string_properties(schema, report) -> None:
    broken = {**report, "results": [{**report["results"][0], "properties": {"expected": 10}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)
