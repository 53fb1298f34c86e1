"""The fault tests' own loopback sshd leaves nothing behind: stopping it ends the sessions it forked
(each in a session of its own after sshd's setsid()) and the commands they run."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.faults.fake_hosts import LoopbackSshd
from tests.proc_tree import descendants

pytestmark = pytest.mark.testbed  # a loopback sshd


def _proc(pid: int, name: str) -> bytes:
    """/proc/<pid>/<name>, or b"" when the process ended in between (sshd's pre-auth children come and go)."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            return handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def test_stopping_the_loopback_sshd_ends_its_connections_and_their_commands(tmp_path):
    key = tmp_path / "client_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    sshd = LoopbackSshd(tmp_path / "host", key, "sleep 3600")
    client = subprocess.Popen(["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                               "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp_path / 'kh'}",
                               "-p", str(sshd.port), "root@127.0.0.1", "true"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        sleeper = []
        while not sleeper and time.monotonic() < deadline:
            sleeper = [p for p in sshd.descendants() if _proc(p, "cmdline").startswith(b"sleep\0")]
            time.sleep(0.1)
        assert sleeper, "the ForceCommand never started"
        started = sshd.descendants()
        assert any(_sid(p) not in (None, os.getsid(sshd.proc.pid)) for p in started)  # outside sshd's session
        sshd.stop()
        time.sleep(0.2)
        left = [p for p in started if _proc(p, "stat") and _proc(p, "stat").rsplit(b")", 1)[1].split()[0] != b"Z"]
        assert not left, [_proc(p, "cmdline") for p in left]
        assert not descendants(sshd.proc.pid, zombies=False)
    finally:
        client.kill()
        client.wait(10)
        sshd.stop()
