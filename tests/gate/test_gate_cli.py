"""The cutover gate end to end: the suite on the testbed (a host, the API stand-in, fixture repos),
CloudNativePG Backups in the dump, and restore parity between two real PostgreSQL databases."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import yaml

from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from railiance_testbed.repos import build_repos
from tests.suite_runner import REPO

from railiance_testbed import SEED_WORKPLAN as SEED  # noqa: E402  (the bundled copy of shared/seed)
TASK = "RAIL-HO-WP-0004-T09"


def backup(name: str, phase: str, hours_ago: float) -> dict:
    stopped = (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": "databases", "creationTimestamp": stopped},
            "spec": {"cluster": {"name": "gitea-db"}, "method": "barmanObjectStore"},
            "status": {"phase": phase, "startedAt": stopped, "stoppedAt": stopped}}


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    built = build_repos(tmp_path_factory.mktemp("repos"), "conformant")
    return Path(next(iter(built.values()))).parent


@pytest.fixture
def databases(postgres, seeded, monkeypatch):
    """A source database and its restored copy (same seed); their DSNs in the gate policy's env vars."""
    source, restored = (postgres.create_database(template=seeded) for _ in range(2))
    monkeypatch.setenv("STATE_HUB_SOURCE_DSN", postgres.dsn(source))
    monkeypatch.setenv("STATE_HUB_RESTORED_DSN", postgres.dsn(restored, url=True))
    return postgres, source, restored


@pytest.fixture
def cluster(tmp_path):
    """Start the API stand-in with extra objects (Backups) and overlays; stopped on teardown."""
    started = []

    def start(*objects: dict, overlays: tuple[str, ...] = ()) -> Path:
        extra = tmp_path / f"extra-{len(started)}.yaml"
        extra.write_text(yaml.safe_dump_all(objects))
        layers = [CONFORMANT_DUMP, *(f for o in overlays for f in drift_overlay(o)), extra]
        started.append(KubeAPIStandIn(load_dump(layers)).start())
        return started[-1].write_kubeconfig(tmp_path / f"kc-{len(started)}")

    yield start
    for api in started:
        api.stop()


def gate(tmp_path: Path, kubeconfig: Path, repos: Path, testbed, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "railiance_conformance", "gate", TASK, "--workplan", str(SEED),
         "--kubeconfig", str(kubeconfig), "--repos", str(repos), "--report-dir", str(tmp_path / "gate"),
         "--history", str(tmp_path / "history.sqlite"), *extra, "--",
         "--ansible-inventory", str(testbed.inventory), "--ssh-config", str(testbed.ssh_config),
         "--limit", "conformant"],
        cwd=REPO, capture_output=True, text=True, timeout=300)


def approvals(tmp_path: Path) -> int:
    path = tmp_path / "history.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        return db.execute("select count(*) from approvals").fetchone()[0] if "approvals" in tables else 0


def test_go_when_everything_holds_and_the_approval_is_recorded(testbed, cluster, repos, databases, tmp_path):
    kubeconfig = cluster(backup("gitea-db-fresh", "completed", 2))
    done = gate(tmp_path, kubeconfig, repos, testbed, "--approve", "Ada Operator")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"GO: {TASK}")
    assert "approved: RAIL-HO-WP-0004-T09 by Ada Operator" in done.stdout and approvals(tmp_path) == 1
    listed = subprocess.run([sys.executable, "-m", "railiance_conformance", "gate", "--list-approvals",
                             "--history", str(tmp_path / "history.sqlite")], cwd=REPO, capture_output=True, text=True)
    assert "Ada Operator" in listed.stdout and "railiance-infra@" in listed.stdout
    reports = tmp_path / "gate"
    assert "Cutover gate" in (reports / "summary.md").read_text() and "**GO**" in (reports / "summary.md").read_text()
    assert 'railiance_conformance_gate_go{task="RAIL-HO-WP-0004-T09"} 1' in (reports / "railiance_conformance.prom").read_text()
    password = databases[0].password
    for path in reports.iterdir():
        assert password.encode() not in path.read_bytes()
    assert password not in done.stdout + done.stderr


def no_go(done: subprocess.CompletedProcess, tmp_path: Path, reason: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(f"NO-GO: {TASK}")
    assert reason in done.stdout, done.stdout
    assert "approval refused" in done.stdout and approvals(tmp_path) == 0


def test_no_go_when_a_prerequisite_drifted(testbed, cluster, repos, databases, tmp_path):
    kubeconfig = cluster(backup("gitea-db-fresh", "completed", 2), overlays=("gitea-unavailable",))
    no_go(gate(tmp_path, kubeconfig, repos, testbed, "--approve", "Ada"), tmp_path,
          "gate.preconditions: drift")


def test_no_go_when_the_newest_backup_is_stale(testbed, cluster, repos, databases, tmp_path):
    no_go(gate(tmp_path, cluster(), repos, testbed, "--approve", "Ada"), tmp_path, "gate.backup.recent: drift")


def test_no_go_when_the_newest_backup_failed(testbed, cluster, repos, databases, tmp_path):
    kubeconfig = cluster(backup("gitea-db-ok", "completed", 5), backup("gitea-db-broken", "failed", 1))
    done = gate(tmp_path, kubeconfig, repos, testbed, "--approve", "Ada")
    no_go(done, tmp_path, "gate.backup.recent: drift")
    assert "gitea-db-broken is failed" in done.stdout


def test_no_go_when_the_restored_copy_misses_a_row(testbed, cluster, repos, databases, tmp_path):
    server, _, restored = databases
    with psycopg.connect(server.dsn(restored), autocommit=True) as conn:
        conn.execute("DELETE FROM customers WHERE id = 7")
    done = gate(tmp_path, cluster(backup("gitea-db-fresh", "completed", 2)), repos, testbed, "--approve", "Ada")
    no_go(done, tmp_path, "gate.restore.parity: drift")
    assert "public.customers: 120 rows in the source, 119 in the restored copy" in done.stdout


def test_no_go_when_a_control_of_the_layer_could_not_be_verified(testbed, cluster, repos, databases, tmp_path):
    kubeconfig = cluster(backup("gitea-db-fresh", "completed", 2))
    text = kubeconfig.read_text()
    # a second, broken cluster context: the suite errors on every cluster control (S5 among them)
    broken = tmp_path / "broken-kc"
    broken.write_text(text.replace("http://127.0.0.1:", "http://127.0.0.1:1#"))
    done = subprocess.run(
        [sys.executable, "-m", "railiance_conformance", "gate", TASK, "--workplan", str(SEED),
         "--kubeconfig", str(broken), "--repos", str(repos), "--report-dir", str(tmp_path / "gate"),
         "--history", str(tmp_path / "history.sqlite"), "--approve", "Ada"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    no_go(done, tmp_path, "gate.layer_errors: drift")


def test_a_failed_connection_is_a_clear_error_without_the_password(testbed, cluster, repos, databases, tmp_path,
                                                                   monkeypatch):
    server, source, _ = databases
    monkeypatch.setenv("STATE_HUB_RESTORED_DSN", server.dsn(source, port=1))
    done = gate(tmp_path, cluster(backup("gitea-db-fresh", "completed", 2)), repos, testbed)
    assert done.returncode == 1 and "gate.restore.parity: error" in done.stdout
    assert server.password not in done.stdout + done.stderr
