"""The outcome controls (what a task's Done-when promises), evaluated in-process on the fact script's sections (probes/facts.py).

What "Done when" promises, not only configuration: the kernel's swap total (T01), every running process
of the operator and the slice's cgroup v2 caps (T02), a prompt-free ssh login and ls-remote (T07).
Each test gives real output of the commands the facts run and asserts the exact outcome.
"""
from __future__ import annotations

import re

import pytest

from railiance_conformance.checks import evaluate_control
from railiance_conformance.finding import FactUnavailable, Status
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.probes.host_script import Section

DESIRED = {"operator_user": "tegwick", "operator_uid": 1000, "swap_size_gb": 4, "nproc_soft": 512,
           "nproc_hard": 1024, "user_memory_max": "1500M", "user_memory_swap_max": "512M"}
MEMINFO = "SwapTotal:       {kib} kB\nSwapFree:        {kib} kB"
SWAPS = "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 4194300 0 -2"


def host(**sections: tuple[int, str]) -> HostFacts:
    return HostFacts("h", {name: Section(rc, out) for name, (rc, out) in sections.items()})


def evaluate(control_id: str, facts: HostFacts, **overrides):
    return evaluate_control(control_id, facts, DESIRED | overrides)


# ---- T01: the kernel's total swap --------------------------------------------------------------------------
@pytest.mark.parametrize("kib,status", [
    (4194300, Status.PASS),            # a 4 GiB swap file: its first page is the header
    (4 * 1024 * 1024, Status.PASS),    # a 4 GiB partition
    (4194296, Status.DRIFT),           # two pages short
    (2097148, Status.DRIFT),           # a 2 GiB file
    (0, Status.DRIFT),                 # no swap at all
])
def test_swap_total_is_the_stated_size_within_a_page(kib: int, status: Status) -> None:
    facts = host(**{"pagesize": (0, "4096"), "meminfo": (0, MEMINFO.format(kib=kib)), "proc.swaps": (0, SWAPS)})
    outcome = evaluate("host.swap.total", facts)
    assert outcome.status is status
    assert outcome.expected == {"swap_total_bytes": 4 * 1024 ** 3, "tolerance_bytes": 4096}
    assert outcome.observed == {"swap_total_bytes": kib * 1024, "tolerance_bytes": 4096}
    assert dict(outcome.evidence)["swap_areas"] == ["/swapfile"]


def test_swap_total_follows_the_inventory() -> None:
    facts = host(**{"pagesize": (0, "4096"), "meminfo": (0, MEMINFO.format(kib=8388604)), "proc.swaps": (0, SWAPS)})
    assert evaluate("host.swap.total", facts, swap_size_gb=8).status is Status.PASS


def test_an_unreadable_meminfo_is_an_error_not_a_pass() -> None:
    from railiance_conformance.finding import FactUnavailable

    facts = host(**{"pagesize": (0, "4096"), "meminfo": (1, "grep: /proc/meminfo: Permission denied")})
    with pytest.raises(FactUnavailable, match="/proc/meminfo"):
        evaluate("host.swap.total", facts)


# ---- T02: every running process of the user ----------------------------------------------------------------
def processes(*rows: str, rc: int = 0) -> HostFacts:
    return host(**{"whoami": (0, "tegwick"), "processes tegwick": (rc, "\n".join(rows))})


def test_every_process_with_the_caps_passes() -> None:
    outcome = evaluate("host.nproc.processes", processes("44\t512\t1024\tsystemd", "105\t512\t1024\tbash"))
    assert outcome.status is Status.PASS
    assert outcome.observed == {"processes": 2, "all": {"soft": 512, "hard": 1024}}


def test_a_process_left_with_old_limits_is_drift_naming_pid_and_command() -> None:
    outcome = evaluate("host.nproc.processes", processes("33\t4096\t8192\tsh", "35\t4096\t8192\tsleep",
                                                         "105\t512\t1024\tbash"))
    assert outcome.status is Status.DRIFT
    assert outcome.observed == {"offending_processes": {"33": {"command": "sh", "soft": 4096, "hard": 8192},
                                                        "35": {"command": "sleep", "soft": 4096, "hard": 8192}}}
    assert outcome.reason.startswith("2 of 3 processes of tegwick run with other nproc limits: 33 (sh: soft 4096")


def test_unlimited_is_read_as_unlimited() -> None:
    outcome = evaluate("host.nproc.processes", processes("7\tunlimited\tunlimited\tagent"))
    assert outcome.observed["offending_processes"]["7"] == {"command": "agent", "soft": "unlimited", "hard": "unlimited"}


def test_no_visible_process_is_an_error_and_no_user_is_drift() -> None:
    assert evaluate("host.nproc.processes", processes()).status is Status.ERROR
    assert "hidepid" in evaluate("host.nproc.processes", processes()).reason
    missing = evaluate("host.nproc.processes", processes("no such user: tegwick", rc=2))
    assert (missing.status, missing.observed) == (Status.DRIFT, "no user 'tegwick'")


def test_the_process_fact_never_reads_arguments() -> None:
    command = F.user_processes("tegwick").command
    assert "/comm" in command and "cmdline" not in command and "ps " not in command


# ---- T02: the slice's caps as the kernel enforces them (cgroup v2) ----------------------------------------
SLICE = "/sys/fs/cgroup/user.slice/user-1000.slice"


def cgroup(fs: str = "cgroup2fs", **files: str) -> HostFacts:
    sections = {"meminfo": Section(0, "MemTotal:       8000000 kB"), "pagesize": Section(0, "4096"),
                "cgroup.fs": Section(0, fs)}
    sections.update({f"file {SLICE}/{name.replace('_', '.')}": Section(0, text) for name, text in files.items()})
    return HostFacts("h", sections)


def test_the_cgroup_path_of_a_slice() -> None:
    assert F.cgroup_path("user-1000.slice") == SLICE
    assert F.cgroup_path("system.slice") == "/sys/fs/cgroup/system.slice"


def test_the_kernels_caps_pass_and_drift() -> None:
    good = evaluate("host.slice.enforced", cgroup(memory_max="1572864000\n", memory_swap_max="536870912\n"))
    assert (good.status, good.observed) == (Status.PASS, {"memory.max": 1572864000, "memory.swap.max": 536870912})
    bad = evaluate("host.slice.enforced", cgroup(memory_max="max\n", memory_swap_max="1073741824\n"))
    assert bad.status is Status.DRIFT
    assert bad.observed == {"memory.max": "max", "memory.swap.max": 1073741824}
    assert bad.expected == {"memory.max": 1572864000, "memory.swap.max": 536870912}


def test_a_value_the_kernel_rounds_to_a_page_still_passes() -> None:
    outcome = evaluate("host.slice.enforced", cgroup(memory_max="999997440\n", memory_swap_max="536870912\n"),
                       user_memory_max="1000000001")  # not a page multiple: the kernel keeps whole pages
    assert outcome.status is Status.PASS


def test_without_cgroup_v2_the_caps_are_an_error_that_says_so() -> None:
    outcome = evaluate("host.slice.enforced", cgroup(fs="tmpfs"))
    assert outcome.status is Status.ERROR
    assert "not cgroup v2" in outcome.reason and "tmpfs" in outcome.reason
    missing = evaluate("host.slice.enforced", cgroup())
    assert missing.status is Status.ERROR and "memory controller" in missing.reason


# ---- T07: ssh in batch mode, ls-remote ---------------------------------------------------------------------
LOGIN = "ssh.login tegwick gitea-local"
REPOS = ["~/railiance-infra", "~/railiance-cluster", "~/railiance-platform", "~/railiance-apps"]


@pytest.mark.parametrize("rc,text,status", [
    (128, "fatal: Interactive git shell is not enabled.\nhint: ~/git-shell-commands should exist", Status.PASS),
    (1, "Hi there, coulomb! You've successfully authenticated with the key named coulombcore, "
        "but Gitea does not provide shell access.", Status.PASS),
    (255, "git@localhost: Permission denied (publickey).", Status.DRIFT),
    (255, "Host key verification failed.", Status.DRIFT),
    (255, "ssh: connect to host localhost port 30022: Connection refused", Status.ERROR),
    (255, "ssh: Could not resolve hostname gitea.invalid: Name or service not known", Status.ERROR),
])
def test_batch_login(rc: int, text: str, status: Status) -> None:
    outcome = evaluate("host.gitea_ssh.login", host(**{LOGIN: (rc, text)}))
    assert outcome.status is status, outcome
    if status is Status.ERROR:
        assert "cannot be reached from the host" in outcome.reason


def test_a_timeout_is_an_error() -> None:
    assert evaluate("host.gitea_ssh.login", host(**{LOGIN: (124, "")})).status is Status.ERROR


def ls_remote(**outputs: tuple[int, str]) -> HostFacts:
    sections = {f"lsremote tegwick:{path}": Section(0, f"url ssh://git@gitea-local/coulomb/{path[2:]}.git\nrc 0 refs 1")
                for path in REPOS}
    sections.update({f"lsremote tegwick:~/{name.replace('_', '-')}": Section(rc, out) for name, (rc, out) in outputs.items()})
    return HostFacts("h", sections)


def test_ls_remote_of_every_push_url() -> None:
    assert evaluate("host.gitea_ssh.ls_remote", ls_remote()).status is Status.PASS
    refused = ls_remote(railiance_apps=(0, "url ssh://git@gitea-local/coulomb/railiance-apps.git\nrc 128 refs 0\n"
                                           "  git@localhost: Permission denied (publickey).\n"
                                           "  fatal: Could not read from remote repository."))
    outcome = evaluate("host.gitea_ssh.ls_remote", refused)
    assert outcome.status is Status.DRIFT
    assert dict(outcome.evidence)["drifted"] == ["~/railiance-apps"]
    assert "Permission denied" in outcome.observed["~/railiance-apps"]


def test_ls_remote_unreachable_is_an_error_but_drift_wins() -> None:
    down = "url ssh://git@gitea-local/coulomb/x.git\nrc 128 refs 0\n  ssh: connect to host localhost port 30022: Connection refused"
    only_down = ls_remote(railiance_infra=(0, down))
    assert evaluate("host.gitea_ssh.ls_remote", only_down).status is Status.ERROR
    both = ls_remote(railiance_infra=(0, down), railiance_apps=(3, "error: No such remote 'origin'"))
    outcome = evaluate("host.gitea_ssh.ls_remote", both)
    assert outcome.status is Status.DRIFT and outcome.observed["~/railiance-apps"].startswith("no origin")


def test_the_probes_cannot_prompt_or_write() -> None:
    login, lsremote = F.ssh_login("tegwick", "gitea-local").command, F.git_ls_push_remote("tegwick", "~/r").command
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "UpdateHostKeys=no", "ControlMaster=no",
                   "PermitLocalCommand=no"):
        assert option in login and option in lsremote
    assert "credential.helper=" in lsremote and "GIT_TERMINAL_PROMPT=0" in lsremote
    # never a git push (the resolver's text names push keys: pushurl, pushinsteadof; git's own command is the point)
    assert not re.search(r"(?:^|[;&|(`]|\$\()\s*(?:git|g)(?:\s+-c\s+\S+)*\s+push\b", lsremote, re.M)
    assert re.search(r"(?:^|[;&|(`]|\$\()\s*(?:git|g)(?:\s+-c\s+\S+)*\s+push\b", "x; git -c a=b push origin")


# what git and dash printed on namespace hosts whose login user had reached its nproc cap (one kernel,
# one uid across 100 hosts): the probe could not run, which is an error with that reason, never drift
FORK_GIT = ("url ssh://git@gitea-local/coulomb/railiance-infra.git\nrc 128 refs 0\n"
            "  error: cannot fork() for ssh -o BatchMode=yes -o ConnectTimeout=5: Resource temporarily unavailable")
FORK_CUT = "url ssh://git@gitea-local/coulomb/railiance-infra.git\nsh: 1: Cannot fork\nrc 0 refs "


@pytest.mark.parametrize("output", [FORK_GIT, FORK_CUT], ids=["git-cannot-fork", "shell-cannot-fork"])
def test_a_probe_that_could_not_fork_is_unavailable_naming_the_nproc_cap(output: str) -> None:
    # FactUnavailable: the evaluation makes it an error finding with this reason (never drift, never a pass)
    with pytest.raises(FactUnavailable, match="could not start a process.*nproc") as raised:
        evaluate("host.gitea_ssh.ls_remote", ls_remote(railiance_infra=(0, output)))
    from railiance_conformance.remedies import remedy_for_error
    assert "ulimit -u" in remedy_for_error(str(raised.value))


def test_a_section_whose_command_could_not_fork_is_unavailable_not_absent() -> None:
    # stat's section as dash leaves it when fork(2) fails: not "No such file", so never "the file is absent"
    with pytest.raises(FactUnavailable, match="could not start a process"):
        evaluate("host.swap.file", host(**{"stat /swapfile": (2, "sh: 1: Cannot fork")}))


def test_a_half_written_ls_remote_line_is_unavailable_not_a_crash() -> None:
    with pytest.raises(FactUnavailable, match="cut short"):
        evaluate("host.gitea_ssh.ls_remote", ls_remote(railiance_infra=(0, "url x\nrc 0 refs ")))


@pytest.mark.parametrize("budget_s,expected", [(45, 15), (30, 10), (12, 4), (3, 3), (600, 15)])
def test_each_network_check_gets_its_share_of_the_budget(budget_s: float, expected: int) -> None:
    from railiance_conformance.probes.host_script import build_script, network_timeout

    facts = [F.ssh_login("tegwick", "gitea-local"), *(F.git_ls_push_remote("tegwick", f"~/r{i}") for i in range(4)),
             F.whoami()]
    assert network_timeout(facts, budget_s) == expected   # 5 network checks, 2 lanes: 3 in the longer one
    script = build_script(facts, "B", expected)
    assert script.count(f'[ -z "$T" ] || T="timeout -s KILL {expected}"') == 2  # set in each lane's subshell
    assert 'T="timeout -s KILL 15"' in script.split("\nB=")[0]                  # the other facts keep 15 s
    assert network_timeout([F.whoami()], 45) == 15


# OpenSSH's changed-key warning as sshconnect.c (warn_changed_key) prints it
CHANGED_BANNER = """@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:9hL0Xq3Uc4pGtP2h4h0Y9pQv1cZ2c0zq9jv1oXb7b1k.
Please contact your system administrator.
Add correct host key in /home/tegwick/.ssh/known_hosts to get rid of this message.
Offending ED25519 key in /home/tegwick/.ssh/known_hosts:3
Host key for [localhost]:30022 has changed and you have requested strict checking.
Host key verification failed."""


def test_a_changed_host_key_is_an_error_naming_the_host_never_an_observed_value() -> None:
    from railiance_conformance.remedies import remedy_for_error

    outcome = evaluate("host.gitea_ssh.login", host(**{LOGIN: (255, CHANGED_BANNER)}))
    assert outcome.status is Status.ERROR
    assert outcome.reason == ("the host key of [localhost]:30022 changed (ssh: REMOTE HOST IDENTIFICATION HAS "
                              "CHANGED; the old key is /home/tegwick/.ssh/known_hosts:3)")
    assert "ssh-keygen -R" in remedy_for_error(outcome.reason)
    # git ls-remote keeps the first 3 lines of what ssh said: the @ frame and the warning
    head = "\n".join("  " + line for line in CHANGED_BANNER.splitlines()[:3])
    facts = ls_remote(railiance_apps=(0, f"url ssh://git@gitea-local/coulomb/railiance-apps.git\nrc 128 refs 0\n{head}"))
    outcome = evaluate("host.gitea_ssh.ls_remote", facts)
    assert outcome.status is Status.ERROR and "the host key of the server changed" in outcome.reason
    assert "@@" not in str(outcome.observed) and "@@" not in outcome.reason
