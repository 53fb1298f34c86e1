"""Connection metadata is facts, not argv: an inventory whose ssh args carry a ProxyCommand with
``sshpass -p SENTINEL`` and a ``SetEnv`` token reaches its host through the jump (a real sshd on
loopback, ``ssh -W`` through it), and neither secret is in the terminal output, any report format,
the history or the webhook body; ``run.connections`` names the jump host. The webhook's own
``?access_token=`` is not in nightly's failure line either."""
from __future__ import annotations

import http.server
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.faults.fake_hosts import LoopbackSshd, free_port
from tests.suite_runner import REPO

pytestmark = pytest.mark.testbed  # a loopback sshd and the nightly command end to end

PASSWORD, TOKEN, HOOK_TOKEN, BEARER = ("SENTINEL-pw-5b1e", "SENTINEL-tok-5b1e", "SENTINEL-hook-5b1e",
                                       "SENTINEL-bearer-5b1e")
SENTINELS = (PASSWORD, TOKEN, HOOK_TOKEN, BEARER)

# what sshpass does, minus the password prompt: drop "-p PASSWORD" and run the rest (sshpass is not installed)
FAKE_SSHPASS = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -p) shift 2;; -p*) shift;; *) break;; esac; done
exec "$@"
"""


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 - the stdlib's name
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def client_key(tmp_path) -> Path:
    key = tmp_path / "client_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def _everything_written(report_dir: Path) -> str:
    text = ""
    for path in sorted(report_dir.rglob("*")):
        if path.is_file() and path.suffix != ".sqlite" and not path.name.startswith("history"):
            text += path.read_text(errors="replace")
    with sqlite3.connect(report_dir / "history.sqlite") as db:
        for (table,) in db.execute("select name from sqlite_master where type='table'").fetchall():
            text += json.dumps(db.execute(f'select * from "{table}"').fetchall(), default=str)
    return text


def test_a_proxycommand_password_and_a_setenv_token_reach_no_output_history_or_webhook(tmp_path, client_key):
    host = LoopbackSshd(tmp_path / "host", client_key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        known = tmp_path / "known_hosts"
        known.write_text(f"{host.known_host()}\n")
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "sshpass").write_text(FAKE_SSHPASS)
        (bindir / "sshpass").chmod(0o755)
        proxy = (f"sshpass -p {PASSWORD} ssh -i {client_key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known} "
                 f"-o StrictHostKeyChecking=yes -o BatchMode=yes -p {host.port} -W %h:%p root@127.0.0.1")
        inventory = tmp_path / "hosts.ini"
        inventory.write_text(
            f"target ansible_host=127.0.0.1 ansible_port={host.port} ansible_user=root "
            f"ansible_ssh_private_key_file={client_key} "
            f"ansible_ssh_common_args='-o ProxyCommand=\"{proxy}\"' "
            f"ansible_ssh_extra_args='-o SetEnv=API_TOKEN={TOKEN}'\n")
        env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "RAILIANCE_WEBHOOK_TOKEN": BEARER}
        reports = tmp_path / "r"
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook?access_token={HOOK_TOKEN}"
        done = subprocess.run([sys.executable, "-m", "railiance_conformance", "nightly", "--report-dir", str(reports),
                               "--webhook", hook, "--", "-p", "no:randomly", "-m", "S1", "--ansible-inventory",
                               str(inventory), "--known-hosts", str(known), "--command-timeout", "30"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        # the same run with a webhook that refuses the connection: its failure line names the URL, masked
        dead = f"http://127.0.0.1:{free_port()}/hook?token={HOOK_TOKEN}&access_token={HOOK_TOKEN}"
        failed = subprocess.run([sys.executable, "-m", "railiance_conformance", "nightly", "--report-dir",
                                 str(tmp_path / "r2"), "--webhook", dead, "--webhook-retries", "0", "--", "-p",
                                 "no:randomly", "-m", "S1", "--ansible-inventory", str(inventory), "--known-hosts",
                                 str(known), "--command-timeout", "30"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    finally:
        host.stop()
        server.shutdown()
    doc = json.loads((reports / "findings.json").read_text())
    findings = [f for f in doc["findings"] if f["status"] != "pending"]
    assert findings and any(f["status"] in ("pass", "drift") for f in findings), \
        [f["reason"] for f in findings][:3]  # the host was really reached through the ProxyCommand
    connection = doc["run"]["connections"]["target"]
    assert connection["jump_host"] == "root@127.0.0.1" and connection["proxy"] == "ssh", connection
    assert "ssh_args" not in connection and "proxy_command" not in connection
    assert _Hook.bodies, done.stderr[-2000:]
    assert "publishing" in failed.stderr and "webhook failed" in failed.stderr, failed.stderr[-2000:]
    assert "access_token=***" in failed.stderr
    everything = (done.stdout + done.stderr + failed.stdout + failed.stderr + _everything_written(reports)
                  + _everything_written(tmp_path / "r2") + b"".join(_Hook.bodies).decode())
    for sentinel in SENTINELS:
        assert sentinel not in everything, sentinel


@pytest.mark.parametrize("dsn", [
    f"host=127.0.0.1 port={{port}} user=gate sslmode=prefer sslkey=/nonexistent sslpassword={PASSWORD} dbname=hub",
    f"postgresql://gate@127.0.0.1:{{port}}/hub?sslpassword={PASSWORD}&sslkey=/nonexistent",
    f"host=127.0.0.1 port={{port}} user=gate password='{PASSWORD} x' dbname=hub",
], ids=["sslpassword-keywords", "sslpassword-uri", "quoted-password"])
def test_no_dsn_secret_in_the_gates_errors(dsn):
    """libpq's sslpassword (the passphrase of sslkey) is a secret like password: masked in every gate
    message, whether libpq refused the connection or the two sides are one database."""
    from railiance_conformance.gate.parity import compare
    from railiance_conformance.gate.pg_session import masked_dsn

    port = free_port()  # nothing listens: libpq's own "connection refused"
    refused = compare(dsn.format(port=port), dsn.format(port=port).replace("hub", "other"))
    same = compare(dsn.format(port=port), dsn.format(port=port))
    text = f"{refused!r} {same!r} {masked_dsn(dsn.format(port=port))}"
    assert refused.error and same.error and "***" in text, text
    assert PASSWORD not in text, text
