"""Configurations as real operators write them, on real hosts.

Two nspawn hosts: ``realworld`` is probed as **root** (its operator's ~/.ssh/config includes
``config.d/*``, its checkouts use every remote form people write, its limits.conf and a sysctl.d
file carry bytes that are not UTF-8); ``locked`` is probed as the operator while
/etc/security/limits.d is readable only by root. A planted token in every remote form must reach
no output, and every finding must still be there for both hosts.
"""
from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from railiance_testbed.hosts import CONFORMANT
from railiance_testbed.nspawn import SSH_PORT, Testbed
from tests.conftest import nspawn_unavailable_reason
from tests.suite_runner import run_suite

TOKEN = "SNTLrw7Token"        # planted in remotes; must appear nowhere the suite writes
SLASHED = "SNTL/p@ss"          # a password holding "/" and "@"
GITEA_BLOCK = "Host gitea-local\n    HostName localhost\n    Port 30022\n    User git\n" \
              "    IdentityFile ~/.ssh/id_ed25519_gitea\n"

REMOTES = {
    "railiance-infra": "ssh://git@gitea-local/coulomb/railiance-infra.git",          # pushurl elsewhere
    "railiance-cluster": "git@gitea-local:coulomb/railiance-cluster.git",            # scp-like: same server
    "railiance-platform": f"oauth2:{TOKEN}@gitea.example.invalid:coulomb/railiance-platform.git",
    "railiance-apps": f"https://gitea.example.invalid/coulomb/railiance-apps.git?access_token={TOKEN}",
    "railiance-extra": f"https://tegwick:{SLASHED}@gitea.example.invalid/coulomb/extra.git",
}

REALWORLD = replace(
    CONFORMANT, name="realworld", root_login=True,
    remotes=REMOTES,
    pushurls={"railiance-infra": f"https://tegwick:{TOKEN}@gitea.example.invalid/coulomb/railiance-infra.git"},
    # the operator keeps host blocks in ~/.ssh/config.d/: a relative Include resolves in *their* ~/.ssh
    ssh_config="Include config.d/*\n",
    home_files={".ssh/config.d/gitea": GITEA_BLOCK},
    limits_conf_extra=b"# Grenzwerte f\xfcr den Build-Agenten (latin-1)\ntegwick soft nproc 512\ntegwick hard nproc 1024\n",
    sysctl_files={"/etc/sysctl.d/60-swappiness.conf": b"# r\xe9glage\nvm.swappiness = 10\n"},
)
LOCKED = replace(CONFORMANT, name="locked", limits_d_mode=0o700,
                 limits_d={"/etc/security/limits.d/99-build-jobs.conf": "tegwick - nproc 4096\n"})


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([REALWORLD, LOCKED], tmp_path_factory.mktemp("realworld")) as testbed:
        inventory = testbed.workdir / "rw-inventory"
        (inventory / "host_vars").mkdir(parents=True)
        realworld, locked = testbed.hosts
        (inventory / "hosts.ini").write_text(
            "[coulomb]\n"
            f"realworld ansible_host={realworld.address} ansible_port={SSH_PORT} ansible_user=root\n"
            f"locked ansible_host={locked.address} ansible_port={SSH_PORT} ansible_user=tegwick\n")
        (inventory / "host_vars" / "realworld.yml").write_text(
            "gitea_ssh_nodeport: 30022\nrepo_checkouts: [" + ", ".join(f"~/{r}" for r in REMOTES) + "]\n")
        (inventory / "host_vars" / "locked.yml").write_text("gitea_ssh_nodeport: 30022\n")
        yield testbed, inventory / "hosts.ini"


@pytest.fixture(scope="module")
def run(bed, tmp_path_factory):
    testbed, inventory = bed
    return run_suite("-m", "S1", "--ansible-inventory", str(inventory), "--ssh-config", str(testbed.ssh_config),
                     report_dir=tmp_path_factory.mktemp("rw-reports"))


def _finding(run, control, target):
    return next(f for f in run.findings(target) if f["control_id"] == control)


def test_both_hosts_are_reported_for_every_control(run):
    realworld, locked = run.statuses("realworld"), run.statuses("locked")
    assert len(realworld) == len(locked) >= 13, (realworld, locked)


def test_the_operators_ssh_config_is_resolved_as_the_operator(run):
    """Connected as root, ``Include config.d/*`` resolves in tegwick's ~/.ssh, not root's (kind 6)."""
    finding = _finding(run, "host.gitea_ssh.config", "realworld")
    assert finding["status"] == "pass", finding
    assert finding["observed"]["hostname"] == "localhost" and finding["observed"]["port"] == 30022


def test_remotes_are_read_where_pushes_go_and_never_leak(run):
    finding = _finding(run, "host.gitea_ssh.remotes", "realworld")
    assert finding["status"] == "drift"
    drifted = dict(finding["evidence"])["drifted"]
    # fetch to Gitea but push elsewhere (kind 7); the scp-like form is the same server
    assert "~/railiance-infra" in drifted and "~/railiance-cluster" not in drifted
    assert set(drifted) == {"~/railiance-infra", "~/railiance-platform", "~/railiance-apps", "~/railiance-extra"}
    assert "push https://tegwick:***@gitea.example.invalid" in finding["observed"]["~/railiance-infra"]


def test_a_planted_token_reaches_no_output(run):
    outputs = {p.name: p.read_bytes() for p in run.report_dir.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    outputs["stdout"], outputs["stderr"] = run.stdout.encode(), run.stderr.encode()
    with sqlite3.connect(run.report_dir / "history.sqlite") as db:
        rows = [repr(row) for table, in db.execute("select name from sqlite_master where type='table'")
                for row in db.execute(f"select * from {table}")]
    outputs["history.sqlite rows"] = "\n".join(rows).encode()
    for secret in (TOKEN, "p@ss", "SNTL/"):
        leaked = [name for name, data in outputs.items() if secret.encode() in data]
        assert not leaked, f"{secret!r} leaked into {leaked}"
    assert len(outputs) >= 8


def test_bytes_that_are_not_utf8_are_read_as_the_component_reads_them(run):
    """limits.conf and sysctl.d with latin-1 comments: the values still resolve."""
    assert _finding(run, "host.nproc.configured", "realworld")["status"] == "pass"
    assert _finding(run, "host.swappiness.persisted", "realworld")["status"] == "pass"


def test_an_unlistable_directory_is_an_error_naming_it_never_empty(run):
    """/etc/security/limits.d mode 0700 root while logged in as tegwick."""
    finding = _finding(run, "host.nproc.configured", "locked")
    assert finding["status"] == "error", finding
    assert "/etc/security/limits.d" in finding["reason"] and "permission denied" in finding["reason"]
    assert "converge" not in finding["remediation"] and "read access" in finding["remediation"]
    # the other controls of that host are still reported
    assert _finding(run, "host.swap.file", "locked")["status"] == "pass"


# --- what systemd, ssh and git really do (a second real-world host) -------------------------------

SYSTEMD_SSH_GIT = replace(
    CONFORMANT, name="rw-views", root_login=True,
    # ssh_config(5) TOKENS: %d is the passwd home; ssh -G prints it unexpanded, ssh loads /home/tegwick/...
    ssh_config="Host gitea-local\n    HostName localhost\n    Port 30022\n    User git\n"
               "    IdentityFile %d/.ssh/id_ed25519_gitea\n")


def _root(testbed, host, script: str) -> None:
    import subprocess
    done = subprocess.run(["ssh", "-F", str(testbed.ssh_config), "-p", str(SSH_PORT), f"root@{host.address}", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def views_run(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([SYSTEMD_SSH_GIT], tmp_path_factory.mktemp("rw-views")) as testbed:
        host = testbed.hosts[0]
        # `systemctl mask swapfile.swap`, as people keep swap off for kubelet while the fstab line stays;
        # railiance-infra pushes to a second remote named by remote.pushDefault
        _root(testbed, host, "ln -s /dev/null /etc/systemd/system/swapfile.swap && "
                             "runuser -u tegwick -- sh -c 'cd ~/railiance-infra && "
                             "git remote add mirror https://mirror.example.invalid/coulomb/railiance-infra.git && "
                             "git config remote.pushDefault mirror'")
        inventory = testbed.workdir / "views-inventory"
        (inventory / "host_vars").mkdir(parents=True)
        (inventory / "hosts.ini").write_text(
            f"[coulomb]\nrw-views ansible_host={host.address} ansible_port={SSH_PORT} ansible_user=root\n")
        (inventory / "host_vars" / "rw-views.yml").write_text("gitea_ssh_nodeport: 30022\n")
        yield run_suite("-m", "S1", "--ansible-inventory", str(inventory / "hosts.ini"), "--ssh-config",
                        str(testbed.ssh_config), report_dir=tmp_path_factory.mktemp("views-reports"))


def test_a_masked_swap_unit_is_not_enabled_after_a_reboot(views_run):
    """fstab still has the line, but /etc/systemd/system/swapfile.swap -> /dev/null: LoadState=masked."""
    finding = _finding(views_run, "host.swap.fstab", "rw-views")
    assert finding["status"] == "drift", finding
    assert finding["observed"]["enabled_at_boot"] is False
    assert "masked by /etc/systemd/system/swapfile.swap" in finding["reason"]


def test_identity_file_tokens_are_expanded_as_ssh_loads_them(views_run):
    """IdentityFile %d/.ssh/id_ed25519_gitea is the key ssh offers: no drift, and the login works with it."""
    finding = _finding(views_run, "host.gitea_ssh.config", "rw-views")
    assert finding["status"] == "pass", finding
    assert finding["observed"]["identityfile"] == "/home/tegwick/.ssh/id_ed25519_gitea"
    assert _finding(views_run, "host.gitea_ssh.login", "rw-views")["status"] == "pass"


def test_git_push_goes_where_remote_push_default_says(views_run):
    finding = _finding(views_run, "host.gitea_ssh.remotes", "rw-views")
    assert finding["status"] == "drift", finding
    assert dict(finding["evidence"])["drifted"] == ["~/railiance-infra"]
    observed = finding["observed"]["~/railiance-infra"]
    assert "push https://mirror.example.invalid/coulomb/railiance-infra.git (via remote mirror)" in observed
