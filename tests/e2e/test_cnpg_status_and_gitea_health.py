"""The CloudNativePG cluster's status and Gitea's health on the API stand-in, through the unmodified kubernetes client: what
``kubectl cnpg status`` reports (cluster.gitea_db.status), and Gitea's own health endpoint read
through the API server's service proxy (cluster.gitea.db_health, cluster.gitea.cache_health):
passing on the conformant dump, drift when the endpoint reports the cache down or archiving fails,
an error with its reason and remedy when the proxy is forbidden or the API is unreachable; GET only."""
from __future__ import annotations

from pathlib import Path

import pytest

from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from tests.suite_runner import run_suite

OUTCOMES = ("cluster.gitea_db.status", "cluster.gitea.db_health", "cluster.gitea.cache_health")
SELECT = "dbstatus or db_health or cache_health"  # pytest-bdd names drop the dots of the control id
PROXY_PATH = "/api/v1/namespaces/gitea/services/http:gitea-http:3000/proxy/api/healthz"


@pytest.fixture
def standin(request, tmp_path):
    """Start a stand-in over the conformant dump and some overlays; stopped even when the test fails."""
    def start(*overlays: str, **options) -> tuple[KubeAPIStandIn, Path]:
        api = KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *(f for o in overlays for f in drift_overlay(o))]), **options)
        request.addfinalizer(api.stop)
        api.start()
        return api, api.write_kubeconfig(tmp_path / f"kubeconfig-{len(overlays)}")
    return start


def outcomes_run(kubeconfig: Path, tmp_path: Path) -> dict[str, dict]:
    run = run_suite("-m", "cluster", "-k", SELECT, "--kubeconfig", str(kubeconfig), report_dir=tmp_path / "reports")
    findings = {f["control_id"]: f for f in run.findings()}
    assert set(findings) == set(OUTCOMES), run.stdout[-2000:]
    return findings


def test_the_outcomes_pass_on_the_conformant_dump_with_one_proxied_get(standin, tmp_path):
    api, kubeconfig = standin()
    findings = outcomes_run(kubeconfig, tmp_path)
    assert {c: f["status"] for c, f in findings.items()} == {c: "pass" for c in OUTCOMES}
    assert findings["cluster.gitea.cache_health"]["observed"] == {
        "object": "Service gitea/gitea-http GET /api/healthz", "cache:ping": "pass"}
    assert findings["cluster.gitea_db.status"]["observed"]["newest backup"] == "completed within 24 h"
    requests = api.requests()
    assert {r.method for r in requests} == {"GET"}  # no write verb, the proxy included
    assert [r.path for r in requests if "/proxy" in r.path] == [PROXY_PATH]  # one GET for both health controls
    lists = [r.path for r in requests if r.path.endswith(("/clusters", "/backups")) and "continue" not in r.query]
    assert sorted(lists) == ["/apis/postgresql.cnpg.io/v1/backups", "/apis/postgresql.cnpg.io/v1/clusters"]


def test_the_cache_reported_down_drifts_the_cache_control_only(standin, tmp_path):
    api, kubeconfig = standin("gitea-cache-down")
    findings = outcomes_run(kubeconfig, tmp_path)
    cache = findings["cluster.gitea.cache_health"]
    assert cache["status"] == "drift"
    assert (cache["expected"]["cache:ping"], cache["observed"]["cache:ping"]) == ("pass", "fail")
    assert "make valkey-status" in cache["remediation"]
    assert findings["cluster.gitea.db_health"]["status"] == "pass"
    assert findings["cluster.gitea_db.status"]["status"] == "pass"
    assert {r.method for r in api.requests()} == {"GET"}


def test_failing_archiving_drifts_the_cnpg_status(standin, tmp_path):
    api, kubeconfig = standin("gitea-db-archiving-failing")
    finding = outcomes_run(kubeconfig, tmp_path)["cluster.gitea_db.status"]
    assert finding["status"] == "drift"
    assert finding["observed"]["continuous archiving"] == "False"
    assert finding["observed"]["newest backup"].startswith("the newest backup gitea-db-daily-20261127020000 is failed")
    assert finding["observed"]["ready instances"] == 1  # the phase still says healthy; the plugin would not


def test_a_forbidden_proxy_is_an_error_naming_the_rbac_rule(standin, tmp_path):
    api, kubeconfig = standin(forbidden={("get", "services/proxy", "gitea")})
    findings = outcomes_run(kubeconfig, tmp_path)
    assert findings["cluster.gitea_db.status"]["status"] == "pass"  # it does not need the proxy
    for control_id in ("cluster.gitea.db_health", "cluster.gitea.cache_health"):
        finding = findings[control_id]
        assert finding["status"] == "error", finding
        assert "forbidden" in finding["reason"]
        assert "grant verb 'get' on resource 'services/proxy'" in finding["reason"]
        assert "resourceNames ['http:gitea-http:3000']" in finding["reason"]
        assert "RBAC" in finding["remediation"]
    assert [r.status for r in api.requests() if "/proxy" in r.path] == [403]  # refused once, cached


def test_an_unreachable_api_is_an_error_for_each_outcome(standin, tmp_path):
    api, kubeconfig = standin()
    api.stop()
    findings = outcomes_run(kubeconfig, tmp_path)
    for finding in findings.values():
        assert finding["status"] == "error" and "unreachable" in finding["reason"], finding
        assert "API could not be read" in finding["remediation"], finding
