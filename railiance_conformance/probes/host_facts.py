"""Gather each host's facts once, all hosts in parallel, one SSH connection per host.

Example: ``store = HostFactStore(ssh_options); store.prefetch(targets); store.get(target)``
-> ``HostFacts`` (plain data). A host that cannot be reached yields ``HostFacts`` with
``failure`` set; the controls turn that into error findings, never passes.
"""
from __future__ import annotations

import re
import secrets
import shlex
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import testinfra

from railiance_conformance.finding import FactUnavailable
from railiance_conformance.probes.bounded_command import CommandTimeout, bound
from railiance_conformance.probes.facts import Fact
from railiance_conformance.probes.host_script import (
    DEADLINE_RC,
    DEADLINE_SECTION,
    FILES_READ,
    NOT_REGULAR,
    TOO_LARGE,
    Section,
    build_script,
    deadline_for,
    network_timeout,
    parse_output,
    wrap,
)
from railiance_conformance.targets import HostTarget

# What a shell or git prints when fork(2) fails (EAGAIN: the login user is at RLIMIT_NPROC, or the
# host at pid_max / its cgroup's pids.max): dash "Cannot fork", bash "fork: retry: Resource temporarily
# unavailable", git "cannot fork() for ...". A probe that could not start its command read nothing.
FORK_FAILURE = re.compile(r"cannot fork|fork: (?:retry: )?resource temporarily unavailable", re.IGNORECASE)


def fork_failure(text: str) -> str | None:
    """The line of ``text`` that says a process could not be started, else None."""
    for line in text.splitlines():
        if FORK_FAILURE.search(line):
            return line.strip()
    return None


def cannot_start(line: str) -> FactUnavailable:
    return FactUnavailable(f"the host could not start a process for the probe ({line}): the login user is at "
                           "its nproc cap (RLIMIT_NPROC) or the host at its process limit")


@dataclass(frozen=True, slots=True)
class HostFacts:
    """Every raw fact of one host, as plain data. ``failure`` is why none could be read."""

    target: str
    sections: Mapping[str, Section] = field(default_factory=dict)
    failure: str = ""
    duration_s: float = 0.0
    commands: int = 0
    network_timeout_s: int = 15   # what each network-bound fact was given (host_script.network_timeout)
    cut_reason: str = ""          # why sections are missing when the client's bound ended the session first

    def section(self, name: str) -> Section:
        if self.failure:
            raise FactUnavailable(self.failure)
        try:
            section = self.sections[name]
        except KeyError:
            raise FactUnavailable(self.cut_short() or f"the host's fact script produced no {name!r} section "
                                                      f"(output cut short?)") from None
        if section.rc == DEADLINE_RC:  # still running when the host's deadline ended the script: unread
            raise FactUnavailable(section.out)
        if section.rc != 0 and (line := fork_failure(section.out)):
            raise cannot_start(line)
        return section

    def text(self, name: str, *, what: str) -> str:
        """The output of a section that must have succeeded, else FactUnavailable naming ``what``."""
        section = self.section(name)
        if section.rc != 0:
            detail = section.out.strip().splitlines()[-1] if section.out.strip() else f"exit status {section.rc}"
            raise FactUnavailable(f"cannot read {what}: {detail}")
        return section.out

    def cut_short(self) -> str:
        """Why sections are missing when the host's deadline ended the fact script (``host_script.wrap``),
        naming what it was reading; "" when it ran to its end."""
        deadline = self.sections.get(DEADLINE_SECTION)
        if deadline is None:
            return self.cut_reason
        seconds, _, hung = deadline.out.partition(" ")
        return (f"not read: the probe's deadline on the host ({seconds} s) ended the fact script"
                + (f" while it was reading {hung}" if hung else "") + " (a read that blocks: a FIFO, a device, "
                "a hung mount, an unanswered lookup); what it read before is reported")

    def files(self, *prefixes: str) -> dict[str, str]:
        """Contents of the dumped files under ``prefixes``; an unreadable one is FactUnavailable, and so is
        a file that is not a regular file (never opened: ``host_script.NOT_REGULAR``), and every file when
        the host's deadline cut the script short before they were read (a file not listed could then be
        one not yet read; the script reads them first, ``host_script.build_script``)."""
        if self.failure:
            raise FactUnavailable(self.failure)
        if (reason := self.cut_short()) and FILES_READ not in self.sections:
            raise FactUnavailable(reason)
        out = {}
        for name, section in self.sections.items():
            # a directory the login user cannot list is unreadable, never empty (exit 13 from dumpdir)
            if name.startswith("dir ") and section.rc != 0 and \
                    any((name[4:] + "/").startswith(p) or p.startswith(name[4:] + "/") for p in prefixes):
                raise FactUnavailable(section.out.strip() or f"cannot list {name[4:]}")
            if name.startswith("file ") and name[5:].startswith(prefixes):
                if section.rc in (NOT_REGULAR, TOO_LARGE) or section.out.startswith("not read: "):
                    raise FactUnavailable(section.out.strip())
                if section.rc != 0:
                    raise FactUnavailable(f"cannot read {name[5:]}: {section.out.strip() or section.rc}")
                out[name[5:]] = section.out
        return out


@dataclass(frozen=True, slots=True)
class SshOptions:
    """How to reach hosts. Host keys are checked strictly unless told ``accept-new``."""

    known_hosts: str | None = None
    identity_file: str | None = None
    user_config: str | None = None
    host_key_checking: str = "yes"
    connect_timeout: int = 10
    command_timeout: int = 60
    kex: str = "fast"

    # The suite reads no secret over SSH (never a key, never Secret data), so by default it
    # prefers classical key exchange over OpenSSH 9's post-quantum hybrid, which costs ~140 ms
    # of client CPU per connection here: first NIST P-256 ECDH, which OpenSSH computes with
    # OpenSSL's optimised code (its curve25519 is its own reference C: ~4-5 ms more CPU per
    # login on each side), then curve25519. Both are in OpenSSH's default list; '^' only moves
    # them first, so a server without them still agrees on another. Host keys and
    # authentication are untouched. kex="openssh-default" keeps OpenSSH's order; a
    # KexAlgorithms line in the operator's --ssh-config wins either way.
    FAST_KEX = "^ecdh-sha2-nistp256,curve25519-sha256,curve25519-sha256@libssh.org"

    def write_config(self, directory: Path) -> Path:
        """An ssh_config whose first lines (first value wins in ssh) pin the safety options."""
        lines = [
            f"StrictHostKeyChecking {self.host_key_checking}",
            "BatchMode yes",
            "ControlMaster no",
            "LogLevel ERROR",
            f"ServerAliveInterval {max(1, self.command_timeout // 6)}",
            "ServerAliveCountMax 3",
        ]
        if self.known_hosts:
            lines.append(f"UserKnownHostsFile {self.known_hosts}")
        if self.user_config:
            lines.append(f"Include {Path(self.user_config).resolve()}")
        if self.kex == "fast":  # after the Include: the operator's own choice comes first
            lines.append(f"KexAlgorithms {self.FAST_KEX}")
        path = directory / "ssh_config"
        path.write_text("\n".join(lines) + "\n")
        return path


class HostFactStore:
    """Fetches each host's facts at most once per run; hosts are probed concurrently."""

    def __init__(self, options: SshOptions, workdir: Path, *, workers: int = 16,
                 facts_for: Callable[[HostTarget], list[Fact]] | None = None):
        # the facts the selected scenarios need on a target (checks.CheckPlan.host_facts)
        self.facts_for = facts_for or (lambda target: [])
        self.options = options
        self.ssh_config = options.write_config(workdir)
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="host-facts")
        self.futures: dict[str, Future[HostFacts]] = {}
        self.lock = threading.Lock()

    def prefetch(self, targets: list[HostTarget], on_done=None) -> None:
        """Start gathering every host not started yet; ``on_done(facts)`` is called as each ends."""
        with self.lock:
            for target in targets:
                if target.name not in self.futures:
                    future = self.pool.submit(self._gather, target)
                    if on_done is not None:
                        future.add_done_callback(lambda f: on_done(f.result()))
                    self.futures[target.name] = future

    def get(self, target: HostTarget) -> HostFacts:
        self.prefetch([target])
        future = self.futures[target.name]
        try:
            return future.result(timeout=self.options.command_timeout + self.options.connect_timeout + 5)
        except TimeoutError:  # a backend without a bounded command (paramiko): answer once, never wait again
            facts = HostFacts(target.name, failure=f"no answer within {self.options.command_timeout}s")
            done: Future[HostFacts] = Future()
            done.set_result(facts)
            with self.lock:
                self.futures[target.name] = done
            return facts

    def refresh(self, target: HostTarget, facts: list[Fact]) -> HostFacts:
        """Re-gather ``facts`` on ``target`` now (one SSH command) and merge them over what was read:
        settle's re-probe. Returns the merged HostFacts; later ``get(target)`` answers with them."""
        earlier = self.get(target)
        started = time.monotonic()
        fresh = self._gather(target, facts)
        merged = HostFacts(target.name, {**earlier.sections, **fresh.sections}, fresh.failure,
                           time.monotonic() - started, earlier.commands + fresh.commands, fresh.network_timeout_s)
        done: Future[HostFacts] = Future()
        done.set_result(merged)
        with self.lock:
            self.futures[target.name] = done
        return merged

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _backend(self, target: HostTarget):
        kwargs: dict[str, object] = {"ssh_config": str(self.ssh_config), "controlpersist": 0,
                                     "timeout": self.options.connect_timeout}
        kwargs.update(target.connection_kwargs())  # inventory: key, ssh args, become (testinfra's Ansible mapping)
        if self.options.identity_file:  # an explicit --ssh-identity-file wins over the inventory
            kwargs["ssh_identity_file"] = self.options.identity_file
        if kwargs.get("ssh_extra_args"):  # they come first on ssh's command line, and ssh takes the
            # first value: the suite's safety options go before the inventory's ssh args
            pinned = [f"-o StrictHostKeyChecking={self.options.host_key_checking}", "-o BatchMode=yes",
                      "-o ControlMaster=no"]  # an ssh_args ControlPersist would leave a master behind
            if self.options.known_hosts:
                pinned.append(f"-o UserKnownHostsFile={shlex.quote(self.options.known_hosts)}")
            kwargs["ssh_extra_args"] = " ".join([*pinned, str(kwargs["ssh_extra_args"])])
        # the whole ssh session is bounded by --command-timeout: killed (process group) when it is up
        return bound(testinfra.get_host(target.url, **kwargs), self.options.command_timeout)

    def _gather(self, target: HostTarget, facts: list[Fact] | None = None) -> HostFacts:
        started = time.monotonic()
        try:
            return self._gather_once(target, started, self.facts_for(target) if facts is None else facts)
        except Exception as exc:  # noqa: BLE001 - one host's surprise is that host's error finding, never a gap
            return HostFacts(target.name, failure=f"internal error while gathering facts: {type(exc).__name__}: {exc}",
                             duration_s=time.monotonic() - started, commands=1)

    def _gather_once(self, target: HostTarget, started: float, facts: list[Fact]) -> HostFacts:
        boundary = "@@rcf-" + secrets.token_hex(8)
        # the network-bound facts (a stalled git server) must end well inside --command-timeout, so a
        # broken server costs only its own controls, never the host's others
        network_s = network_timeout(facts, self.options.command_timeout * 0.75)
        script = build_script(facts, boundary, network_s)
        # on the host: a session of its own, its own deadline, killed when this ssh session ends
        command = wrap(script, boundary, deadline_for(self.options.command_timeout))
        try:
            result = self._backend(target).run(command)
        except CommandTimeout as exc:
            # the client's bound came before the host's own deadline (a slow login or host): the sections
            # the script had sent are kept, and only the controls of the unsent ones are errors
            sections = parse_output(decode_remote(exc.partial), boundary) if exc.partial else {}
            if not sections:
                return HostFacts(target.name, failure=str(exc), duration_s=time.monotonic() - started, commands=1)
            return HostFacts(target.name, sections, "", time.monotonic() - started, commands=1,
                             network_timeout_s=network_s,
                             cut_reason=f"not read: {exc} before the fact script sent this (the host's own "
                                        "deadline had not yet ended it: a slow login or a read that blocks); "
                                        "what it sent before is reported")
        except RuntimeError as exc:  # testinfra: ssh exited 255 (connection/auth/host key)
            return HostFacts(target.name, failure=_ssh_reason(exc), duration_s=time.monotonic() - started,
                             commands=1)
        except Exception as exc:  # noqa: BLE001 - any backend failure is a could-not-verify
            return HostFacts(target.name, failure=f"{type(exc).__name__}: {exc}",
                             duration_s=time.monotonic() - started, commands=1)
        # Remote bytes are bytes: pam_limits, systemd-sysctl and ssh read them without decoding, so
        # undecodable bytes are kept as surrogate escapes (byte-exact for the resolvers) and shown
        # as \\xNN once they reach a Finding (recorder.sanitize).
        sections = parse_output(decode_remote(result.stdout_bytes), boundary)
        failure = "" if sections else no_output_reason(result.rc, decode_remote(result.stderr_bytes))
        return HostFacts(target.name, sections, failure, time.monotonic() - started, commands=1,
                         network_timeout_s=network_s)


# sshd's exit status when the login's PAM session did not open: OpenSSH session.c do_child, "PAM session not
# opened, exiting" -> exit(254), before the command runs (sshd's log: "PAM: pam_open_session(): ...")
SSHD_NO_PAM_SESSION = 254


def no_output_reason(rc: int, stderr: str) -> str:
    """Why a host gave no fact-script output: ``rc`` is the ssh session's exit status, ``stderr`` its messages.
    Exit 254 with nothing on stderr is sshd refusing the session (``SSHD_NO_PAM_SESSION``): a PAM session
    module failed, e.g. pam_limits on an entry of /etc/security/limits.d it cannot read (a device, a
    directory) - every login of the user fails the same way, not only the suite's."""
    message = stderr.strip()[-300:]
    if rc == SSHD_NO_PAM_SESSION and not message:
        return ("the host's sshd ended the login before any command ran (exit 254: its PAM session did not "
                "open, sshd logs \"pam_open_session(): ...\"): a session module failed, e.g. pam_limits on a "
                "file in /etc/security/limits.d or /etc/security/limits.conf that is not a regular file or "
                "cannot be read; every login of this user fails the same way")
    return f"the fact script gave no output (exit {rc}): {message}"


def decode_remote(data: bytes | str) -> str:
    """UTF-8 with every undecodable byte kept as a surrogate escape: ``b"# caf\\xe9"`` -> ``"# caf\\udce9"``."""
    return data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")


def _ssh_reason(exc: RuntimeError) -> str:
    from railiance_conformance.ssh_messages import changed_host_key, without_banner

    result = exc.args[0] if exc.args else None
    raw = getattr(result, "stderr_bytes", None)
    stderr = decode_remote(raw) if raw is not None else (getattr(result, "stderr", "") or "")
    if (changed := changed_host_key(stderr, "the host")) is not None:  # ssh's own banner, read as such
        return f"ssh failed: {changed}"
    lines = [line for line in without_banner(stderr).strip().splitlines() if line.strip()]
    # exit 255 and nothing on stderr (LogLevel ERROR): the session ended before the script answered
    # without ssh saying why, or the remote command itself exited 255
    return "ssh failed: " + (lines[-1] if lines else "exit status 255 without a message: the connection or the "
                                                      "session ended before the fact script answered, connection "
                                                      "closed by the host (sshd restarted or killed, a PAM session "
                                                      "module failed), the login hung until ssh's keepalive gave up "
                                                      "(a PAM session module blocked: pam_limits opening a FIFO in "
                                                      "/etc/security/limits.d), or the remote shell exited 255")
