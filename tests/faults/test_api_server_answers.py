"""The API server's own answers are never the target's: kube-apiserver's 429 (priority and fairness,
with Retry-After) and a 500 "etcdserver: leader changed", both plain text, on the service-proxy GET
of Gitea's health endpoint are could-not-verify with the API server's remedy, never a drift of
Gitea's database; the nightly exits 2, not 1. A 429 is retried after its Retry-After, and the
backend's real answer then counts."""
from __future__ import annotations

import json

import pytest

from railiance_testbed.kubeapi.server import ProxyRefusal, internal_error, throttled
from tests.faults.conftest import document, nightly

pytestmark = pytest.mark.testbed  # the suite end to end against the API stand-in

HEALTH = ("cluster.gitea.db_health", "cluster.gitea.cache_health")


def _status(code: int, reason: str, message: str) -> str:
    """A Kubernetes ``Status`` failure body, as kube-apiserver's proxy writes it (its ``responsewriters``)."""
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code})


NO_ENDPOINTS = ProxyRefusal(503, _status(503, "ServiceUnavailable", 'no endpoints available for service "gitea-http"'))
CANNOT_DIAL = ProxyRefusal(502, _status(502, "", "error trying to reach service: dial tcp 10.42.0.7:3000: connect: "
                                                 "connection refused"))
PROXY_TIMEOUT = ProxyRefusal(504, _status(504, "Timeout", "error trying to reach service: context deadline exceeded"))


def _health(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if f["control_id"] in HEALTH and f["status"] != "pending"]


@pytest.mark.parametrize("refusal, code", [(throttled(1), 429), (internal_error(), 500), (NO_ENDPOINTS, 503),
                                           (CANNOT_DIAL, 502), (PROXY_TIMEOUT, 504)],
                         ids=["429", "500", "503-no-endpoints", "502-cannot-dial", "504"])
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


@pytest.mark.parametrize("body", ["Unauthorized\n", _status(401, "Unauthorized", "Unauthorized")],
                         ids=["text", "status"])
def test_a_401_on_the_service_proxy_is_the_suites_credentials_refused_not_drift(standin, tmp_path, body):
    """kube-apiserver authenticates a request before its proxy forwards it: a 401 (here labelled
    text/plain, as the stand-in sends every refusal) refuses the suite's credentials, it is never
    Gitea's health answer; the remedy is the kubeconfig's, never the database's."""
    _, kubeconfig = standin(proxy_refusals=[ProxyRefusal(401, body)] * 50)
    done, _ = nightly(tmp_path / "r", "-m", "cluster", "-k", "health", "--kubeconfig", str(kubeconfig),
                      "--api-timeout", "2")
    health = _health(document(tmp_path / "r" / "findings.json"))
    assert health and done.returncode == 2, (done.returncode, [(f["status"], f["reason"]) for f in health])
    for finding in health:
        assert finding["status"] == "error", finding
        assert "API error 401 Unauthorized: the suite's credentials were refused" in finding["reason"], finding
        assert "--kubeconfig" in finding["remediation"] and "database" not in finding["remediation"].lower()
