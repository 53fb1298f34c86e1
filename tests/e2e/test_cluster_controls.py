"""The cluster controls through the unmodified kubernetes client against the API stand-in."""
from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from railiance_conformance.checks import bundled_plan
from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_conformance.vocabulary import CHECK_KINDS
from railiance_testbed.kubeapi import CONFORMANT_DUMP, DRIFTED_DIR, KubeAPIStandIn, drift_overlay, load_dump
from tests.suite_runner import run_suite

CATALOG = load_catalog(DEFAULT_POLICY_DIR)
CLUSTER_CONTROLS = {c.id for c in CATALOG.controls.values() if c.id.startswith("cluster.") and not c.pending}
PENDING = {c.id for c in CATALOG.controls.values() if c.id.startswith("cluster.") and c.pending}
OVERLAYS = sorted(p for p in DRIFTED_DIR.glob("*") if (p / "expected.yaml").exists())
SECRET_MARKER = re.compile(r"(?:CONFORMANT|DRIFT)-SECRET-VALUE-[A-Za-z0-9-]+")


@pytest.fixture
def standin(tmp_path):
    """Start a stand-in over some dump layers; stopped on teardown even when the test fails."""
    started = []

    def start(*overlays: Path, **options) -> tuple[KubeAPIStandIn, Path]:
        layers = [f for overlay in overlays for f in drift_overlay(overlay)]
        api = KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *layers]), **options).start()
        started.append(api)
        return api, api.write_kubeconfig(tmp_path / f"kubeconfig-{len(started)}")

    yield start
    for api in started:
        api.stop()


def cluster_run(kubeconfig: Path, tmp_path: Path, *args: str):
    """The platform and app controls (the layer-boundary ones, also @cluster, have their own tests)."""
    return run_suite("-m", "cluster and not X", "--kubeconfig", str(kubeconfig), *args,
                     report_dir=tmp_path / "reports")


def planted_secrets(*overlays: Path) -> set[str]:
    """Every secret value in the dumps (decoded from base64 and inside Gitea's config)."""
    found: set[str] = set()
    for obj in load_dump([CONFORMANT_DUMP, *(f for o in overlays for f in drift_overlay(o))]):
        if obj.get("kind") == "Secret":
            for value in (obj.get("data") or {}).values():
                found |= set(SECRET_MARKER.findall(base64.b64decode(value).decode("utf-8", "replace")))
    return found


def test_every_cluster_control_passes_on_the_conformant_dump(standin, tmp_path):
    api, kubeconfig = standin()
    run = cluster_run(kubeconfig, tmp_path)
    statuses = {f["control_id"]: f["status"] for f in run.findings()}
    assert statuses == {**{c: "pass" for c in CLUSTER_CONTROLS}, **{c: "pending" for c in PENDING}}
    assert run.returncode == 0, run.stdout[-2000:]


def test_pending_tasks_are_reported_never_passed(standin, tmp_path):
    api, kubeconfig = standin()
    run = cluster_run(kubeconfig, tmp_path)
    pending = [f for f in run.findings() if f["control_id"] in PENDING]
    assert pending and all(f["status"] == "pending" and "needs_human" in f["reason"] for f in pending)
    assert "2 skipped" in run.stdout


def test_there_is_an_overlay_for_every_cluster_control():
    drifted = set()
    for overlay in OVERLAYS:
        drifted |= set(yaml.safe_load((overlay / "expected.yaml").read_text())["drift"])
    assert drifted == CLUSTER_CONTROLS


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_each_drifted_dump_drifts_exactly_as_expected(overlay, standin, tmp_path):
    expected = set(yaml.safe_load((overlay / "expected.yaml").read_text())["drift"])
    api, kubeconfig = standin(overlay)
    run = cluster_run(kubeconfig, tmp_path)
    findings = {f["control_id"]: f for f in run.findings()}
    assert {c for c, f in findings.items() if f["status"] == "drift"} == expected
    assert {c for c, f in findings.items() if f["status"] == "pass"} == CLUSTER_CONTROLS - expected
    for control_id in expected:
        finding = findings[control_id]
        assert finding["expected"] is not None and finding["observed"] is not None
        assert finding["expected"] != finding["observed"] and finding["remediation"]
    # no secret value of the dump reaches a report, the terminal or a test id
    secrets = planted_secrets(overlay)
    assert secrets
    output = run.stdout + run.stderr + "".join(p.read_bytes().decode("utf-8", "replace")
                                               for p in run.report_dir.iterdir())
    assert not {s for s in secrets if s in output}


def test_one_list_per_resource_kind_paged(standin, tmp_path):
    api, kubeconfig = standin()
    run = cluster_run(kubeconfig, tmp_path, "--api-page-size", "3")
    assert run.findings()
    lists: dict[str, int] = {}
    pages = 0
    for record in api.requests():
        assert record.method == "GET"  # the suite never writes
        parts = record.path.strip("/").split("/")
        is_collection = (parts[0] == "api" and len(parts) in (3, 5)) or (parts[0] == "apis" and len(parts) in (4, 6))
        if record.path.startswith(("/api/v1/", "/apis/")) and is_collection:
            pages += 1
            if "continue" not in record.query:
                lists[parts[-1]] = lists.get(parts[-1], 0) + 1
    assert lists and all(count == 1 for count in lists.values()), lists
    assert pages > len(lists)  # the limit/continue pages were followed
    assert "secrets" in lists and all(r.query.get("labelSelector") == "owner=helm" for r in api.requests()
                                      if r.path == "/api/v1/secrets")


def test_only_the_kinds_the_selected_scenarios_read_are_listed(standin, tmp_path):
    """-m T05 LISTs only what T05's check kinds declare in ``reads`` (the snapshot is lazy), once each."""
    api, kubeconfig = standin()
    run = run_suite("-m", "T05 and cluster", "--kubeconfig", str(kubeconfig), report_dir=tmp_path / "reports")
    plan = bundled_plan()
    t05 = {f["control_id"] for f in run.findings()}
    assert t05 == {c for c in CLUSTER_CONTROLS if CATALOG[c].task == "T05"}
    declared = {kind.split(".")[0] for c in t05 for kind in CHECK_KINDS[plan.spec(c).kind].reads(plan.spec(c).params)}
    listed = []
    for record in api.requests():
        parts = record.path.strip("/").split("/")
        is_collection = (parts[0] == "api" and len(parts) in (3, 5)) or (parts[0] == "apis" and len(parts) in (4, 6))
        if is_collection and "continue" not in record.query:
            listed.append(parts[-1])
    assert listed and len(listed) == len(set(listed)), listed
    assert set(listed) <= declared, set(listed) - declared
    assert "clusters" not in listed and "namespaces" not in listed  # T03's and the boundaries' kinds


def test_api_unreachable_is_an_error_for_every_cluster_control(standin, tmp_path):
    api, kubeconfig = standin()
    api.stop()
    run = cluster_run(kubeconfig, tmp_path)
    for finding in run.findings():
        if finding["control_id"] in CLUSTER_CONTROLS:
            assert finding["status"] == "error" and "unreachable" in finding["reason"], finding


def test_a_slow_api_times_out_as_an_error(standin, tmp_path):
    api, kubeconfig = standin(latency_s=1.5)
    run = cluster_run(kubeconfig, tmp_path, "--api-timeout", "0.5", "-k", "cnpg")
    [finding] = run.findings()
    assert finding["status"] == "error" and "timed out" in finding["reason"]


def test_a_forbidden_kind_errors_only_the_controls_that_need_it(standin, tmp_path):
    api, kubeconfig = standin(forbidden={("get", "secrets", "*"), ("list", "secrets", "*")})
    run = cluster_run(kubeconfig, tmp_path)
    findings = {f["control_id"]: f for f in run.findings()}
    plan = bundled_plan()  # which controls read Secrets: as their check kinds declare it
    needs_secrets = {c for c in CLUSTER_CONTROLS
                     if "secrets" in CHECK_KINDS[plan.spec(c).kind].reads(plan.spec(c).params)}
    assert needs_secrets >= {"cluster.gitea_db.credentials", "cluster.gitea.database", "cluster.gitea.cache",
                             "cluster.valkey.release"}
    for control_id in needs_secrets:
        assert findings[control_id]["status"] == "error"
        assert "forbidden" in findings[control_id]["reason"] and "RBAC: grant verb" in findings[control_id]["reason"]
        assert "'secrets'" in findings[control_id]["reason"]
    assert {c for c in CLUSTER_CONTROLS - needs_secrets if findings[c]["status"] != "pass"} == set()


def test_an_unknown_crd_errors_the_cnpg_controls_only(standin, tmp_path):
    objects = [o for o in load_dump([CONFORMANT_DUMP]) if not o.get("apiVersion", "").startswith("postgresql.cnpg.io")
               and o["metadata"].get("name", "").split(".", 1)[-1] != "postgresql.cnpg.io"]
    with KubeAPIStandIn(objects) as api:
        run = cluster_run(api.write_kubeconfig(tmp_path / "kc"), tmp_path)
    findings = {f["control_id"]: f for f in run.findings()}
    for control_id in ("cluster.gitea_db.spec", "cluster.gitea_db.healthy"):
        assert findings[control_id]["status"] == "error"
        assert "is the CRD installed?" in findings[control_id]["reason"]
    assert findings["cluster.gitea.available"]["status"] == "pass"


def test_kubectl_reads_the_cnpg_clusters_of_the_stand_in(standin, tmp_path):
    api, kubeconfig = standin()
    done = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
                           "get", "clusters.postgresql.cnpg.io", "-n", "databases"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "gitea-db" in done.stdout
