"""The scale tier: 100 sshd-only namespace hosts (railiance_testbed/nshosts.py) and one suite run on them.

The hosts are started once for the module and stopped by pid at its end, also when a test fails.
On a namespace host systemd is not running, so the controls that ask systemd (or the cgroup tree it
builds) are error findings with that reason; every other S1 control passes on the conformant hosts
and drifts on the drifted one exactly as on an nspawn host.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_testbed.hosts import CONFORMANT, DRIFTED, DRIFTED_CONTROLS
from railiance_testbed.nshosts import SSH_PORT, SYSTEMD_CONTROLS, NamespaceTestbed
from tests.faults.fake_hosts import BannerThenSilence
from tests.suite_runner import run_suite

pytestmark = pytest.mark.testbed

HOSTS = 100
CATALOG = load_catalog(DEFAULT_POLICY_DIR)
HOST_CONTROLS = {c.id for c in CATALOG.controls.values() if c.id.startswith("host.") and not c.pending}
HOST_PENDING = {c.id for c in CATALOG.controls.values() if c.id.startswith("host.") and c.pending}
CONFORMANT_NAMES = [f"ns{i:03d}" for i in range(HOSTS)]


@pytest.fixture(scope="module")
def ns_bed(tmp_path_factory):
    """100 conformant namespace hosts and one drifted one; ``started_s``: how long they took to listen."""
    states = [replace(CONFORMANT, name=name) for name in CONFORMANT_NAMES] + [replace(DRIFTED, name="ns-drifted")]
    bed = NamespaceTestbed(states, tmp_path_factory.mktemp("nshosts"))
    started = time.monotonic()
    with bed:
        bed.started_s = time.monotonic() - started
        yield bed


@pytest.fixture(scope="module")
def ns_run(ns_bed, tmp_path_factory):
    """One suite run, as an operator starts it: ``pytest features/ -m S1`` with the hosts' inventory."""
    return run_suite("-m", "S1", "--ansible-inventory", str(ns_bed.inventory), "--ssh-config", str(ns_bed.ssh_config),
                     report_dir=tmp_path_factory.mktemp("ns-reports"))


def test_a_hundred_hosts_listen_within_seconds(ns_bed):
    # about 4 s on the project's 2-core machine; rendering every host's files anew (~0.5 s each) would
    # take a minute: the template per state is what keeps this bound
    assert len(ns_bed.hosts) == HOSTS + 1
    assert ns_bed.started_s < 30, ns_bed.started_s
    assert len({h.address for h in ns_bed.hosts}) == HOSTS + 1
    assert all(h.address.startswith("127.77.") for h in ns_bed.hosts)


def test_every_host_answers_ssh_in_its_own_namespaces(ns_bed):
    def login(host):
        # classical key exchange: sntrup761 would cost ~0.1 s of CPU per login, 101 times
        done = subprocess.run(["ssh", "-F", str(ns_bed.ssh_config), "-o", "KexAlgorithms=curve25519-sha256",
                               "-p", str(SSH_PORT), f"tegwick@{host.address}",
                               "hostname; cat /proc/1/comm; id -u; ulimit -Hu"],
                              capture_output=True, text=True, timeout=60)
        return host.state, done

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(login, ns_bed.hosts))
    for state, done in answers:
        assert done.returncode == 0, (state.name, done.stderr)
        # its own hostname (UTS namespace), sshd as PID 1 (pid namespace, no systemd), its user database
        # and pam_limits in the SSH session
        hard = {"ns-drifted": "4096"}.get(state.name, "1024")
        assert done.stdout.split() == [state.name, "sshd", str(state.uid), hard], (state.name, done.stdout)


def _statuses(document: dict) -> dict[str, dict[str, str]]:
    by_target: dict[str, dict[str, str]] = {}
    for finding in document["findings"]:
        by_target.setdefault(finding["target"], {})[finding["control_id"]] = finding["status"]
    return by_target


def test_the_suite_reports_every_host_with_systemd_controls_as_errors(ns_run):
    document = ns_run.document
    assert document["run"]["targets"] == sorted([*CONFORMANT_NAMES, "ns-drifted"]), document["run"]["targets"]
    expected = {**{c: "pass" for c in HOST_CONTROLS}, **{c: "error" for c in SYSTEMD_CONTROLS},
                **{c: "pending" for c in HOST_PENDING}}
    statuses = _statuses(document)
    for name in CONFORMANT_NAMES:
        assert statuses[name] == expected, name
    for finding in document["findings"]:
        if finding["control_id"] in SYSTEMD_CONTROLS:
            assert finding["status"] == "error"
            assert SYSTEMD_CONTROLS[finding["control_id"]] in finding["reason"], finding
            assert finding["remediation"], finding
    assert document["summary"]["error"] == len(SYSTEMD_CONTROLS) * (HOSTS + 1)
    assert ns_run.returncode == 1  # errors fail the run


def test_the_drifted_namespace_host_drifts_on_every_control_systemd_does_not_answer(ns_run):
    statuses = _statuses(ns_run.document)["ns-drifted"]
    assert {c for c, s in statuses.items() if s == "drift"} == DRIFTED_CONTROLS - set(SYSTEMD_CONTROLS)
    assert {c for c, s in statuses.items() if s == "error"} == set(SYSTEMD_CONTROLS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_hosts_are_stopped_by_pid_also_when_starting_or_a_test_fails(tmp_path):
    # a host whose Gitea sshd refuses its config (port 70000) exits before listening: starting fails
    broken = replace(CONFORMANT, name="broken", ssh_port_in_config=70000)
    bed = NamespaceTestbed([replace(CONFORMANT, name="a"), broken, replace(CONFORMANT, name="b")], tmp_path / "failing")
    with pytest.raises(RuntimeError, match="namespace host broken .* exited"):
        with bed:
            pass
    # and a test that fails inside the with block
    other = NamespaceTestbed([replace(CONFORMANT, name="c")], tmp_path / "raising")
    with pytest.raises(ZeroDivisionError):
        with other:
            assert _alive(other.hosts[0].pid)
            raise ZeroDivisionError("raised inside the with block")
    for host in [*bed.hosts, *other.hosts]:
        assert host.pid is not None and not _alive(host.pid), host.state.name
        with socket.socket() as probe:
            assert probe.connect_ex((host.address, SSH_PORT)) != 0, host.state.name
    mounts = Path("/proc/mounts").read_text()
    assert str(tmp_path) not in mounts
    # nothing of theirs is left running: no process has its root in a host's merged tree
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                root = os.readlink(proc / "root")
            except OSError:
                continue
            assert not root.startswith(str(tmp_path)), (proc.name, root)


def test_a_git_server_that_hangs_costs_only_its_own_controls(tmp_path):
    # five network checks (the login, four ls-remotes) each waiting on a server that never answers used to
    # take 5 x 15 s, past a 60 s --command-timeout: every control of the host was an error. Now each waits
    # at most its share of the budget (host_script.network_timeout) and only the Gitea checks are errors.
    state = replace(CONFORMANT, name="stalled", git_server=False)
    with NamespaceTestbed([state], tmp_path / "bed") as bed:
        # where the host's Gitea SSH server belongs: a server that hangs in the key exchange
        silent = BannerThenSilence(bed.hosts[0].address, state.ssh_port_in_config)
        try:
            started = time.monotonic()
            run = run_suite("-m", "S1", "--ansible-inventory", str(bed.inventory), "--ssh-config",
                            str(bed.ssh_config), "--command-timeout", "20", report_dir=tmp_path / "r")
            took = time.monotonic() - started
        finally:
            silent.stop()
    assert silent.connections, "the probe never reached the silent server"
    statuses = {f["control_id"]: f["status"] for f in run.findings("stalled")}
    stalled = {"host.gitea_ssh.login", "host.gitea_ssh.ls_remote"}
    assert {c for c, s in statuses.items() if s == "error"} == stalled | set(SYSTEMD_CONTROLS), statuses
    assert {c for c, s in statuses.items() if s == "pass"} == HOST_CONTROLS - stalled - set(SYSTEMD_CONTROLS)
    reasons = {f["control_id"]: f["reason"] for f in run.findings("stalled") if f["control_id"] in stalled}
    assert all("within 5 s" in r for r in reasons.values()), reasons   # 15 s of budget / 3 checks in a lane
    assert all("Gitea" in f["remediation"] for f in run.findings("stalled") if f["control_id"] in stalled)
    assert took < 20 + 15, took
