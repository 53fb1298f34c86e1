"""The cutover gate end to end: the suite on the testbed (a host, the API stand-in, fixture repos),
CloudNativePG Backups in the dump (relative times: fresh on any date), restore parity between two real
PostgreSQL databases with a fresh drill marker, and a signed approval verified with ssh-keygen."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from railiance_testbed import SEED_WORKPLAN as SEED  # noqa: E402  (the bundled copy of shared/seed)
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from railiance_testbed.repos import build_repos
from tests.gate.conftest import ADA
from tests.gate.test_drill import mark
from tests.suite_runner import REPO

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
    mark(postgres, restored, 1)  # the drill ended an hour ago
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
        return db.execute("select count(*) from approval_chain").fetchone()[0] if "approval_chain" in tables else 0


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "railiance_conformance", "gate", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_go_on_the_conformant_testbed_on_any_date_then_a_verified_signed_approval(testbed, cluster, repos,
                                                                                   databases, keys, tmp_path):
    kubeconfig = cluster()
    done = gate(tmp_path, kubeconfig, repos, testbed, "--approve", ADA, "--signing-key", str(keys["ada"]),
                "--allowed-signers", str(keys["allowed"]))  # the conformant dump alone: its backup is 3 h old
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"GO: {TASK}")
    assert "gate.restore.fresh: pass" in done.stdout and "gate.backup.recent: pass" in done.stdout
    assert "tables compared (schemas audit, public; 4 sequences checked):" in done.stdout
    assert any(line.split() == ["public.customers", "source", "120", "=", "restored", "120"]
               for line in done.stdout.splitlines())
    assert f"approved: {TASK} run " in done.stdout and f"by {ADA}" in done.stdout and approvals(tmp_path) == 1
    history = tmp_path / "history.sqlite"
    assert "cluster d8fb827e-c443-99c2-af4b-d1ae7000c9b7" in done.stdout  # the dump's kube-system namespace uid
    head = done.stdout.split("keep with the change ticket: gate --verify-approvals --expect-head ")[1].split()[0]
    verified = cli("--verify-approvals", "--history", str(history), "--allowed-signers", str(keys["allowed"]),
                   "--expect-head", head, "--kubeconfig", str(kubeconfig))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("the head kept elsewhere is row #1\napproval chain verifies: 1 rows, "
                                      f"head {head}, history "), verified.stdout
    listed = cli("--list-approvals", "--history", str(history))
    assert ADA in listed.stdout and "railiance-infra@" in listed.stdout
    reports = tmp_path / "gate"
    document = json.loads((reports / "findings.json").read_text())
    counts = document["run"]["gate"]["evidence"]["gate.restore.parity"]["tables"]
    assert counts["public.events"] == {"source": 50, "restored": 50}
    archived = list((tmp_path / "history-archive" / "reports").iterdir())
    assert [p.read_bytes() for p in archived] == [(reports / "findings.json").read_bytes()]
    assert "**GO**" in (reports / "summary.md").read_text()
    go = next(f for f in text_string_to_metric_families((reports / "railiance_conformance.prom").read_text())
              if f.name == "railiance_conformance_gate_go")
    assert [(s.labels, s.value) for s in go.samples] == [({"task": "RAIL-HO-WP-0004-T09"}, 1)]
    secrets = [databases[0].password.encode(), keys["ada"].read_bytes().split(b"\n")[1]]  # a line of the private key
    for path in [*reports.iterdir(), *archived, history]:
        assert not any(secret in path.read_bytes() for secret in secrets), path
    assert not any(secret.decode() in done.stdout + done.stderr for secret in secrets)


def test_an_approval_by_a_key_not_in_allowed_signers_is_refused(testbed, cluster, repos, databases, keys, tmp_path):
    done = gate(tmp_path, cluster(), repos, testbed, "--approve", ADA, "--signing-key", str(keys["eve"]),
                "--allowed-signers", str(keys["allowed"]))
    assert done.returncode == 1 and done.stdout.startswith(f"GO: {TASK}")
    assert "approval refused: key SHA256:" in done.stdout and f"may not approve as '{ADA}'" in done.stdout
    assert approvals(tmp_path) == 0


def test_approve_without_a_signing_key_is_refused_before_any_probe(tmp_path):
    done = cli(TASK, "--workplan", str(SEED), "--history", str(tmp_path / "h.sqlite"), "--approve", ADA)
    assert done.returncode == 3 and "--approve needs --signing-key" in done.stderr
    assert not (tmp_path / "h.sqlite").exists()


STALE = {"delete": [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup", "namespace": "databases",
                     "name": "gitea-db-daily-20261126020000"}]}  # leaves the backup of 27 h ago as the newest


def approve(keys) -> tuple[str, ...]:
    """A valid approval request: on NO-GO it must be refused all the same."""
    return ("--approve", ADA, "--signing-key", str(keys["ada"]), "--allowed-signers", str(keys["allowed"]))


def no_go(done: subprocess.CompletedProcess, tmp_path: Path, reason: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(f"NO-GO: {TASK}")
    assert reason in done.stdout, done.stdout
    assert "approval refused" in done.stdout and approvals(tmp_path) == 0


def test_no_go_when_a_prerequisite_drifted(testbed, cluster, repos, databases, keys, tmp_path):
    kubeconfig = cluster(backup("gitea-db-fresh", "completed", 2), overlays=("gitea-unavailable",))
    no_go(gate(tmp_path, kubeconfig, repos, testbed, *approve(keys)), tmp_path, "gate.preconditions: drift")


def test_no_go_when_the_newest_backup_is_stale(testbed, cluster, repos, databases, keys, tmp_path):
    done = gate(tmp_path, cluster(STALE), repos, testbed, *approve(keys))
    no_go(done, tmp_path, "gate.backup.recent: drift")
    assert "gitea-db-daily-20261125020000 is 27.0 h old, older than the 24 h window" in done.stdout


def test_no_go_when_the_newest_backup_failed(testbed, cluster, repos, databases, keys, tmp_path):
    kubeconfig = cluster(backup("gitea-db-ok", "completed", 5), backup("gitea-db-broken", "failed", 1))
    done = gate(tmp_path, kubeconfig, repos, testbed, *approve(keys))
    no_go(done, tmp_path, "gate.backup.recent: drift")
    assert "gitea-db-broken is failed" in done.stdout


def test_no_go_when_the_restored_copy_misses_a_row(testbed, cluster, repos, databases, keys, tmp_path):
    server, _, restored = databases
    with psycopg.connect(server.dsn(restored), autocommit=True) as conn:
        conn.execute("DELETE FROM customers WHERE id = 7")
    done = gate(tmp_path, cluster(backup("gitea-db-fresh", "completed", 2)), repos, testbed, *approve(keys))
    no_go(done, tmp_path, "gate.restore.parity: drift")
    assert "public.customers: 120 rows in the source, 119 in the restored copy" in done.stdout


def test_no_go_when_a_control_of_the_layer_could_not_be_verified(testbed, cluster, repos, databases, keys, tmp_path):
    kubeconfig = cluster(backup("gitea-db-fresh", "completed", 2))
    text = kubeconfig.read_text()
    # a second, broken cluster context: the suite errors on every cluster control (S5 among them)
    broken = tmp_path / "broken-kc"
    broken.write_text(text.replace("http://127.0.0.1:", "http://127.0.0.1:1#"))
    done = subprocess.run(
        [sys.executable, "-m", "railiance_conformance", "gate", TASK, "--workplan", str(SEED),
         "--kubeconfig", str(broken), "--repos", str(repos), "--report-dir", str(tmp_path / "gate"),
         "--history", str(tmp_path / "history.sqlite"), *approve(keys)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    no_go(done, tmp_path, "gate.layer_errors: drift")


def test_a_failed_connection_is_a_clear_error_without_the_password(testbed, cluster, repos, databases, tmp_path,
                                                                   monkeypatch):
    server, source, _ = databases
    monkeypatch.setenv("STATE_HUB_RESTORED_DSN", server.dsn(source, port=1))
    done = gate(tmp_path, cluster(backup("gitea-db-fresh", "completed", 2)), repos, testbed)
    assert done.returncode == 1 and "gate.restore.parity: error" in done.stdout
    assert server.password not in done.stdout + done.stderr


@pytest.mark.parametrize("change, field", [
    ({"drill": {"window_hours": 48}}, "drill"),  # a drill needs the parity's restored DSN
    ({"parity": {"source_dsn_env": "A", "restored_dsn_env": "B", "checksum": "yes"}}, "checksum"),
    ({"parity": {"source_dsn_env": "A", "restored_dsn_env": "B", "connect_timeout_s": 0}}, "connect_timeout_s"),
])
def test_a_bad_gate_policy_is_refused_naming_the_file_and_field(tmp_path, change, field):
    import shutil

    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    document = yaml.safe_load((policies / "gate.yaml").read_text())
    document["tasks"]["T10"] = change
    (policies / "gate.yaml").write_text(yaml.safe_dump(document))
    done = cli(TASK, "--workplan", str(SEED), "--policy-dir", str(policies), "--history", str(tmp_path / "h.sqlite"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert str(policies / "gate.yaml") in done.stderr and field in done.stderr
    assert not (tmp_path / "h.sqlite").exists()
