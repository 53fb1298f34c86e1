"""SIGTERM, SIGINT and SIGHUP end a run cleanly and within seconds, whoever sends them.

A cancelled CI job, a CronJob's ``activeDeadlineSeconds`` or a closed terminal sends SIGTERM or
SIGHUP, to one pid or to the whole process group; Ctrl-C sends SIGINT to the group. Each process
of the suite handles all three the same way:

* pytest (``Interrupts``, installed by the plugin): the first signal raises ``KeyboardInterrupt``
  in the main thread, exactly as Ctrl-C does, so pytest stops and the session-finish hook writes
  the partial report, in which every selected control that has no finding yet is an error
  "interrupted by SIGTERM before this control finished"; every child the run started (the ssh
  sessions run in process groups of their own, the early inventory reader) is killed with its
  process group at once. Later signals are only noted: writing the report is never cut off.
* nightly and the gate (``run_child``): the suite runs in a session of its own; a signal to the
  parent is forwarded to that session, the parent waits at most ``GRACE_S`` for the partial report
  and then kills what is left (SIGKILL to the session), so nothing writes a report afterwards.

Exit statuses: pytest exits 2 (interrupted); nightly judges the partial report (2, or 1 when a
drift was already found; 5 when no report of the run exists); the gate exits 1 (NO-GO); serve
exits 0 (see serve.py). docs/faults.md has the table.
Example: ``code, out, err, signame = run_child([sys.executable, "-m", "pytest", ...], cwd=REPO_ROOT)``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 20.0   # how long a parent waits for the interrupted suite to write its partial report


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc: the kernel's own record)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def kill_children() -> int:
    """SIGKILL every child of this process: a child that leads a process group of its own (an ssh
    session started with ``start_new_session``) with its whole group, any other child alone.
    Returns how many were signalled."""
    own_group = os.getpgrp()
    killed = 0
    for pid in _children(os.getpid()):
        try:
            group = os.getpgid(pid)
            if group != own_group and group == pid:
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


class Interrupts:
    """The suite's (pytest's) handler of SIGINT, SIGTERM and SIGHUP; ``received`` names the first
    one (``"SIGTERM"``) or is None. ``quiet()`` from the session's end on: later signals are noted,
    never raised, so writing the reports is not interrupted."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._raising = True

    def install(self) -> None:
        for signum in SIGNALS:
            try:
                signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (pytest run in a thread): leave the defaults
                return

    def quiet(self) -> None:
        self._raising = False

    def _handle(self, signum: int, frame) -> None:
        first = self.received is None
        if first:
            self.received = signal.Signals(signum).name
        kill_children()  # ssh sessions in their own groups would otherwise run on to --command-timeout
        if first and self._raising:
            raise KeyboardInterrupt(f"interrupted by {self.received}")


def run_child(command: list[str], *, cwd: Path | str, timeout: float | None = None, capture: bool = False,
              grace_s: float = GRACE_S) -> tuple[int | None, str, str, str | None]:
    """Run ``command`` in a session of its own; SIGINT/SIGTERM/SIGHUP to this process are forwarded
    to that session (once), then at most ``grace_s`` seconds are waited before it is killed.
    Returns (exit status or None when it was killed or timed out, stdout, stderr, the first signal's
    name or None); ``timeout``: total seconds before the session is killed (then status None).
    Output is captured (text) only with ``capture``."""
    received: list[str] = []

    def forward(signum: int, frame) -> None:
        if not received:
            received.append(signal.Signals(signum).name)
            try:
                os.killpg(proc.pid, signal.SIGTERM if signum != signal.SIGINT else signal.SIGINT)
            except ProcessLookupError:
                pass

    pipe = subprocess.PIPE if capture else None
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    proc = subprocess.Popen(command, cwd=cwd, stdout=pipe, stderr=pipe, text=True, start_new_session=True)
    for signum in SIGNALS:
        signal.signal(signum, forward)
    deadline = None if timeout is None else time.monotonic() + timeout
    grace_deadline: float | None = None
    out, err, code = "", "", None
    try:
        while True:
            if received and grace_deadline is None:
                grace_deadline = time.monotonic() + grace_s
            ends = grace_deadline if grace_deadline is not None else deadline
            wait = 0.5 if ends is None else max(0.0, min(0.5, ends - time.monotonic()))
            try:
                o, e = proc.communicate(timeout=wait)
                out, err, code = o or "", e or "", proc.returncode
                break
            except subprocess.TimeoutExpired:
                pass
            if ends is not None and time.monotonic() >= ends and (received or grace_deadline is None):
                _kill_session(proc)
                o, e = proc.communicate()
                out, err = o or "", e or ""
                break
    finally:
        _kill_session(proc)  # anything the child left in its session (nothing writes a report after us)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code, out, err, (received[0] if received else None)


def _kill_session(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
