"""The fault matrix: every fault is an error finding with a clear reason, every other target is
still reported, a valid report is on disk and no history is lost. Hosts and the API are real:
a dedicated two-host nspawn testbed and the Kubernetes API stand-in."""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from railiance_conformance.probes.host_script import build_script
from railiance_testbed.hosts import CGROUP2_CONTROLS, CONFORMANT, cgroup2_memory
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from railiance_testbed.nspawn import Testbed
from tests.conftest import nspawn_unavailable_reason
from tests.proc_tree import descendants
from tests.suite_runner import REPO, SuiteRun, run_suite


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    from dataclasses import replace
    with Testbed([replace(CONFORMANT, name="victim"), replace(CONFORMANT, name="bystander")],
                 tmp_path_factory.mktemp("faults")) as testbed:
        yield testbed


def host_args(bed: Testbed, *extra: str) -> tuple[str, ...]:
    return ("-m", "S1", "--ansible-inventory", str(bed.inventory), "--ssh-config", str(bed.ssh_config), *extra)


# the kernel's cgroup v2 caps are an error (saying so) where containers get no cgroup v2: left out here
NO_CGROUP2 = frozenset() if cgroup2_memory() else CGROUP2_CONTROLS


def non_pending(run: SuiteRun, target: str) -> list[dict]:
    return [f for f in run.findings(target) if f["status"] != "pending" and f["control_id"] not in NO_CGROUP2]


def test_an_ssh_auth_failure_is_an_error_naming_it(bed, tmp_path):
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(f"IdentityFile {stranger}\nIdentitiesOnly yes\nUserKnownHostsFile {bed.known_hosts}\n")
    run = run_suite("-m", "S1", "--ansible-inventory", str(bed.inventory), "--ssh-config", str(config),
                    report_dir=tmp_path / "r")
    for finding in non_pending(run, "victim"):
        assert finding["status"] == "error" and "Permission denied (publickey)" in finding["reason"]


def sshd_pids(host) -> list[int]:
    """The sshd processes of one container: descendants of its nspawn process named sshd."""
    found = []
    for child in descendants(host.pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "sshd":
                found.append(child)
        except OSError:
            pass
    return found


def test_sshd_killed_mid_run_is_an_error_and_the_other_host_is_intact(bed, tmp_path):
    victim = next(h for h in bed.hosts if h.state.name == "victim")
    for delay in (0.0, 0.05, 0.15, 0.3):
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-q",
                                 "--report-dir", str(tmp_path / "r"), *host_args(bed)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        for pid in sshd_pids(victim):
            os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=120)
        document = json.loads((tmp_path / "r" / "findings.json").read_text())
        victim_findings = [f for f in document["findings"] if f["target"] == "victim" and f["status"] != "pending"]
        assert all(f["status"] in ("pass", "error") for f in victim_findings)
        assert all(f["reason"] for f in victim_findings if f["status"] == "error")
        assert {f["status"] for f in document["findings"] if f["target"] == "bystander"
                and f["control_id"] not in NO_CGROUP2} <= {"pass", "pending"}
        victim.wait_ready(bed.ssh_base())  # systemd in the container restarts ssh.service: wait for a real login


def tree_digest(root: Path) -> str:
    """Every entry's inode, mode, owner, size, mtime and ctime (a write, chmod or chown moves ctime), and
    the content of the files under 1 MiB. Not the content of the big ones: reading the 4 GiB /swapfile
    took 13 s and pushed the machine into memory pressure that broke the next SSH logins."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest.update(f"{path}:{stat.st_ino}:{stat.st_mode}:{stat.st_uid}:{stat.st_gid}:{stat.st_size}:"
                      f"{stat.st_mtime_ns}:{stat.st_ctime_ns}".encode())
        if path.is_file() and not path.is_symlink() and stat.st_size < 1 << 20:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_suite_changes_nothing_on_a_host(bed, tmp_path):
    victim = next(h for h in bed.hosts if h.state.name == "victim")
    victim.wait_ready(bed.ssh_base())  # whichever test ran before (one kills sshd), the host is up
    home = victim.workdir / "layer"
    before = tree_digest(home)
    run = run_suite(*host_args(bed, "--limit", "victim"), report_dir=tmp_path / "r")
    findings = non_pending(run, "victim")
    assert findings
    assert [(f["control_id"], f["status"], f["reason"], f["observed"]) for f in findings if f["status"] != "pass"] == []
    assert tree_digest(home) == before


def test_the_fact_script_only_runs_read_only_commands():
    from railiance_conformance.checks import bundled_plan
    from railiance_conformance.targets import hosts_from_urls

    [target] = hosts_from_urls(["ssh://tegwick@127.0.0.9"], {}, policy_source="x")
    script = build_script(bundled_plan().host_facts(target), "B")  # every host fact of every feature
    allowed = {"id", "test", "cat", "getconf", "grep", "stat", "getent", "pgrep", "systemctl", "sh", "exec",
               "cut", "git", "dump", "dumpdir", "denied", "sec", "printf", "command", "ssh", "asuser", "setpriv",
               "env", "notregular", "sshG", "sshnot", "toolarge", "ashell", "procs"}  # ashell, procs: checked as inner below
    # every framed command: sec NAME [keep VAR] [$T] [asuser USER] COMMAND ... (keep: the output kept in a variable)
    used = set(re.findall(r"\bsec (?:'[^']*'|\"[^\"]*\"|\S+) (?:keep \w+ )?(?:\$T )?(?:asuser \S+ )?([\w.-]+)", script))
    assert used and used <= allowed, used - allowed
    assert "systemctl show" in script and 'safe.directory=' in script and "remote get-url" in script
    assert "setpriv --reuid" in script and "ssh -G" in script
    # the outcome probes: inside their sh -c (or the login user's subshell: ashell, a function's body), only reads;
    # ssh and git cannot prompt or write
    # a quoted script as shlex.quote writes it: an inner single quote is '"'"' ('\'' where written by hand)
    inner = " ".join(re.findall(r"(?:sh -c|ashell \S+) ('[^']*(?:(?:'\\''|'\"'\"')[^']*)*')", script)
                     + re.findall(r"\bprocs\(\) \( (.*?)\n\)", script, re.S))
    assert "ashell" in script and "procs() (" in script and "no checkout at" in inner  # the destination's script
    assert 'grep -l "^Uid:' in inner and "/comm" in inner and "ls-remote" in inner and "remote get-url" in inner
    for word in ("kill", "rm ", "mv ", "tee", ">"):
        assert word not in inner.replace("2>&1", "").replace(">/dev/null", ""), word
    # every git it runs (git, or the g function: git -c safe.directory=*) is a read: the subcommands, and config only
    # with its reading options or with one name (git config NAME reads; NAME VALUE would write)
    calls = set(re.findall(r"(?:^|(?<=[\s;(|&{]))(?:g|git)(?:\s+-c\s+\S+)*\s+([a-z][a-z-]*)((?:\s+--?[a-z][a-z-]*)*)",
                           inner))
    assert {c for c, _ in calls} == {"config", "ls-remote", "remote", "symbolic-ref"}, calls
    assert {o for c, o in calls if c == "config"} <= {"", " --name-only --get-regexp", " --show-scope --get-regexp",
                                                      " --get-regexp"}, calls
    assert not re.search(r"(?:^|(?<=[\s;(|&{]))(?:g|git)(?:\s+-c\s+\S+)*\s+config\s+(?!-)(?:\"[^\"]*\"|[^\s)]+)\s+[^\s)|&]", inner)
    remote = re.findall(r"(?:^|(?<=[\s;(|&{]))(?:g|git)(?:\s+-c\s+\S+)*\s+remote\s+(\S+)", inner)
    assert remote and set(remote) == {"get-url"}, remote
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "UpdateHostKeys=no", "ControlMaster=no",
                   "PermitLocalCommand=no", "credential.helper=", "GIT_TERMINAL_PROMPT=0"):
        assert option in script, option
    assert "cmdline" not in script and "environ" not in script  # a process's arguments and environment stay unread


def test_an_api_answering_500_is_an_error_for_the_cluster_controls(tmp_path):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP]), fail_status=500) as api:
        run = run_suite("-m", "cluster", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")),
                        report_dir=tmp_path / "r")
        assert all(r.method == "GET" for r in api.requests())
    errors = [f for f in run.findings() if f["status"] != "pending"]
    assert errors and all(f["status"] == "error" and "API error 500" in f["reason"] for f in errors)


def test_sigint_mid_run_writes_a_valid_partial_report(tmp_path):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP]), latency_s=0.4) as api:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-m", "cluster",
                                 "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")),
                                 "--report-dir", str(tmp_path / "r")], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60  # interrupt mid-run: after 7 of the run's 13 GETs, whatever the load
        while len(api.requests("GET")) < 7 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out[-2000:]
    document = json.loads((tmp_path / "r" / "findings.json").read_text())
    assert document["run"]["partial"] is True
    interrupted = [f for f in document["findings"] if "interrupted by SIGINT before this control finished" in f["reason"]]
    finished = [f for f in document["findings"] if f not in interrupted]
    assert 0 < len(finished) < 12 and interrupted  # what ran is reported; what did not is an error saying so
    assert all(f["status"] == "error" for f in interrupted)
    assert "partial run" in out


def test_two_runs_at_once_share_one_history(tmp_path):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP])) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kc")
        procs = [subprocess.Popen([sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-m", "cluster",
                                   "--kubeconfig", str(kubeconfig), "--report-dir", str(tmp_path / "r")], cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        assert [p.wait(120) for p in procs] == [0, 0]
    json.loads((tmp_path / "r" / "findings.json").read_text())
    with sqlite3.connect(tmp_path / "r" / "history.sqlite") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 2


def test_the_network_facts_in_lanes_read_what_they_read_one_after_another(bed, monkeypatch):
    """The two-lane pipeline (host_script.LANES) is only a schedule: on a real host with its Gitea SSH
    server, every section it frames equals the section of the same facts run one after another, whatever
    the lanes. (The user's process list differs by the pids of each run's own shell, so it is left out.)"""
    from railiance_conformance.checks import bundled_plan
    from railiance_conformance.probes import host_script
    from railiance_conformance.targets import hosts_from_urls

    victim = next(h for h in bed.hosts if h.state.name == "victim")
    victim.wait_ready(bed.ssh_base())
    [target] = hosts_from_urls([victim.url], {}, policy_source="x")
    facts = bundled_plan().host_facts(target)
    assert sum(f.concurrent for f in facts) == 5  # the Gitea login and four ls-remotes

    def sections(lanes: int, facts=facts) -> dict:
        monkeypatch.setattr(host_script, "LANES", lanes)  # the schedule only; the script runs on the real host
        script = build_script(facts, "@@B")
        done = subprocess.run([*bed.ssh_base(), "-p", "2222", f"tegwick@{victim.address}", "sh"],
                              input=script.encode(), capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        found = host_script.parse_output(done.stdout.decode("utf-8", "surrogateescape"), "@@B")
        return {name: s for name, s in found.items() if not name.startswith("processes ")}

    from dataclasses import replace as copy_with
    serial = sections(1, [copy_with(f, concurrent=False) for f in facts])  # plain lines, no pipeline at all
    assert "| { o=$(" not in build_script([copy_with(f, concurrent=False) for f in facts], "@@B")
    assert {n for n in serial if n.startswith("lsremote ")} and all(
        serial[n].rc == 0 and "rc 0 refs" in serial[n].out for n in serial if n.startswith("lsremote "))
    for lanes in (1, 2, 5):
        assert sections(lanes) == serial


def container_init(host) -> int:
    """The pid of the container's own systemd (the nspawn process's child): its mount namespace is the host's."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == host.pid:
                return int(entry.name)
    raise AssertionError(f"no init under nspawn {host.pid}")


def operator_processes(host, uid: int = 1000) -> list[str]:
    """``pid comm`` of the live processes in the container whose real uid is the operator's (not zombies)."""
    found = []
    for pid in [host.pid, *descendants(host.pid)]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append(f"{pid} {fields['Name'].strip()}")
    return found


def in_container(host, *argv: str) -> None:
    subprocess.run(["nsenter", "-t", str(container_init(host)), "-m", "-r", "--", *argv], check=True, timeout=30)


def settled_processes(host, count: int, within_s: float = 15) -> list[str]:
    """The operator's processes once at most ``count`` remain (sshd ends a session's processes a moment late)."""
    deadline = time.monotonic() + within_s
    while len(found := operator_processes(host)) > count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_a_fifo_in_sysctl_d_is_named_in_its_control_and_the_host_is_still_verified(bed, tmp_path):
    """A FIFO in /etc/sysctl.d is never opened (opening one blocks until a writer comes): the persisted
    swappiness control's error names it, every other control of the host is verified, and the operator has
    as many processes on the host after the run as before (none of the probe's is left)."""
    victim = next(h for h in bed.hosts if h.state.name == "victim")
    victim.wait_ready(bed.ssh_base())
    fifo = "/etc/sysctl.d/50-fifo.conf"
    before = settled_processes(victim, 10 ** 6)
    in_container(victim, "mkfifo", fifo)
    try:
        started = time.monotonic()
        run = run_suite(*host_args(bed, "--limit", "victim", "--command-timeout", "20"), report_dir=tmp_path / "r")
        elapsed = time.monotonic() - started
        after = settled_processes(victim, len(before))
    finally:
        in_container(victim, "rm", "-f", fifo)
    findings = {f["control_id"]: f for f in non_pending(run, "victim")}
    persisted = findings.pop("host.swappiness.persisted")
    assert persisted["status"] == "error" and fifo in persisted["reason"] and "FIFO" in persisted["reason"]
    assert {c: (f["status"], f["reason"]) for c, f in findings.items() if f["status"] != "pass"} == {}
    assert elapsed < 20  # never waited on the FIFO
    assert len(after) == len(before), (before, after)


def test_a_read_that_blocks_ends_at_the_hosts_deadline_and_leaves_no_process(bed, tmp_path):
    """A FIFO as a checkout's .git/config blocks git itself (git opens it to read the remotes): the script's
    own deadline on the host ends it, the control reading it names it, the controls read before it are
    verified, and the operator has as many processes on the host after the timed-out run as before."""
    victim = next(h for h in bed.hosts if h.state.name == "victim")
    victim.wait_ready(bed.ssh_base())
    config = victim.workdir / "layer" / "home" / "railiance-infra" / ".git" / "config"
    saved = config.read_bytes()
    before = settled_processes(victim, 10 ** 6)
    config.unlink()
    os.mkfifo(config)
    try:
        run = run_suite(*host_args(bed, "--limit", "victim", "--command-timeout", "12"), report_dir=tmp_path / "r")
        after = settled_processes(victim, len(before))
    finally:
        config.unlink()
        config.write_bytes(saved)
    findings = {f["control_id"]: f for f in non_pending(run, "victim")}
    remotes = findings["host.gitea_ssh.remotes"]
    assert remotes["status"] == "error" and "deadline on the host" in remotes["reason"] \
        and "railiance-infra" in remotes["reason"], remotes
    assert findings["host.swappiness.persisted"]["status"] == "pass", findings["host.swappiness.persisted"]
    assert findings["host.swap.file"]["status"] == "pass", findings["host.swap.file"]  # read before the hang
    assert len(after) == len(before), (before, after)


def test_an_ssh_config_include_of_a_fifo_is_named_by_the_ssh_controls_only(bed, tmp_path):
    """An ``Include`` of a FIFO in the operator's ~/.ssh/config blocks every ssh of the user: ssh -G is bounded on
    the host, the three ssh controls say that ssh blocks reading its configuration (not that the git server is
    unreachable), every other control of the host is verified, and no process of the probe is left."""
    victim = next(h for h in bed.hosts if h.state.name == "victim")
    victim.wait_ready(bed.ssh_base())
    config = victim.workdir / "layer" / "home" / ".ssh" / "config"
    saved = config.read_bytes()
    before = settled_processes(victim, 10 ** 6)
    in_container(victim, "sh", "-c", "mkfifo /tmp/include-fifo && chmod 666 /tmp/include-fifo")
    config.write_bytes(b"Include /tmp/include-fifo\n" + saved)
    try:
        started = time.monotonic()
        run = run_suite(*host_args(bed, "--limit", "victim", "--command-timeout", "20"), report_dir=tmp_path / "r")
        elapsed = time.monotonic() - started
        after = settled_processes(victim, len(before))
    finally:
        config.write_bytes(saved)
        in_container(victim, "rm", "-f", "/tmp/include-fifo")
    findings = {f["control_id"]: f for f in non_pending(run, "victim")}
    for control in ("host.gitea_ssh.config", "host.gitea_ssh.login", "host.gitea_ssh.ls_remote"):
        finding = findings.pop(control)
        assert finding["status"] == "error" and "ssh blocks reading its configuration" in finding["reason"], finding
        assert "Include" in finding["remediation"], finding
    assert {c: (f["status"], f["reason"]) for c, f in findings.items() if f["status"] != "pass"} == {}
    assert elapsed < 20
    assert len(after) == len(before), (before, after)


def test_a_device_in_limits_d_that_fails_every_login_is_named_as_the_pam_session(bed, tmp_path):
    """pam_limits opens every limits.d/*.conf at login: a symlink to /dev/tty there fails the PAM session, and
    sshd ends every login with exit 254 before any command (OpenSSH session.c do_child). Each control of the
    host says so and points at the session modules' files, never an empty "no output"."""
    victim = next(h for h in bed.hosts if h.state.name == "victim")
    victim.wait_ready(bed.ssh_base())
    link = "/etc/security/limits.d/50-tty.conf"
    in_container(victim, "ln", "-s", "/dev/tty", link)
    try:
        run = run_suite(*host_args(bed, "--limit", "victim", "--command-timeout", "20"), report_dir=tmp_path / "r")
    finally:
        in_container(victim, "rm", "-f", link)
    findings = non_pending(run, "victim")
    assert findings and all(f["status"] == "error" and "PAM session did not open" in f["reason"]
                            and "limits.d" in f["remediation"] for f in findings), findings[:1]
