"""A kubeconfig's exec credential plugin that never answers costs --api-timeout, not the run: its
process group is killed (the plugin and what it started), and every cluster control is an error
naming the plugin and the timeout, with the remedy for a plugin, while the other targets keep their
results. A plugin that fails is named with its exit status, never a silent run without credentials."""
from __future__ import annotations

import base64
import http.server
import json
import socket
import subprocess
import threading
import time

import pytest
import yaml

from tests.faults.conftest import document, suite

pytestmark = pytest.mark.testbed  # the suite end to end against the API stand-in


def _kubeconfig_with_plugin(kubeconfig, plugin) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                 "interactiveMode": "Never"}}
    kubeconfig.write_text(yaml.safe_dump(config))


def _left(plugin) -> list[str]:
    out = subprocess.run(["pgrep", "-af", str(plugin)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def test_a_hanging_exec_plugin_is_killed_at_the_api_timeout_and_named(standin, conformant_repos, tmp_path):
    _, kubeconfig = standin()
    plugin = tmp_path / "hanging-credential-plugin"
    plugin.write_text("#!/bin/sh\nsleep 3600 &\nsleep 3600\n")  # it and a child of its own: both must go
    plugin.chmod(0o755)
    _kubeconfig_with_plugin(kubeconfig, plugin)
    done, took = suite(tmp_path / "r", "-m", "cluster or repos", "--kubeconfig", str(kubeconfig),
                       "--repos", str(conformant_repos), "--api-timeout", "2", timeout=200)
    time.sleep(0.5)
    left = _left(plugin)
    assert done.returncode == 1, done.stdout[-3000:]
    assert took < 40, f"the run took {took:.0f} s"
    assert not left, left
    doc = document(tmp_path / "r" / "findings.json")
    cluster = [f for f in doc["findings"] if f["control_id"].startswith("cluster.") and f["status"] != "pending"]
    assert cluster and all(f["status"] == "error" for f in cluster)
    assert all(f"exec credential plugin {plugin} gave no credential within 2 s (--api-timeout): its process "
               f"group was killed" in f["reason"] for f in cluster), cluster[0]["reason"]
    assert all("exec credential plugin" in f["remediation"] for f in cluster), cluster[0]["remediation"]
    assert [f for f in doc["findings"] if f["control_id"].startswith("repo.") and f["status"] != "error"]


def test_a_failing_exec_plugin_is_named_with_its_exit_status(standin, tmp_path):
    _, kubeconfig = standin()
    plugin = tmp_path / "failing-credential-plugin"
    plugin.write_text("#!/bin/sh\necho 'error: the identity provider refused the login' >&2\nexit 3\n")
    plugin.chmod(0o755)
    _kubeconfig_with_plugin(kubeconfig, plugin)
    done, _ = suite(tmp_path / "r", "-m", "cluster", "--kubeconfig", str(kubeconfig), "--api-timeout", "2")
    assert done.returncode == 1, done.stdout[-3000:]
    cluster = [f for f in document(tmp_path / "r" / "findings.json")["findings"] if f["status"] != "pending"]
    assert cluster and all(f["status"] == "error" for f in cluster)
    assert all(f"exec credential plugin {plugin} exited with status 3: error: the identity provider refused"
               in f["reason"] for f in cluster), cluster[0]["reason"]


def test_a_plugin_that_answers_but_leaves_a_process_holding_its_output_is_named_and_nothing_is_left(standin, tmp_path):
    """A child that called setsid() is outside the plugin's process group and, once the plugin exits,
    a child of init: only the pipe it holds ties it to the plugin. It is killed, and the error says
    the plugin answered but left it, not that the plugin never answered."""
    _, kubeconfig = standin()
    plugin = tmp_path / "daemonising-credential-plugin"
    credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                             "status": {"token": "t"}})
    plugin.write_text(f"#!/bin/sh\nsetsid sh -c 'sleep 3600; : {tmp_path}' &\necho '{credential}'\n")
    plugin.chmod(0o755)
    _kubeconfig_with_plugin(kubeconfig, plugin)
    done, took = suite(tmp_path / "r", "-m", "cluster", "--kubeconfig", str(kubeconfig), "--api-timeout", "2",
                       timeout=200)
    time.sleep(0.5)
    left = _left(f"sleep 3600; : {tmp_path}")
    assert done.returncode == 1, done.stdout[-3000:]
    cluster = [f for f in document(tmp_path / "r" / "findings.json")["findings"] if f["status"] != "pending"]
    assert cluster and all(f"exec credential plugin {plugin} exited (status 0) but a process it started kept "
                           f"its output open past 2 s" in f["reason"] for f in cluster), cluster[0]["reason"]
    assert not left, left
    assert took < 40, f"the run took {took:.0f} s"


def test_a_vault_password_script_that_never_answers_is_killed_at_the_inventory_bound(tmp_path, monkeypatch):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[railiance]\ncore ansible_host=127.0.0.9\n")
    script = tmp_path / "hanging-vault-pass"
    script.write_text("#!/bin/sh\nsleep 3600\n")
    script.chmod(0o755)
    monkeypatch.setenv("RAILIANCE_INVENTORY_READ_TIMEOUT", "3")
    done, took = suite(tmp_path / "r", "-m", "S1", "--ansible-inventory", str(inventory),
                       "--vault-password-file", str(script), timeout=120)
    time.sleep(0.5)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"{inventory}: reading the inventory did not finish within 3 s" in done.stderr
    assert took < 30 and not _left(script), _left(script)


def _jwt(claims: dict) -> str:
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")  # noqa: E731
    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize("silent", ["discovery", "token-endpoint"])
def test_an_oidc_refresh_to_an_identity_provider_that_never_answers_is_bounded_and_named(standin, tmp_path, silent):
    """An expired id-token makes the client refresh it: a GET of the IdP's discovery document, then a POST
    to its token endpoint, both without a timeout in the client. Either one never answering costs
    --api-timeout, not the run's deadline, and the error names the URL (its secrets masked)."""
    _, kubeconfig = standin()
    quiet = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel's backlog) and never answers
    quiet_url = f"http://127.0.0.1:{quiet.getsockname()[1]}"
    quiet_tls = quiet_url.replace("http:", "https:")  # oauthlib refuses a token endpoint without TLS

    class Discovery(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = json.dumps({"issuer": self.headers["Host"], "token_endpoint": f"{quiet_tls}/token"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    idp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    threading.Thread(target=idp.serve_forever, daemon=True).start()
    issuer = quiet_url if silent == "discovery" else f"http://127.0.0.1:{idp.server_address[1]}"
    config = yaml.safe_load(kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"auth-provider": {"name": "oidc", "config": {
            "client-id": "conformance", "client-secret": "SENTINEL-oidc-secret", "refresh-token": "SENTINEL-refresh",
            "id-token": _jwt({"iss": issuer, "exp": 1000}), "idp-issuer-url": issuer}}}
    kubeconfig.write_text(yaml.safe_dump(config))
    try:
        done, took = suite(tmp_path / "r", "-m", "cluster", "--kubeconfig", str(kubeconfig), "--api-timeout", "2",
                           timeout=200)
    finally:
        idp.shutdown()
        quiet.close()
    assert done.returncode == 1, done.stdout[-3000:]
    assert took < 40, f"the run took {took:.0f} s"
    doc = document(tmp_path / "r" / "findings.json")
    assert not doc["run"].get("partial"), doc["run"].get("deadline")
    cluster = [f for f in doc["findings"] if f["status"] != "pending"]
    what = "GET " + issuer + "/.well-known/openid-configuration" if silent == "discovery" else \
        f"its token endpoint {quiet_tls}/token"
    assert cluster and all("oidc auth-provider could not refresh its expired id-token" in f["reason"]
                           and what in f["reason"] and "bounded by 2 s" in f["reason"] for f in cluster), \
        cluster[0]["reason"]
    assert "SENTINEL" not in done.stdout + done.stderr + (tmp_path / "r" / "findings.json").read_text()
