"""The Kubernetes API stand-in driven by the real kubectl (``--kubeconfig`` and its own ``--cache-dir``, never
$KUBECONFIG), and its command line (``python -m railiance_testbed.kubeapi``) serving until SIGTERM.

The stand-in and its clients are tests/testbed/conftest.py's fixtures (see there: a random 127.0.0.1 port,
stopped also when a test fails; clients built from an explicit kubeconfig file).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from railiance_testbed.kubeapi import CONFORMANT_DUMP

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")


# --- kubectl ---------------------------------------------------------------------------------
def _kubectl(kubeconfig_path, tmp_path, *args) -> subprocess.CompletedProcess:
    if KUBECTL is None:
        pytest.fail("kubectl is not installed on this machine (it comes with the machine image)")  # never a silent skip
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig_path), "--cache-dir", str(tmp_path / "kcache"),
                           *args], capture_output=True, text=True, timeout=60, env=env)


def test_kubectl_gets_the_cnpg_cluster(kubeconfig, tmp_path):
    result = _kubectl(kubeconfig, tmp_path, "get", "clusters.postgresql.cnpg.io", "-n", "databases")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "AGE", "INSTANCES", "READY", "STATUS", "PRIMARY"]
    assert row.split()[0] == "gitea-db" and "Cluster in healthy state" in row


def test_kubectl_gets_pods_in_all_namespaces(kubeconfig, tmp_path, core):
    result = _kubectl(kubeconfig, tmp_path, "get", "pods", "-A")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(lines) - 1 == len(core.list_pod_for_all_namespaces().items)
    assert any(line.split()[:2] == ["databases", "gitea-db-1"] for line in lines)


def test_kubectl_prints_the_gitea_deployment_as_yaml(kubeconfig, tmp_path):
    result = _kubectl(kubeconfig, tmp_path, "get", "deploy", "-n", "gitea", "gitea", "-o", "yaml")
    assert result.returncode == 0, result.stderr
    deployment = yaml.safe_load(result.stdout)
    assert (deployment["kind"], deployment["metadata"]["name"]) == ("Deployment", "gitea")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/instance"] == "gitea"


def test_kubectl_write_is_refused(standin, kubeconfig, tmp_path):
    result = _kubectl(kubeconfig, tmp_path, "delete", "pod", "gitea-db-1", "-n", "databases")
    assert result.returncode != 0 and "MethodNotAllowed" in result.stderr
    assert ("DELETE", "/api/v1/namespaces/databases/pods/gitea-db-1", 405) in [
        (r.method, r.path, r.status) for r in standin.requests("DELETE")]


# --- command line ----------------------------------------------------------------------------
def test_cli_serves_until_sigterm(tmp_path):
    kubeconfig_path = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "railiance_testbed.kubeapi", "--dump", str(CONFORMANT_DUMP), "--port", "0",
         "--kubeconfig", str(kubeconfig_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        fields = dict(part.split("=", 1) for part in process.stdout.readline().split())
        assert int(fields["pid"]) == process.pid
        url = yaml.safe_load(kubeconfig_path.read_text())["clusters"][0]["cluster"]["server"]
        assert url == fields["url"]
        assert json.loads(urllib.request.urlopen(url + "/version", timeout=5).read())["gitVersion"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
