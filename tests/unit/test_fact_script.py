"""The fact script's own shell, run for real with this machine's sh: reads that could block, the host-side
deadline, the session that ends with its client, and the facts rewritten to fork less.

Each test runs ``host_script.wrap(build_script(...))`` the way the login shell of a probed host runs it
(``sh -c``, stdin the client's pipe with its first line), on this machine's own files and /proc.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from railiance_conformance.probes import facts as F
from railiance_conformance.probes.facts import Fact
from railiance_conformance.finding import FactUnavailable
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.probes.host_script import (
    DEADLINE_RC, DEADLINE_SECTION, NOT_REGULAR, build_script, deadline_for, parse_output, wrap)

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
        facts.section("memtotal")  # never reached: said so, never absent
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


def test_every_process_of_the_user_with_its_nproc_limits_from_three_execs():
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    facts = run([F.user_processes(user)])
    rows = F.read_user_processes(facts, user)
    mine = {pid: (soft, hard, comm) for pid, soft, hard, comm in rows}
    limits = next(line.split() for line in Path("/proc/self/limits").read_text().splitlines()
                  if line.startswith("Max processes"))
    assert mine[os.getpid()] == (limits[2], limits[3], Path("/proc/self/comm").read_text().strip())
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
