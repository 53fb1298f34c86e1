"""``python -m railiance_conformance serve`` against the API stand-in: /metrics scraped across runs with
prometheus_client's own parser, the API killed in the middle of a run (the last good result stays served,
the failure is counted), /healthz and the HTML report served, SIGTERM stops it cleanly."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from railiance_conformance.serve_metrics import FAILURE_REASONS
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from tests.suite_runner import REPO

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> tuple[int, bytes]:
    try:
        with DIRECT.open(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(url: str) -> dict[str, list]:
    """/metrics parsed by prometheus_client: family name -> its samples."""
    code, body = get(f"{url}/metrics")
    assert code == 200
    return {family.name: family.samples for family in text_string_to_metric_families(body.decode())}


def value(metrics: dict, family: str, **labels) -> float | None:
    for sample in metrics.get(family, []):
        if all(sample.labels.get(k) == v for k, v in labels.items()) and not sample.name.endswith("_created"):
            return sample.value
    return None


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def served(tmp_path, request):
    # every answer takes 0.15 s: a run lasts seconds, so the API can be killed in the middle of one
    overlay = getattr(request, "param", None)
    api = KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *(drift_overlay(overlay) if overlay else [])]),
                         latency_s=0.15).start()
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    proc = subprocess.Popen([sys.executable, "-m", "railiance_conformance", "serve", "--listen", "127.0.0.1:0",
                             "--interval", "0.5", "--report-dir", str(tmp_path / "reports"), "--",
                             "-m", "cluster", "--kubeconfig", str(kubeconfig), "--api-timeout", "5"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line + proc.stderr.read()
        yield proc, line.split("listening on ", 1)[1].split()[0], api
    finally:
        api.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_keeps_the_last_good_result_when_a_run_fails_and_stops_on_sigterm(served):
    proc, url, api = served
    assert get(f"{url}/report.html")[0] == 503                # nothing finished yet
    first = wait_for(lambda: (m := scrape(url)) and value(m, "railiance_conformance_serve_runs", result="ok")
                     and m, 120, "the first run to be served")
    controls = {tuple(sorted(s.labels.items())) for s in first["railiance_conformance_control_status"]}
    assert controls and not [c for c in controls if dict(c)["status"] == "error"]   # everything could be verified
    assert value(first, "railiance_conformance_findings", status="error") == 0
    served_at = value(first, "railiance_conformance_run_timestamp_seconds")
    code, status = get(f"{url}/status")
    assert code == 200 and json.loads(status)["status"] == "conformant", status
    assert value(first, "railiance_conformance_serve_status_ok") == 1
    promtool = subprocess.run(["promtool", "check", "metrics"], input=get(f"{url}/metrics")[1], capture_output=True,
                              timeout=30)
    assert promtool.returncode == 0 and not promtool.stdout and not promtool.stderr, promtool
    code, page = get(f"{url}/report.html")
    run_id = json.loads(get(f"{url}/findings.json")[1])["run"]["id"]
    assert code == 200 and run_id.encode() in page and b"Targets \xc3\x97 controls" in page

    # the next run starts; kill the API in the middle of it
    wait_for(lambda: value(scrape(url), "railiance_conformance_serve_running") == 1, 60, "the second run to start")
    time.sleep(1.0)
    before_kill = len(api.requests())
    api.stop()
    assert before_kill > 0
    failed = wait_for(lambda: (m := scrape(url)) and value(m, "railiance_conformance_serve_runs", result="failed")
                      and m, 120, "the failed run to be counted")
    assert value(failed, "railiance_conformance_serve_runs", result="failed") >= 1
    assert value(failed, "railiance_conformance_serve_last_run_success") == 0
    reasons = {s.labels["reason"]: s.value for s in failed["railiance_conformance_serve_last_failure"]}
    assert set(reasons) == set(FAILURE_REASONS) and [r for r, v in reasons.items() if v == 1] == ["regression"]
    # what /status and the staleness metrics say while the last good result is still served
    code, status = get(f"{url}/status")
    assert code == 503 and json.loads(status)["status"] == "could not verify"
    assert value(failed, "railiance_conformance_serve_status_ok") == 0
    assert value(failed, "railiance_conformance_serve_runs_since_served") >= 1
    assert value(failed, "railiance_conformance_serve_served_run_age_seconds") > 0
    assert value(failed, "railiance_conformance_serve_last_run_timestamp_seconds") > \
        value(failed, "railiance_conformance_serve_last_good_run_timestamp_seconds")
    # the last good result is still what is served: the same controls, statuses and run
    assert {tuple(sorted(s.labels.items())) for s in failed["railiance_conformance_control_status"]} == controls
    assert value(failed, "railiance_conformance_run_timestamp_seconds") == served_at
    assert json.loads(get(f"{url}/findings.json")[1])["run"]["id"] == run_id
    health = json.loads(get(f"{url}/healthz")[1])
    assert health["status"] == "ok" and health["served_run"] == run_id and health["last_run_success"] is False

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "stopped" in proc.stdout.read()
    with pytest.raises(OSError):
        DIRECT.open(f"{url}/healthz", timeout=2)


@pytest.mark.parametrize("served", ["gitea-unavailable"], indirect=True)
def test_the_result_endpoint_answers_503_with_drift_while_healthz_stays_200(served):
    proc, url, api = served
    code, body = wait_for(lambda: (answer := get(f"{url}/status")) and json.loads(answer[1]).get("run") and answer,
                          120, "the first run to complete")
    status = json.loads(body)
    assert code == 503 and status["status"] == "drift" and status["drift"] >= 1, status
    assert get(f"{url}/healthz")[0] == 200      # liveness is not the result
    metrics = scrape(url)
    assert value(metrics, "railiance_conformance_serve_status_ok") == 0
    drifted = [s for s in metrics["railiance_conformance_control_status"] if s.labels["status"] == "drift"]
    assert drifted and all(s.labels["severity"] in ("critical", "high", "medium", "low", "info") for s in drifted)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
