"""Nightly mode end to end: exit codes, every format on disk, the webhook with retries."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from tests.suite_runner import REPO


class Receiver:
    """A webhook on 127.0.0.1 answering with the given statuses in turn (then 200)."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.bodies = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/drift"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    started = []

    def start(*statuses: int) -> Receiver:
        started.append(Receiver(list(statuses)))
        return started[-1]

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def api(tmp_path):
    started = []

    def start(*overlays: str) -> Path:
        layers = [f for name in overlays for f in drift_overlay(name)]
        started.append(KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *layers])).start())
        return started[-1].write_kubeconfig(tmp_path / f"kc{len(started)}")

    yield start
    for a in started:
        a.stop()


def nightly(tmp_path: Path, *args: str, pytest_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "railiance_conformance", "nightly", "--report-dir",
                           str(tmp_path / "reports"), "--webhook-backoff", "0.05", *args, "--", *pytest_args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_conformant_run_publishes_and_exits_0(api, receiver, tmp_path):
    hook = receiver()
    done = nightly(tmp_path, "--webhook", hook.url, pytest_args=("-m", "cluster", "--kubeconfig", str(api())))
    assert done.returncode == 0, done.stderr
    [body] = hook.bodies
    summary = json.loads(body)["summary"]
    assert summary["pass"] >= 10 and summary["drift"] == summary["error"] == 0
    names = {p.name for p in (tmp_path / "reports").iterdir()}
    assert {"findings.json", "junit.xml", "summary.md", "report.html", "railiance_conformance.prom",
            "policyreport.yaml", "history.sqlite"} <= names


def test_drift_exits_1_and_a_flaky_webhook_is_retried(api, receiver, tmp_path):
    hook = receiver(500, 503)
    done = nightly(tmp_path, "--webhook", hook.url,
                   pytest_args=("-m", "cluster", "--kubeconfig", str(api("gitea-unavailable"))))
    assert done.returncode == 1
    assert len(hook.bodies) == 3 and "published" in done.stderr


def test_a_dead_webhook_keeps_the_local_reports_and_exits_4(api, receiver, tmp_path):
    hook = receiver()
    url = hook.url
    hook.stop()
    done = nightly(tmp_path, "--webhook", url, "--webhook-retries", "1",
                   pytest_args=("-m", "cluster", "--kubeconfig", str(api())))
    assert done.returncode == 4
    assert "publishing" in done.stderr and "failed" in done.stderr
    assert json.loads((tmp_path / "reports" / "findings.json").read_text())["summary"]["pass"] >= 10


def test_an_unreachable_cluster_exits_2(api, tmp_path):
    kubeconfig = api()
    text = kubeconfig.read_text()
    kubeconfig.write_text(text.replace("http://127.0.0.1:", "http://127.0.0.1:1#"))
    done = nightly(tmp_path, pytest_args=("-m", "cluster", "--kubeconfig", str(kubeconfig)))
    assert done.returncode == 2, done.stdout[-1500:]


def test_a_bad_policy_exits_3(tmp_path):
    done = nightly(tmp_path, pytest_args=("--policy-dir", str(tmp_path / "nowhere")))
    assert done.returncode == 3

