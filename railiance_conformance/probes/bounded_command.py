"""A hard wall-time bound on the local command a testinfra backend runs (``ssh ...``).

testinfra's ``run_local`` waits for its ``sh -c 'ssh ...'`` child without a timeout; an sshd that
accepts and then never answers (or answers one line every few seconds, which keeps ssh's
ServerAlive checks happy) holds it forever. ``bound(host, 15)`` makes that host's backend start
the command in a session of its own and, ``timeout_s`` seconds after it started, kill the whole
process group (sh, ssh and anything they started) with SIGKILL and raise ``CommandTimeout``. The
command's stdin is a pipe holding one line and held open until it ends: the fact script's watchdog on
the host (``host_script.wrap``) ends the probe's session there when it reads end-of-file.
Example: ``bound(testinfra.get_host("ssh://u@h"), 15).run("true")`` -> a CommandResult within 15 s.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from typing import Any

REAP_TIMEOUT_S = 5.0  # after SIGKILL, how long the pipes may take to close
# The most a command's stdout may hold (bytes): the fact script's answer is a few hundred KiB (config files of
# at most 1 MiB each, host_script.MAX_FILE_BYTES); an answer past this is cut, the session killed, and an error.
MAX_OUTPUT_BYTES = 64 << 20


class CommandTimeout(Exception):
    """The command did not finish within its bound and was killed; ``partial`` is the stdout it had sent
    by then (bytes; empty when the output was discarded)."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


class OutputTooLarge(CommandTimeout):
    """The command's stdout grew past ``MAX_OUTPUT_BYTES``: it was killed (its output is discarded)."""


def _communicate(proc: subprocess.Popen, timeout_s: float, limit: int) -> tuple[bytes, bytes]:
    """``proc.communicate(timeout=timeout_s)`` that also stops when stdout holds more than ``limit`` bytes
    (``OutputTooLarge``): the client's memory is bounded whatever the host sends."""
    deadline = time.monotonic() + timeout_s
    if proc.stdout is None or proc.stderr is None:
        raise ValueError("_communicate needs a process started with stdout=PIPE and stderr=PIPE")
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    sizes = dict.fromkeys(chunks, 0)
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout_s, output=b"".join(chunks[out_fd]))
            for key, _ in selector.select(left):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fd)
                    continue
                chunks[key.fd].append(data)
                sizes[key.fd] += len(data)
                if sizes[key.fd] > limit:
                    raise OutputTooLarge(f"the host's answer was larger than {limit >> 20} MiB: the ssh session was "
                                         "killed (a file far larger than a config file among those read?)")
    proc.wait(timeout=max(0.0, deadline - time.monotonic()) + REAP_TIMEOUT_S)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


def run_bounded(backend: Any, timeout_s: float, command: str, *args: str):
    """testinfra's ``BaseBackend.run_local`` with a total time bound (see the module docstring)."""
    command = backend.quote(command, *args)
    cmd = backend.encode(command)
    # stdin: one line, then held open until the command ends. The remote watchdog (host_script.wrap) kills
    # the probe's session on the host when it reads end-of-file: when this process ends or is killed, the
    # pipe closes, ssh sends EOF or drops the connection, and nothing the probe started stays behind.
    reader, writer = os.pipe()
    try:
        os.write(writer, b"\n")
        proc = subprocess.Popen(cmd, shell=True, stdin=reader, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except BaseException:
        os.close(writer)
        raise
    finally:
        os.close(reader)
    try:
        stdout, stderr = _communicate(proc, timeout_s, MAX_OUTPUT_BYTES)
    except OutputTooLarge:
        kill_group(proc)
        raise
    except subprocess.TimeoutExpired as exc:
        kill_group(proc)
        raise CommandTimeout(f"no answer within {timeout_s:g}s (--command-timeout): the ssh session was "
                             f"killed", partial=exc.output if isinstance(exc.output, bytes) else b"") from None
    except BaseException:
        kill_group(proc)
        raise
    finally:
        os.close(writer)
    return backend.result(proc.returncode, cmd, stdout, stderr)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``proc`` leads and reap it; its pipes are closed."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=REAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # a process that left the group still holds a pipe
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait(timeout=REAP_TIMEOUT_S)


def bound(host: Any, timeout_s: float) -> Any:
    """Give ``host``'s backend a bounded ``run_local`` (backends that run a local command: ssh,
    safe-ssh, local). Other backends (paramiko) are returned unchanged; the fact store's own
    wait bounds them."""
    backend = host.backend
    if hasattr(backend, "run_local"):
        backend.run_local = lambda command, *args: run_bounded(backend, timeout_s, command, *args)
    return host
