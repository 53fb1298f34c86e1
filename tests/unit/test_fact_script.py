"""The fact script's own shell, run for real with this machine's sh: reads that could block, the host-side
deadline, the session that ends with its client, and the facts rewritten to fork less.

Each test runs ``host_script.wrap(build_script(...))`` the way the login shell of a probed host runs it
(``sh -c``, stdin the client's pipe with its first line), on this machine's own files and /proc.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.finding import FactUnavailable
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.facts import Fact
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.probes.host_script import (
    DEADLINE_RC,
    DEADLINE_SECTION,
    NOT_REGULAR,
    build_script,
    deadline_for,
    parse_output,
    wrap,
)

B = "@@T"


def start(facts: list[Fact], deadline_s: int = 20) -> tuple[subprocess.Popen, int]:
    """The wrapped script in a session of its own, stdin a pipe holding one line; returns (process, writer)."""
    reader, writer = os.pipe()
    os.write(writer, b"\n")
    proc = subprocess.Popen(["sh", "-c", wrap(build_script(facts, B), B, deadline_s)], stdin=reader,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    os.close(reader)
    return proc, writer


def run(facts: list[Fact], deadline_s: int = 20, timeout_s: float = 30) -> HostFacts:
    proc, writer = start(facts, deadline_s)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    finally:
        os.close(writer)
    return HostFacts("here", parse_output(out.decode("utf-8", "surrogateescape"), B))


def live_with(token: str) -> list[int]:
    """Pids of the processes (zombies aside: this machine's init reaps late) whose argv holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(token: str, within_s: float = 5) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := live_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "50-fifo.conf"
    os.mkfifo(path)
    return path


def test_a_fifo_among_the_files_is_named_never_opened_and_the_others_are_read(tmp_path, fifo):
    (tmp_path / "60-swap.conf").write_text("vm.swappiness = 10\n")
    started = time.monotonic()
    facts = run(F.directories(str(tmp_path)), timeout_s=15)
    assert time.monotonic() - started < 10  # read at once, not after a deadline
    section = facts.sections[f"file {fifo}"]
    assert section.rc == NOT_REGULAR and str(fifo) in section.out and "FIFO" in section.out
    assert facts.sections[f"file {tmp_path}/60-swap.conf"].out == "vm.swappiness = 10"
    with pytest.raises(FactUnavailable, match=f"{fifo} is a FIFO"):
        facts.files(str(tmp_path) + "/")


def test_a_read_that_blocks_ends_at_the_hosts_deadline_naming_it_and_leaves_nothing(fifo):
    token = str(fifo)
    blocking = Fact("hang", f"sec hang cat {token}")
    started = time.monotonic()
    facts = run([F.whoami(), blocking, F.memtotal()], deadline_s=2, timeout_s=20)
    assert 1.5 < time.monotonic() - started < 10
    assert facts.sections["whoami"].rc == 0  # read before the hang: kept
    assert facts.sections["hang"].rc == DEADLINE_RC and "deadline on the host (2 s)" in facts.sections["hang"].out
    assert facts.sections[DEADLINE_SECTION].out == "2 hang"
    with pytest.raises(FactUnavailable, match="while it was reading hang"):
        facts.section("meminfo")  # never reached: said so, never absent
    assert wait_gone(token) == []


def test_the_probe_ends_with_its_client_session(fifo):
    """The client's end of stdin closes (the suite ended or was killed; on a host: ssh's channel closes):
    the watchdog kills the probe's whole session, blocked reads and bounded network facts alike."""
    token = str(fifo)
    proc, writer = start([Fact("hang", f"sec hang cat {token}"),
                          Fact("net", f"sec net $T sh -c 'cat {token}; :'", concurrent=True)], deadline_s=60)
    deadline = time.monotonic() + 10
    while len(live_with(token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(live_with(token)) >= 2
    os.close(writer)
    proc.communicate(timeout=10)
    assert wait_gone(token) == []


def test_without_the_clients_line_the_watchdog_stands_down_and_the_script_runs():
    proc = subprocess.run(["sh", "-c", wrap(build_script([F.whoami()], B), B, 20)], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=30)
    assert parse_output(proc.stdout.decode(), B)["whoami"].out == subprocess.run(
        ["id", "-un"], capture_output=True, text=True).stdout.strip()


def test_every_process_of_the_user_with_its_nproc_limits_from_two_execs(tmp_path):
    """Each process's comm as the kernel gives it (blanks, a backslash: the read builtin keeps them)."""
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    odd = tmp_path / " a b\\c "
    odd.symlink_to(subprocess.run(["sh", "-c", "command -v sleep"], capture_output=True, text=True).stdout.strip())
    sleeper = subprocess.Popen([str(odd), "30"])
    try:
        facts = run([F.user_processes(user)])
    finally:
        sleeper.kill()
        sleeper.wait()
    rows = F.read_user_processes(facts, user)
    mine = {pid: (soft, hard, comm) for pid, soft, hard, comm in rows}
    limits = next(line.split() for line in Path("/proc/self/limits").read_text().splitlines()
                  if line.startswith("Max processes"))
    assert mine[os.getpid()] == (limits[2], limits[3], Path("/proc/self/comm").read_text().strip())
    assert mine[sleeper.pid][2] == " a b\\c "
    assert len(rows) == len({p for p, *_ in rows})
    assert F.read_user_processes(run([F.user_processes("no-such-user-x")]), "no-such-user-x") is None


def test_the_hosts_deadline_leaves_the_client_time_for_the_output():
    assert deadline_for(60) == 54 and deadline_for(20) == 18 and deadline_for(8) == 6 and deadline_for(1) == 1


def test_the_files_read_by_one_grep_are_byte_for_byte_what_cat_reads(tmp_path):
    """Every queued file is read by one grep (``flush``); each file's section is what ``cat`` framed gave:
    empty files, no final newline, blank last lines, NUL and non-UTF-8 bytes, a colon in the name, a
    line that starts with another file's name."""
    contents = {"a.conf": b"vm.swappiness = 10\n", "b.conf": b"", "c.conf": b"no newline", "d:e.conf": b"x\n\n",
                "f.conf": b"\x00nul\xe9\r\n", "g.conf": b"# h.conf:looks like the next one\n", "h.conf": b"k=v\n"}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    facts = run(F.directories(str(tmp_path)))
    cat = run([Fact(f"cat {n}", f"sec 'cat {n}' cat -- '{tmp_path / n}'") for n in contents])
    for name in contents:
        assert facts.sections[f"file {tmp_path / name}"] == cat.sections[f"cat {name}"], name
    assert build_script(F.directories(str(tmp_path)), B).count("flush") == 2  # defined once, run once


def test_a_symlink_to_dev_null_a_mask_is_read_as_empty_as_before(tmp_path):
    (tmp_path / "10-mask.conf").symlink_to("/dev/null")
    facts = run(F.directories(str(tmp_path)))
    assert facts.files(str(tmp_path) + "/") == {f"{tmp_path}/10-mask.conf": ""}


def test_a_file_that_is_not_regular_gets_the_remedy_to_remove_it(tmp_path, fifo):
    """The reason of a FIFO, a device or a directory named like a config file gets its own remedy (remove it or
    make it a regular file), never the default "fix what the reason names"."""
    from railiance_conformance.remedies import DEFAULT, remedy_for_error

    (tmp_path / "x.conf").mkdir()
    facts = run(F.files(str(fifo), "/dev/zero", str(tmp_path / "x.conf")))
    for path in (str(fifo), "/dev/zero", str(tmp_path / "x.conf")):
        with pytest.raises(FactUnavailable) as caught:
            facts.files(path)
        remedy = remedy_for_error(str(caught.value))
        assert remedy != DEFAULT and "regular file" in remedy and "Remove it" in remedy, (path, remedy)


def test_a_login_whose_pam_session_did_not_open_is_named_with_its_remedy():
    """sshd exits 254 before any command when the PAM session does not open (OpenSSH session.c do_child), e.g.
    pam_limits on a device in /etc/security/limits.d: the reason says so, the remedy names the session modules."""
    from railiance_conformance.probes.host_facts import no_output_reason
    from railiance_conformance.remedies import remedy_for_error

    reason = no_output_reason(254, "")
    assert "PAM session did not open" in reason and "/etc/security/limits.d" in reason
    assert "pam_open_session" in remedy_for_error(reason) and "limits.d" in remedy_for_error(reason)
    assert no_output_reason(3, "boom\n") == "the fact script gave no output (exit 3): boom"


def ssh_probes(user: str) -> list[Fact]:
    return [*F.ssh_config(user, "gitea-local"), F.ssh_login(user, "gitea-local"), F.git_ls_push_remote(user, "~/repo")]


def test_a_user_ssh_config_that_is_not_a_regular_file_is_named_by_every_ssh_probe(tmp_path, monkeypatch):
    """~/.ssh/config as a FIFO: ssh opens it with fopen(3) and blocks, so the login and ls-remote probes are not
    run (they would wait their network timeout and blame the git server): each names the file, at once."""
    import getpass

    (tmp_path / ".ssh").mkdir()
    os.mkfifo(tmp_path / ".ssh" / "config")
    monkeypatch.setenv("HOME", str(tmp_path))
    started = time.monotonic()
    facts = run(ssh_probes(getpass.getuser()), timeout_s=30)
    assert time.monotonic() - started < 5
    for name in ("ssh.G", "ssh.login", "lsremote"):
        [section] = [s for n, s in facts.sections.items() if n.startswith(name + " ")]
        assert section.rc == NOT_REGULAR and f"{tmp_path}/.ssh/config is a FIFO" in section.out, (name, section)



def test_a_huge_file_is_named_by_its_size_and_never_sent(tmp_path):
    """A sparse 3 GiB file in a config directory is not read (a config file is small; grep would hold its one
    line in the host's memory and the client would receive GBs): its section names it and its size, the others
    are read, and the answer stays small."""
    from railiance_conformance.probes.host_script import MAX_FILE_BYTES, TOO_LARGE
    from railiance_conformance.remedies import remedy_for_error

    with open(tmp_path / "60-big.conf", "wb") as big:
        big.truncate(3 << 30)
    (tmp_path / "70-swap.conf").write_text("vm.swappiness = 10\n")
    (tmp_path / "80-edge.conf").write_bytes(b"x" * (MAX_FILE_BYTES - 1) + b"\n")  # at the bound: read
    proc, writer = start(F.directories(str(tmp_path)))
    try:
        out, _ = proc.communicate(timeout=30)
    finally:
        os.close(writer)
    assert len(out) < 2 * MAX_FILE_BYTES
    facts = HostFacts("here", parse_output(out.decode("utf-8", "surrogateescape"), B))
    section = facts.sections[f"file {tmp_path}/60-big.conf"]
    assert section.rc == TOO_LARGE and f"{3 << 30} bytes" in section.out
    assert facts.sections[f"file {tmp_path}/70-swap.conf"].out == "vm.swappiness = 10"
    assert len(facts.sections[f"file {tmp_path}/80-edge.conf"].out) == MAX_FILE_BYTES - 1
    with pytest.raises(FactUnavailable, match="60-big.conf is 3221225472 bytes") as caught:
        facts.files(str(tmp_path) + "/")
    assert "Remove it" in remedy_for_error(str(caught.value))


def test_an_endless_file_that_says_size_0_ends_on_greps_memory_bound_never_partly_read(tmp_path):
    """A symlink into /proc (``/proc/self/pagemap``: size 0, hundreds of GB without line ends) passes the size
    check; grep's memory bound (ulimit -v) ends its read at once, and that file is an error, never partial content."""
    (tmp_path / "10-ok.conf").write_text("vm.swappiness = 10\n")
    (tmp_path / "50-endless.conf").symlink_to("/proc/self/pagemap")
    started = time.monotonic()
    facts = run(F.directories(str(tmp_path)), timeout_s=30)
    assert time.monotonic() - started < 10
    # the file whose lines came last may be the one cut: complete, or unread with the others, never partial
    ok = facts.sections[f"file {tmp_path}/10-ok.conf"]
    assert (ok.rc, ok.out) == (0, "vm.swappiness = 10") or (ok.rc == 2 and "memory bound" in ok.out)
    with pytest.raises(FactUnavailable, match="50-endless.conf.*grep ran out of its memory bound"):
        facts.files(str(tmp_path) + "/")


@pytest.fixture
def busybox_path(tmp_path: Path, monkeypatch) -> None:
    """PATH without setsid, timeout and pkill (a busybox-like host): only what the script itself calls."""
    import shutil

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "cat", "grep", "stat", "id", "getent", "cut", "sleep", "kill"):
        if (found := shutil.which(tool)):
            (bindir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bindir))


@pytest.mark.parametrize("ending", ["deadline", "client gone"])
def test_without_setsid_timeout_or_pkill_the_probe_still_ends_and_leaves_nothing(fifo, busybox_path, ending):
    """On a host without setsid(1), timeout(1) or pkill, the login's own session stands in: a read that blocks
    ends at the host's deadline naming its section, or when the client's channel closes, and no process of the
    probe is left either way (before, the script ran unbounded and its blocked reader stayed for good)."""
    token = str(fifo)
    started = time.monotonic()
    if ending == "deadline":
        facts = run([F.whoami(), Fact("hang", f"sec hang cat {token}"), F.memtotal()], deadline_s=2, timeout_s=20)
        assert facts.sections["hang"].rc == DEADLINE_RC and facts.sections[DEADLINE_SECTION].out == "2 hang"
        assert facts.sections["whoami"].rc == 0
    else:
        proc, writer = start([Fact("hang", f"sec hang cat {token}")], deadline_s=60)
        time.sleep(0.5)
        os.close(writer)  # the client ended: sshd closes the command's stdin
        proc.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert wait_gone(token) == []


def test_the_clients_memory_is_bounded_whatever_the_host_sends(monkeypatch):
    """A command whose stdout passes MAX_OUTPUT_BYTES is killed (its whole process group) and an error, at once:
    the client never holds GBs of a host's answer (a sparse 200 MB file once grew pytest past 2 GB)."""
    import testinfra

    from railiance_conformance.probes import bounded_command
    from railiance_conformance.remedies import remedy_for_error

    monkeypatch.setattr(bounded_command, "MAX_OUTPUT_BYTES", 1 << 20)
    host = bounded_command.bound(testinfra.get_host("local://"), 30)
    started = time.monotonic()
    with pytest.raises(bounded_command.OutputTooLarge) as caught:
        host.run("head -c 1000000000 /dev/zero; sleep 60")
    assert time.monotonic() - started < 10
    assert "Remove it" in remedy_for_error(str(caught.value))
    assert host.run("printf 'a\\nb'").stdout == "a\nb"  # an answer within the bound is whole


def test_a_command_past_its_client_bound_keeps_what_it_had_sent():
    """The client's bound (--command-timeout) can come before the host's own deadline (a slow login): what
    the fact script had sent by then is kept (``CommandTimeout.partial``), so its sections are still read."""
    import testinfra

    from railiance_conformance.probes import bounded_command

    host = bounded_command.bound(testinfra.get_host("local://"), 2)
    started = time.monotonic()
    with pytest.raises(bounded_command.CommandTimeout) as caught:
        host.run("printf 'sent\\n'; sleep 60")
    assert time.monotonic() - started < 10
    assert caught.value.partial == b"sent\n"
    facts = HostFacts("here", parse_output(f"{B} whoami\nme\n{B}/rc 0\n{B} hang\nhalf", B),
                      cut_reason="not read: no answer within 2s")
    assert facts.section("whoami").out == "me"
    with pytest.raises(FactUnavailable, match="no answer within 2s"):
        facts.section("hang")  # the section cut by the client's bound: its controls say why


def test_the_ls_remote_probe_takes_the_push_urls_the_destination_resolved(tmp_path, monkeypatch):
    """After the checkout's push.destination (the script's serial part) the ls-remote probe runs git only for
    ls-remote itself (alone, one git config resolves them first), and lists the same URLs; a push remote that
    does not exist is still its exit 3 with git's whole message (it resolves that case itself)."""
    import getpass

    user = getpass.getuser()
    bare, repo, lost = tmp_path / "bare.git", tmp_path / "repo", tmp_path / "lost"
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, env=env)
    for checkout in (repo, lost):
        subprocess.run(["git", "init", "-q", "-b", "main", str(checkout)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(bare)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "config", "remote.origin.pushurl", str(bare)], check=True, env=env)
    subprocess.run(["git", "-C", str(lost), "config", "branch.main.pushRemote", "nowhere"], check=True, env=env)
    log = tmp_path / "git.log"
    shim = tmp_path / "bin"
    shim.mkdir()
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    (shim / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    destination, ls_remote = F.git_push_destination(user, str(repo)), F.git_ls_push_remote(user, str(repo))

    alone = run([ls_remote]).section(ls_remote.section)
    calls = log.read_text().splitlines()  # alone it resolves the URLs itself, with one git config
    assert len(calls) == 2 and " config --show-scope --get-regexp " in calls[0] and " ls-remote " in calls[1], calls
    log.unlink()
    after = run([destination, ls_remote])
    assert after.section(ls_remote.section) == alone and alone.out == f"url {bare}\nrc 0 refs 0"
    calls = log.read_text().splitlines()
    assert [c for c in calls if "ls-remote" in c] == [f"-c safe.directory=* -c credential.helper= ls-remote {bare}"]
    assert len(calls) == 2  # the destination's one git config, then ls-remote only

    gone = [F.git_push_destination(user, str(lost)), F.git_ls_push_remote(user, str(lost))]
    section = run(gone).section(gone[1].section)
    assert section.rc == 3 and section.out == run(gone[1:]).section(gone[1].section).out == "error: No such remote 'nowhere'"


# The kernel's own files are read by cat: a sysctl whose handler is proc_dointvec (vm.swappiness) answers a read at
# a nonzero offset with end-of-file (kernel/sysctl.c do_proc_dointvec: "*ppos && !write" -> nothing), and a shell's
# read builtin reads a byte per read(2): dash's read of "60" gave "6" (a real kernel's VM tier found it).
def test_the_kernel_files_read_as_the_kernel_gives_them_to_one_read():
    """Each kernel file a fact reads gives the section what one read(2) of the whole file gives, on this
    machine's own /proc (the namespace and nspawn testbeds bind a regular file over some of them)."""
    facts = [F.sysctl_live("vm.swappiness"), F.sysctl_live("kernel.hostname"), F.proc_swaps(),
             F.local_hostname(), *F.systemd_running()]
    found = run(facts)
    for fact, path in ((facts[0], "/proc/sys/vm/swappiness"), (facts[1], "/proc/sys/kernel/hostname"),
                       (facts[2], "/proc/swaps"), (facts[3], "/proc/sys/kernel/hostname"), (facts[5], "/proc/1/comm")):
        with open(path, "rb") as file:
            whole = os.read(file.fileno(), 1 << 16).decode()
        section = found.section(fact.section)
        assert (section.rc, section.out) == (0, whole.removesuffix("\n")), path


@settings(max_examples=25, deadline=None)
@given(args=st.lists(st.text(st.sampled_from("a b\n$'\"\\*é-"), max_size=8), max_size=3), status=st.integers(0, 5))
def test_a_script_of_the_login_user_runs_in_a_subshell_as_sh_c_runs_it(args, status):
    """ashell for the login user (a subshell, no exec of sh) and asuser ... sh -c (what runs for another user): the
    same arguments, $0, HOME, exported environment, working directory and exit status; nothing leaks out."""
    script = ('printf "<%s>" "$0" "$#" "$@" "$HOME" "$PWD"; cd / && pwd; env | grep -v "^_=" | LC_ALL=C sort; '
              f'z=leaked; exit {status}')
    quoted = " ".join(shlex.quote(a) for a in args)
    found = run([Fact("sub", f'sec sub ashell "$ME" {shlex.quote(script)} {quoted}; sec left printf %s "${{z-}}"'),
                 Fact("sh", f'sec sh asuser "$ME" sh -c {shlex.quote(script)} sh {quoted}')])
    assert found.section("sub") == found.section("sh") and found.section("sub").rc == status
    assert found.section("left").out == ""
