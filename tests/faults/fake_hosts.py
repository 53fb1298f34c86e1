"""Fake hosts on loopback for the deadline tests: a real sshd whose ForceCommand stalls (or
answers one line every few seconds), and a raw TCP server that sends an SSH banner and then
nothing. Every process is started and stopped by pid."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.proc_tree import descendants


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackSshd:
    """``/usr/sbin/sshd -D`` on 127.0.0.1:port for root with one key; ``force_command`` or the real shell."""

    def __init__(self, workdir: Path, client_key: Path, force_command: str | None = None):
        self.workdir, self.port = workdir, free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.host_key = workdir / "host_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)
        (workdir / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
        lines = [f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
                 f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                 "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", "LogLevel ERROR"]
        if force_command:
            lines.append(f"ForceCommand {force_command}")
        (workdir / "sshd_config").write_text("\n".join(lines) + "\n")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(workdir / "sshd_config")],
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("loopback sshd did not start")

    def known_host(self) -> str:
        key = Path(f"{self.host_key}.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}"

    def descendants(self) -> list[int]:
        """Every live process sshd started, at any depth (its per-connection children call setsid(),
        so they and their sessions are outside sshd's own process group)."""
        return descendants(self.proc.pid, zombies=False)

    def stop(self) -> None:
        """Kill sshd and everything it started: its process group, and every descendant with its own
        process group (a connection's ``sshd: root@notty`` and the ``sleep 3600`` of a ForceCommand).
        sshd and each descendant are stopped (SIGSTOP) as they are found, until a search finds none new: a
        stopped process forks nothing, so a connection accepted or a command started while searching is
        still found (its parent is alive); then every one of them is killed."""
        frozen: list[int] = []
        for pid in [self.proc.pid]:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        for _ in range(50):
            new = [p for p in descendants(self.proc.pid, zombies=False) if p not in frozen]
            if not new:
                break
            for pid in new:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    continue
                frozen.append(pid)
        # a command whose connection already ended (the client killed: sshd's session process exited) was
        # reparented to init before this stop: found by the connection its environment names (this port)
        frozen += [p for p in _connected_to(self.port) if p not in frozen]
        for pid in [self.proc.pid, *frozen]:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.proc.wait(10)


def _connected_to(port: int) -> list[int]:
    """The pids whose environment says they run in an ssh session to 127.0.0.1:``port`` (SSH_CONNECTION)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        for variable in variables:
            if variable.startswith(b"SSH_CONNECTION=") and variable.endswith(f" 127.0.0.1 {port}".encode()):
                found.append(int(environ.parent.name))
                break
    return found


class BannerThenSilence:
    """Accepts, sends ``SSH-2.0-OpenSSH_9.2p1`` and then nothing, keeping the connection open (an SSH
    server that hangs in the key exchange). ``address``/``port``: where to listen (default: a free port)."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0):
        self.server = socket.create_server((address, port))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
            self.connections.append(conn)

    def stop(self) -> None:
        self.stopped.set()
        for conn in self.connections:
            conn.close()
        self.server.close()
