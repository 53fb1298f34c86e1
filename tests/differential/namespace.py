"""A worker process inside private mount (and network) namespaces that answers one JSON line per case.

Example: ``with NamespaceWorker(WORKER, config, net=True) as w: w.ask(case)`` -> the worker's answer. The worker refuses to do
anything unless its mount namespace (and network namespace, with ``net``) differs from the caller's, so the
directories it shadows and the keys it writes are never the machine's own.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

# Prepended to every worker: guards, and shadow() which hides a directory behind an empty tmpfs.
PRELUDE = r'''
import json, os, subprocess, sys
for ns, outer in OUTER_NAMESPACES.items():
    if os.readlink(f"/proc/self/ns/{ns}") == outer:
        sys.exit(f"refusing to run: not in a private {ns} namespace")

def mount(*args):
    subprocess.run(["mount", *args], check=True)

OURS = set()  # tmpfs mounts made here: a missing directory below one of them is simply created

def shadow(path):
    """An empty tmpfs at ``path``; a missing directory gets a tmpfs over its nearest existing parent."""
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        parent = os.path.dirname(real)
        while not os.path.isdir(parent):
            parent = os.path.dirname(parent)
        if parent not in OURS:
            if parent in ("/", "/usr", "/etc", "/usr/lib", "/var"):
                sys.exit(f"refusing to hide {parent} to create {path}")
            mount("-t", "tmpfs", "none", parent)
            OURS.add(parent)
        os.makedirs(real)
    mount("-t", "tmpfs", "none", real)
    OURS.add(real)
    return real

def clear(path):
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            clear(full)
            os.rmdir(full)
        else:
            os.unlink(full)
'''


def unavailable_reason() -> str | None:
    """Why namespaced differential tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the differential tests need root (private mount and network namespaces)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    return None


class NamespaceWorker:
    """A long-lived worker under ``unshare --mount [--net]``: ``ask(case)`` -> its JSON answer, one line each.

    ``worker`` is Python source defining ``setup(config)`` (run once, e.g. shadow() the directories) and
    ``handle(case) -> answer``; it may use everything in PRELUDE. Use as a context manager.
    """

    def __init__(self, worker: str, config: Any, *, net: bool = False) -> None:
        outer = {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in ["mnt"] + (["net"] if net else [])}
        source = f"OUTER_NAMESPACES = {outer!r}\n{PRELUDE}\n{worker}\n{LOOP}"
        flags = ["--mount", "--propagation", "private"] + (["--net"] if net else [])
        self._proc = subprocess.Popen(["unshare", *flags, "--", sys.executable, "-c", source], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.ask(config)

    def ask(self, message: Any) -> Any:
        assert self._proc.stdin and self._proc.stdout
        try:
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._proc.kill()
            raise RuntimeError(f"namespace worker died: {self._proc.stderr.read()[-3000:] if self._proc.stderr else ''}")
        return json.loads(line)

    def __enter__(self) -> "NamespaceWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


LOOP = r'''
setup(json.loads(sys.stdin.readline()))
print("null", flush=True)
for _line in sys.stdin:
    print(json.dumps(handle(json.loads(_line))), flush=True)
'''
