"""The gate's evidence (both sides' row count per table) in every report format."""
from __future__ import annotations

import json

import yaml
from prometheus_client.parser import text_string_to_metric_families

from railiance_conformance.finding import Finding, Status
from railiance_conformance.gate.cutover import GateVerdict
from railiance_conformance.reporting import Run, load_reporters

TABLES = {"public.customers": {"source": 120, "restored": 120}, "audit.Events": {"source": 37, "restored": None}}
EVIDENCE = {"schemas": ["audit", "public"], "sequences_checked": 4, "tables": TABLES}


def gate_run() -> Run:
    parity = Finding(control_id="gate.restore.parity", title="restore parity", task="RAIL-HO-WP-0004-T09", layer="X",
                     severity="critical", target="RAIL-HO-WP-0004-T09", status=Status.DRIFT,
                     expected="same tables", observed=["table audit.Events missing in the restored copy"],
                     remediation="repeat the drill", reason="table audit.Events missing in the restored copy",
                     evidence=tuple(EVIDENCE.items()))
    gate = GateVerdict("RAIL-HO-WP-0004-T09", go=False, layer="S5",
                       reasons=("gate.restore.parity: drift: table audit.Events missing in the restored copy",),
                       evidence={"gate.restore.parity": EVIDENCE})
    return Run(run_id="r1", started_at="2026-11-27T09:00:00Z", finished_at="2026-11-27T09:01:00Z",
               findings=(parity,), targets=("RAIL-HO-WP-0004-T09",), gate=gate)


def render(name: str) -> str:
    return load_reporters()[name].render(gate_run())


def test_json_carries_the_counts():
    assert json.loads(render("json"))["run"]["gate"]["evidence"]["gate.restore.parity"]["tables"] == TABLES


def test_markdown_shows_a_table_of_counts():
    text = render("markdown")
    assert "| table | source rows | restored rows |" in text
    assert "| `public.customers` | 120 | 120 |" in text and "| `audit.Events` | 37 | – |" in text


def test_html_shows_a_table_of_counts():
    text = render("html")
    assert "<tr><td><code>public.customers</code></td><td>120</td><td>120</td></tr>" in text


def test_junit_has_a_property_per_table():
    text = render("junit")
    assert 'name="gate.rows.public.customers" value="source 120, restored 120"' in text
    assert 'name="gate.rows.audit.Events" value="source 37, restored None"' in text


def test_prometheus_has_a_gauge_per_table_and_side():
    families = {f.name: f for f in text_string_to_metric_families(render("prometheus"))}
    rows = {(s.labels["table"], s.labels["side"]): s.value for s in families["railiance_conformance_gate_table_rows"].samples
            if s.labels["task"] == "RAIL-HO-WP-0004-T09"}
    assert rows == {("public.customers", "source"): 120, ("public.customers", "restored"): 120,
                    ("audit.Events", "source"): 37}  # the restored side of audit.Events is unknown: no sample


def test_policyreport_carries_the_evidence_of_the_finding():
    result = next(yaml.safe_load_all(render("policyreport")))["results"][0]
    assert "public.customers" in result["properties"]["evidence"]
