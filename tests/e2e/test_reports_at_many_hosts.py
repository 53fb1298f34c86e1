"""The reports of one run on 80 namespace hosts (58 conformant, 20 drifted: 15 one way and 5 with a different
swap size; 2 listed but down), as an operator reads them: summary.md names every drifted control (grouped
across hosts) and every could-not-verify group and stays under GitHub's 1 MiB step-summary limit;
report.html opens with the verdict and, in headless Chromium at 390 px, every column of its matrix can be
reached (asserted on the DOM). The docs' screenshot of the report (docs/img/report.png) comes from here
(RAILIANCE_SCREENSHOTS=docs/img)."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import fields, replace
from pathlib import Path

import pytest

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting.groups import cause_groups, drift_groups
from railiance_testbed.hosts import CONFORMANT, DRIFTED, GIB
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from railiance_testbed.nshosts import NamespaceTestbed
from tests.browser.cdp import Chromium
from tests.browser.test_html_report_browser import MATRIX_REACH
from tests.suite_runner import run_suite

pytestmark = [pytest.mark.testbed, pytest.mark.browser]
SUMMARY_LIMIT = 1024 * 1024   # GitHub's job summary: 1 MiB per step


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    states = ([replace(CONFORMANT, name=f"ns-conformant{i}") for i in range(1, 59)]
              + [replace(DRIFTED, name=f"ns-drifted{i}") for i in range(1, 16)]
              + [replace(DRIFTED, name=f"ns-drifted{i}", swap_bytes=3 * GIB) for i in range(16, 21)])
    # the cluster serves the original wg-policy-prototypes v1alpha2 CRDs (severity high/medium/low only)
    crds = Path(__file__).parents[1] / "fixtures" / "policyreport-crds" / "wg-policy-prototypes"
    with NamespaceTestbed(states, tmp_path_factory.mktemp("nshosts"), down=["ns-down1", "ns-down2"]) as bed, \
            KubeAPIStandIn(load_dump([CONFORMANT_DUMP, crds])) as api:
        kubeconfig = api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")
        run = run_suite("-m", "S1", "--ansible-inventory", str(bed.inventory), "--ssh-config", str(bed.ssh_config),
                        "--kubeconfig", str(kubeconfig), "--publish-policyreport",
                        report_dir=tmp_path_factory.mktemp("reports"), timeout=600)
        run.published = [(r.method, r.status) for r in api.requests() if r.method not in ("GET", "HEAD")]
        code, listed = api.api.handle("GET", "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports", {}, "application/json")
        run.cluster_reports = listed["items"]
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def as_findings(document: dict) -> list[Finding]:
    names = {f.name for f in fields(Finding)}
    return [Finding(**{**{k: v for k, v in item.items() if k in names and k not in ("evidence", "status")},
                       "status": Status(item["status"])}) for item in document["findings"]]


def test_summary_md_names_every_drifted_control_and_every_cause_under_1_mib(many):
    summary = (many.report_dir / "summary.md").read_text(encoding="utf-8")
    findings = as_findings(many.document)
    assert len(summary.encode()) < SUMMARY_LIMIT
    assert summary.splitlines()[0].startswith("## Railiance conformance: DRIFT — ")
    drift = summary[summary.index("### Drift"):summary.index("### Could not verify")]
    errors = summary[summary.index("### Could not verify"):]
    drifted = {f.control_id for f in findings if f.status is Status.DRIFT}
    assert len(drifted) >= 8
    for control in drifted:
        assert f"`{control}`" in drift, control
    # grouped: host.swap.file is two rows (15 hosts one way, 5 another), not 20
    swap_rows = [line for line in drift.splitlines() if line.startswith("| `host.swap.file`")]
    assert len(swap_rows) == 2 and {row.split("|")[2].split(":")[0].strip() for row in swap_rows} == {"15", "5"}
    assert len([line for line in drift.splitlines() if line.startswith("| `")]) == len(drift_groups(findings))
    groups = cause_groups(findings)
    rows = [line for line in errors.splitlines() if line.startswith("| ") and not line.startswith("| targets")
            and not line.startswith("| ---")]
    assert len(rows) == len(groups) >= 2
    for group in groups:
        assert any(f"`{group.targets[0]}`" in row and f"`{group.controls[0]}`" in row for row in rows), group
    for down in ("ns-down1", "ns-down2"):  # a down host: one row for its connection failure, every control of it
        refused = {f.control_id for f in findings if f.target == down and "Connection refused" in f.reason}
        mine = [row for row in rows if f"`{down}`" in row and "Connection refused" in row]
        assert len(refused) >= 15 and len(mine) == 1 and f"| {len(refused)}: " in mine[0], mine


def test_report_html_at_390_px_opens_with_the_verdict_and_reaches_every_matrix_column(many, tmp_path):
    page = many.report_dir / "report.html"
    with Chromium(tmp_path / "profile") as browser:
        browser.open(page.as_uri(), width=390, height=844)
        first = browser.evaluate("document.querySelector('h1,h2,h3').textContent")
        assert first.startswith("Railiance conformance: DRIFT — ")
        for row in ("first", "last"):
            reach = browser.evaluate("(function(){" + MATRIX_REACH.replace("ROW", row) + "})()")
            assert reach["columns"] == len({f["control_id"] for f in many.document["findings"]})
            assert reach["scrolls"] and reach["unreached"] == [], reach
            assert reach["pageWidth"] <= 390
        rows = browser.evaluate("[].map.call(document.querySelectorAll('.matrix tbody tr'),function(tr){"
                                "return tr.dataset.target;})")
        assert rows.index("ns-drifted2") < rows.index("ns-drifted10")      # natural order
        if os.environ.get("RAILIANCE_SCREENSHOTS"):
            browser.open(page.as_uri(), width=900, height=640)
            shot = browser.viewport_screenshot(tmp_path / "report.png")
            assert shot.stat().st_size < 250_000
            Path(os.environ["RAILIANCE_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(os.environ["RAILIANCE_SCREENSHOTS"]) / "report.png")


def test_the_published_policy_reports_are_accepted_one_per_host_each_under_1_mib(many):
    """The real run's --publish-policyreport against the original v1alpha2 CRD, enforced by the stand-in."""
    assert many.published == [("PATCH", 201)] * 80            # every object accepted, none refused
    assert len(many.cluster_reports) == 80 and {r["scope"]["name"] for r in many.cluster_reports} == set(
        many.document["run"]["targets"])
    assert max(len(json.dumps(r).encode()) for r in many.cluster_reports) < 1_048_576
    assert {x["severity"] for r in many.cluster_reports for x in r["results"]} <= {"high", "medium", "low"}
