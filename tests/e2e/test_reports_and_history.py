"""Every format from one run, and the history across two runs with a change in between."""
from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import yaml
from prometheus_client.parser import text_string_to_metric_families

from railiance_conformance.reporting import load_reporters
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from tests.suite_runner import run_suite

SCHEMAS = Path(__file__).resolve().parents[2] / "railiance_conformance" / "reporting" / "schemas"


def test_every_format_is_written_and_parses(testbed_run):
    directory = testbed_run.report_dir
    assert {p.name for p in directory.iterdir()} >= {r.filename for r in load_reporters().values()}
    jsonschema.validate(testbed_run.document, json.loads((SCHEMAS / "findings.schema.json").read_text()))
    ET.parse(directory / "junit.xml")
    families = {f.name for f in text_string_to_metric_families((directory / "railiance_conformance.prom").read_text())}
    assert "railiance_conformance_control_status" in families
    reports = list(yaml.safe_load_all((directory / "policyreport.yaml").read_text()))
    for report in reports:
        jsonschema.validate(report, json.loads((SCHEMAS / "policyreport-v1alpha2.schema.json").read_text()))
    assert sum(report["summary"]["fail"] for report in reports) == testbed_run.document["summary"]["drift"]
    assert "host.swap.fstab" in (directory / "summary.md").read_text()


def test_a_second_run_reports_what_changed_since_the_first(tmp_path):
    reports = tmp_path / "reports"
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP])) as api:
        first = run_suite("-m", "cluster", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc1")),
                          report_dir=reports)
    assert first.document["summary"]["drift"] == 0
    first_id = first.document["run"]["id"]  # findings.json is replaced by the next run
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *drift_overlay("gitea-unavailable")])) as api:
        second = run_suite("-m", "cluster", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc2")),
                           report_dir=reports)
    diff = second.document["run"]["diff"]
    assert diff["from_run"] == first_id and diff["to_run"] == second.document["run"]["id"]
    assert diff["new_drift"] == ["cluster.gitea.available@railiance-testbed"]
    assert diff["fixed"] == [] and diff["persisting"] == []
    assert "since the previous run: 1 new drift, 0 fixed" in second.stdout
    assert "cluster.gitea.available" in (reports / "summary.md").read_text().split("Since the previous run")[1]
    with sqlite3.connect(reports / "history.sqlite") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 2


def test_the_history_command_lists_runs_and_diffs_any_two(tmp_path):
    import subprocess
    import sys

    from tests.suite_runner import REPO

    reports = tmp_path / "reports"
    ids = []
    for overlays in ((), ("gitea-unavailable",), ()):
        with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *(f for o in overlays for f in drift_overlay(o))])) as api:
            run = run_suite("-m", "cluster and not X", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")),
                            report_dir=reports)
            ids.append(run.document["run"]["id"])
    cli = [sys.executable, "-m", "railiance_conformance", "history", "--history", str(reports / "history.sqlite")]
    listed = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert [line.split()[0] for line in listed.splitlines()] == ids
    diff = json.loads(subprocess.run([*cli, "--diff", ids[0], ids[2]], cwd=REPO, capture_output=True, text=True,
                                     check=True).stdout)
    assert diff["new_drift"] == diff["fixed"] == []  # first and third run are alike; the second drifted
    seen = json.loads(subprocess.run([*cli, "--finding", "cluster.gitea.available@railiance-testbed"], cwd=REPO,
                                     capture_output=True, text=True, check=True).stdout)
    assert seen["first_seen"] == ids[0] and seen["consecutive_drift"] == 0 and seen["runs_seen"] == 3
