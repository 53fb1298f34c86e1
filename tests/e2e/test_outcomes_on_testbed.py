"""What "Done when" promises, on real hosts: the kernel's swap total, every running process
of the operator, the slice's cgroup caps, and a prompt-free ssh login and ls-remote against a real
SSH git server (sshd + git-shell serving bare repositories, railiance_testbed.hosts._render_git_server).

Three nspawn hosts: ``stale`` runs an agent of tegwick started with other nproc limits (a service with
LimitNPROC=4096:8192, a token in its arguments) and has only 2 GiB of swap; ``refused``'s git server
lacks the operator's key; ``nogit`` has no git server at all (nothing listens on Gitea's port).
"""
from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from railiance_testbed.hosts import CGROUP2_CONTROLS, CONFORMANT, GIB, STALE_PROCESS_SENTINEL, cgroup2_memory
from railiance_testbed.nspawn import Testbed
from tests.conftest import nspawn_unavailable_reason
from tests.suite_runner import run_suite

STALE = replace(CONFORMANT, name="stale", stale_process_nproc=(4096, 8192), swap_bytes=2 * GIB)
REFUSED = replace(CONFORMANT, name="refused", git_server_refuses=True)
NOGIT = replace(CONFORMANT, name="nogit", git_server=False)
OUTCOMES = {"host.swap.total", "host.nproc.processes", "host.slice.enforced", "host.gitea_ssh.login",
            "host.gitea_ssh.ls_remote"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([STALE, REFUSED, NOGIT], tmp_path_factory.mktemp("outcomes")) as bed:
        yield run_suite("-m", "S1", "--ansible-inventory", str(bed.inventory), "--ssh-config", str(bed.ssh_config),
                        report_dir=tmp_path_factory.mktemp("outcome-reports"))


def finding(run, target: str, control: str) -> dict:
    return next(f for f in run.findings(target) if f["control_id"] == control)


def test_a_process_left_with_old_limits_is_drift_with_its_pid_and_command(run):
    found = finding(run, "stale", "host.nproc.processes")
    assert found["status"] == "drift", found
    offenders = found["observed"]["offending_processes"]
    assert {o["command"] for o in offenders.values()} == {"sh", "sleep"}
    assert all((o["soft"], o["hard"]) == (4096, 8192) for o in offenders.values())
    assert all(pid.isdigit() for pid in offenders)
    # a new login still has the caps: only the outcome control sees the agent
    assert finding(run, "stale", "host.nproc.effective")["status"] == "pass"
    assert finding(run, "refused", "host.nproc.processes")["status"] == "pass"


def test_a_process_argument_reaches_no_output(run):
    outputs = {p.name: p.read_bytes() for p in run.report_dir.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    outputs["stdout"], outputs["stderr"] = run.stdout.encode(), run.stderr.encode()
    with sqlite3.connect(run.report_dir / "history.sqlite") as db:
        outputs["history"] = repr(list(db.execute("select * from findings"))).encode()
    assert not [name for name, data in outputs.items() if STALE_PROCESS_SENTINEL.encode() in data]
    assert not [name for name, data in outputs.items() if b"--token=" in data]


def test_the_kernels_swap_total_short_of_the_policy_is_drift(run):
    found = finding(run, "stale", "host.swap.total")
    assert found["status"] == "drift"
    assert found["observed"]["swap_total_bytes"] == 2 * GIB - 4096
    assert finding(run, "refused", "host.swap.total")["status"] == "pass"


def test_a_real_git_server_accepting_the_key_passes(run):
    assert finding(run, "stale", "host.gitea_ssh.login")["status"] == "pass"
    assert "Interactive git shell is not enabled" in finding(run, "stale", "host.gitea_ssh.login")["evidence"]["server_answer"] \
        or "git-shell-commands" in finding(run, "stale", "host.gitea_ssh.login")["evidence"]["server_answer"]
    ls = finding(run, "stale", "host.gitea_ssh.ls_remote")
    assert ls["status"] == "pass", ls
    assert set(ls["observed"].values()) == {"answers"}


def test_a_git_server_refusing_the_key_is_drift(run):
    login = finding(run, "refused", "host.gitea_ssh.login")
    assert login["status"] == "drift" and "Permission denied (publickey)" in login["reason"]
    ls = finding(run, "refused", "host.gitea_ssh.ls_remote")
    assert ls["status"] == "drift" and len(ls["evidence"]["drifted"]) == 4


def test_an_unreachable_git_server_is_an_error_with_the_reason(run):
    for control in ("host.gitea_ssh.login", "host.gitea_ssh.ls_remote"):
        found = finding(run, "nogit", control)
        assert found["status"] == "error", found
        assert "Connection refused" in found["reason"]
        assert "Gitea's SSH Service" in found["remediation"]


def test_the_slice_caps_are_read_from_cgroup_v2_or_an_error_says_why(run):
    for target in ("stale", "refused"):
        found = finding(run, target, "host.slice.enforced")
        if cgroup2_memory():
            assert found["status"] == "pass", found
        else:
            assert found["status"] == "error" and "not cgroup v2" in found["reason"], found
            assert "unified cgroup hierarchy" in found["remediation"]
    assert CGROUP2_CONTROLS <= OUTCOMES
