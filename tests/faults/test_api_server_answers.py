"""The API server's own answers are never the target's: kube-apiserver's 429 (priority and fairness,
with Retry-After) and a 500 "etcdserver: leader changed", both plain text, on the service-proxy GET
of Gitea's health endpoint are could-not-verify with the API server's remedy, never a drift of
Gitea's database; the nightly exits 2, not 1. A 429 is retried after its Retry-After, and the
backend's real answer then counts."""
from __future__ import annotations

import pytest

from railiance_testbed.kubeapi.server import internal_error, throttled
from tests.faults.conftest import document, nightly

pytestmark = pytest.mark.testbed  # the suite end to end against the API stand-in

HEALTH = ("cluster.gitea.db_health", "cluster.gitea.cache_health")


def _health(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["control_id"] in HEALTH and f["status"] != "pending"]


@pytest.mark.parametrize("refusal, code", [(throttled(1), 429), (internal_error(), 500)], ids=["429", "500"])
def test_the_api_servers_own_refusal_is_could_not_verify_not_drift(standin, tmp_path, refusal, code):
    api, kubeconfig = standin(proxy_refusals=[refusal] * 50)
    done, _ = nightly(tmp_path / "r", "-m", "cluster", "-k", "health", "--kubeconfig", str(kubeconfig),
                      "--api-timeout", "2")
    doc = document(tmp_path / "r" / "findings.json")
    health = _health(doc)
    assert health, [f["control_id"] for f in doc["findings"]]
    assert done.returncode == 2, (done.returncode, [(f["control_id"], f["status"], f["reason"]) for f in health])
    for finding in health:
        assert finding["status"] == "error", finding
        assert f"API error {code}" in finding["reason"] and "not the Service's answer" in finding["reason"] \
            or "429 Too Many Requests" in finding["reason"], finding["reason"]
        assert "API server itself failed or throttled" in finding["remediation"], finding["remediation"]
        assert "database" not in finding["remediation"].lower()
    proxied = [r for r in api.requests() if "/proxy/" in r.path]
    if code == 429:  # one cached GET for both controls, retried after Retry-After (1 s) within --api-timeout 2
        assert len(proxied) == 3, len(proxied)


def test_a_429_is_retried_after_retry_after_and_the_backends_answer_counts(standin, tmp_path):
    api, kubeconfig = standin(proxy_refusals=[throttled(1)])
    done, _ = nightly(tmp_path / "r", "-m", "cluster", "-k", "health", "--kubeconfig", str(kubeconfig))
    health = _health(document(tmp_path / "r" / "findings.json"))
    assert health and all(f["status"] == "pass" for f in health), [(f["status"], f["reason"]) for f in health]
    assert done.returncode == 0
    assert [r.status for r in api.requests() if "/proxy/" in r.path][:2] == [429, 200]
