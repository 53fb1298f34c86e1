"""policyreport_report: ClusterPolicyReports, one per target, that both upstream v1alpha2 CRDs accept
(validated and pruned as the apiserver does, by the API stand-in's ``validation``), each under 1 MiB."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.finding import Status
from railiance_conformance.reporting import REPORTERS, policyreport_report
from railiance_conformance.reporting.policyreport_report import (
    documents,
    message,
    object_name,
    render,
    severity_for,
    timestamp,
)
from railiance_testbed.kubeapi import validation
from tests.unit.reporting_samples import FINDINGS, finding, sample_run

CRDS = Path(__file__).parents[1] / "fixtures" / "policyreport-crds"
FLAVOURS = ("kyverno", "wg-policy-prototypes")


def crd_schema(flavour: str) -> dict:
    crd = next(d for d in yaml.safe_load_all((CRDS / flavour / "wgpolicyk8s.io_clusterpolicyreports.yaml").read_text())
               if d)
    return validation.crd_schema(crd, "v1alpha2")


@pytest.fixture(scope="module", params=FLAVOURS)
def schema(request) -> dict:
    return crd_schema(request.param)


@pytest.fixture(scope="module")
def reports() -> list[dict]:
    return list(yaml.safe_load_all(render(sample_run())))


def result_of(reports: list[dict], policy: str, target: str) -> dict:
    return next(r for doc in reports for r in doc["results"] if r["policy"] == policy and r["properties"]["target"] == target)


def test_registered() -> None:
    assert REPORTERS["policyreport"].filename == "policyreport.yaml"
    assert REPORTERS["policyreport"].render is policyreport_report.render


def test_the_vendored_crds_differ_in_their_severities() -> None:
    severity = lambda flavour: crd_schema(flavour)["properties"]["results"]["items"]["properties"]["severity"]["enum"]
    assert severity("kyverno") == ["critical", "high", "low", "medium", "info"]
    assert severity("wg-policy-prototypes") == ["high", "low", "medium"]
    assert (CRDS / "kyverno" / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert (CRDS / "wg-policy-prototypes" / "LICENSE").read_text().lstrip().startswith("Apache License")


@pytest.mark.parametrize("run", [sample_run(), sample_run(partial=True)], ids=["full", "partial"])
def test_every_report_is_valid_and_loses_no_field_to_pruning(schema, run) -> None:
    for doc in yaml.safe_load_all(render(run)):
        assert validation.errors(doc, schema) == []
        assert validation.prune(doc, schema) == doc      # the apiserver would drop nothing


def test_critical_is_refused_by_the_original_crd_so_the_file_uses_the_common_enum(reports) -> None:
    critical = finding("host.swap.file", "a", Status.DRIFT, 1, 2, severity="critical")
    old = documents(sample_run(findings=(critical,)), ("critical", "high", "medium", "low", "info"))[0]
    assert validation.errors(old, crd_schema("wg-policy-prototypes")) == [
        'results[0].severity: Unsupported value: "critical": supported values: "high", "low", "medium"']
    doc = yaml.safe_load(render(sample_run(findings=(critical,))))
    assert doc["results"][0]["severity"] == "high" and doc["results"][0]["properties"]["severity"] == "critical"


@pytest.mark.parametrize("severity, allowed, expected", [
    ("critical", ("high", "medium", "low"), "high"), ("info", ("high", "medium", "low"), "low"),
    ("critical", ("critical", "high", "low", "medium", "info"), "critical"), ("HIGH", ("high",), "high"),
    ("urgent", ("high", "medium", "low"), "low"), ("medium", ("high", "low", "medium"), "medium")])
def test_severity_for(severity, allowed, expected) -> None:
    assert severity_for(severity, allowed) == expected


def test_one_report_per_target_labelled_as_the_suites_own(reports) -> None:
    assert [d["metadata"]["name"] for d in reports] == [
        "railiance-conformance-ampere", "railiance-conformance-coulombcore", "railiance-conformance-railiance-prod",
        "railiance-conformance-volta"]
    for doc in reports:
        assert doc["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and doc["kind"] == "ClusterPolicyReport"
        assert doc["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "railiance-conformance"}
        assert doc["metadata"]["annotations"]["railiance.io/run-id"] == "run-b"
        assert {r["properties"]["target"] for r in doc["results"]} == {doc["scope"]["name"]}
    assert reports[2]["scope"] == {"kind": "Cluster", "name": "railiance-prod"}


@pytest.mark.parametrize("target, name", [("ns-drifted1", "railiance-conformance-ns-drifted1"),
                                          ("Foo_Bar", "railiance-conformance-foo-bar-"),
                                          ("x" * 300, "railiance-conformance-" + "x" * 180 + "-")])
def test_object_names_are_dns_subdomains(target, name) -> None:
    made = object_name(target)
    assert made.startswith(name) and len(made) <= 253
    assert all(c.isalnum() and c.islower() or c.isdigit() or c in "-." for c in made)


def test_a_target_too_big_for_one_object_is_split_into_parts_each_under_1_mib() -> None:
    big = tuple(finding(f"host.c{i}", "huge", Status.DRIFT, "a", "x " * 4000, evidence={"e": "y " * 4000})
                for i in range(100))
    docs = documents(sample_run(findings=big))
    sizes = [len(json.dumps(d).encode()) for d in docs]
    assert len(docs) > 1 and max(sizes) < 1_000_000
    assert [d["metadata"]["name"] for d in docs][:2] == ["railiance-conformance-huge", "railiance-conformance-huge-part2"]
    assert sum(len(d["results"]) for d in docs) == 100
    assert docs[0]["metadata"]["annotations"]["railiance.io/part"] == f"1/{len(docs)}"


def test_a_long_value_is_cut_with_a_marker() -> None:
    long = finding("host.c", "h", Status.DRIFT, "a", "word " * 5000)
    observed = documents(sample_run(findings=(long,)))[0]["results"][0]["properties"]["observed"]
    assert len(observed) < 8300 and observed.endswith("(cut; whole in findings.json)")


@pytest.mark.parametrize("status, expected", [(Status.PASS, "pass"), (Status.DRIFT, "fail"), (Status.ERROR, "error"),
                                              (Status.WAIVED, "skip"), (Status.PENDING, "skip")])
def test_result_mapping(status, expected) -> None:
    item = yaml.safe_load(render(sample_run(findings=(finding("host.swap.file", "a", status, 1, 2),))))["results"][0]
    assert item["result"] == expected
    assert item["scored"] is (status not in (Status.WAIVED, Status.PENDING))


def test_result_fields(reports) -> None:
    item = result_of(reports, "host.swap.file", "ampere")
    assert (item["policy"], item["rule"], item["category"], item["severity"]) == (
        "host.swap.file", "RAIL-HO-WP-0004-T01", "S1", "high")
    assert item["resources"] == [{"kind": "Host", "name": "ampere"}]
    assert item["timestamp"] == {"seconds": 1795750021, "nanos": 0}
    assert "expected" in item["message"] and "observed" in item["message"] and "fix: railiance-infra" in item["message"]
    assert result_of(reports, "cluster.backup.schedule", "railiance-prod")["resources"][0]["kind"] == "Cluster"


def test_properties_are_strings_only(reports) -> None:
    for doc in reports:
        for item in doc["results"]:
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in item["properties"].items())
    props = result_of(reports, "host.swappiness.live", "ampere")["properties"]
    assert props["expected"] == "10" and props["observed"] == "60" and props["status"] == "drift"
    assert json.loads(result_of(reports, "host.swap.file", "ampere")["properties"]["observed"]) == {
        "mode": "0644", "size_bytes": 2147483648}
    assert "observed" not in result_of(reports, "host.swappiness.live", "volta")["properties"]


def test_summary_counts_per_report(reports) -> None:
    ampere = reports[0]
    assert ampere["summary"] == {"pass": 0, "fail": 3, "warn": 0, "error": 0, "skip": 0}
    total = {k: sum(d["summary"][k] for d in reports) for k in ampere["summary"]}
    assert total == {"pass": 2, "fail": 3, "warn": 0, "error": 2, "skip": 2}


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


@pytest.mark.parametrize("field, value, error", [
    ("result", "drift", 'results[0].result: Unsupported value: "drift"'),
    ("scored", "yes", "results[0].scored: Invalid value"),
    ("properties", {"expected": 10}, "results[0].properties[expected]: Invalid value")])
def test_the_stand_ins_validation_refuses_values_outside_the_crd(schema, reports, field, value, error) -> None:
    broken = {**reports[0], "results": [{**reports[0]["results"][0], field: value}]}
    assert any(e.startswith(error) for e in validation.errors(broken, schema)), validation.errors(broken, schema)
    policyless = {**reports[0], "results": [{k: v for k, v in reports[0]["results"][0].items() if k != "policy"}]}
    assert validation.errors(policyless, schema) == ["results[0].policy: Required value"]


def test_pruning_drops_undeclared_fields(schema, reports) -> None:
    extra = {**reports[0], "status": {"x": 1}, "results": [{**reports[0]["results"][0], "detail": "x"}]}
    pruned = validation.prune(extra, schema)
    assert "status" not in pruned and "detail" not in pruned["results"][0]
    assert pruned["metadata"] == reports[0]["metadata"]


def test_an_object_over_etcds_limit_is_too_large() -> None:
    assert validation.too_large({"a": "x" * 1_600_000}) and not validation.too_large({"a": "x" * 1_000_000})


def test_no_report_for_a_run_without_findings() -> None:
    assert render(replace(sample_run(), findings=())) == ""


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["é", "—", "\U0001f600", "\x00", "\x1f", "\x7f", '"', "\\", "\u2028"])
_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.integers() | st.floats() | _TEXT,
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                       max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_the_size_bound_is_never_below_the_size(value) -> None:
    from railiance_conformance.reporting.policyreport_report import _size, _size_bound

    assert _size_bound(value) >= _size(value)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), _TEXT, _TEXT), min_size=1, max_size=12),
       st.integers(2500, 9000))
def test_parts_are_cut_as_if_each_result_were_sized(findings, max_bytes) -> None:
    """The split into parts is the one of sizing every result (documents() skips that when all fit)."""
    from railiance_conformance.reporting import policyreport_report as module

    run = sample_run(findings=tuple(finding("host.swap.file", target, Status.DRIFT, "x" * 50, observed, reason=reason)
                                    for target, observed, reason in findings))
    fitting = module._size_bound
    try:
        module._size_bound = lambda value: max_bytes * 2  # never "all fit": every result sized one by one
        each = module.documents(run, max_bytes=max_bytes)
    finally:
        module._size_bound = fitting
    assert module.documents(run, max_bytes=max_bytes) == each
