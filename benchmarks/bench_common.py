"""The benchmark's shared parts: where things are, the testbed a row runs against (``Bed``), one measured
command (``Row``: wall, client CPU, the hosts' CPU from their cgroup, server-side counts), and the
medians and paired ratios the report prints. Used by ``bench_rows`` and ``host_controls``."""
from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from railiance_testbed.nspawn import Testbed  # noqa: E402

# without the Gitea SSH server (the default, "sshd-only" hosts) these are errors for every tool: the
# operator's ssh finds nothing listening on the host's Gitea port
GITEA_CONTROLS = frozenset({"host.gitea_ssh.login", "host.gitea_ssh.ls_remote"})

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
NO_TEST_EXTRA = ["-p", "no:hypothesispytest"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
MIB = 1024 * 1024


class BenchError(RuntimeError):
    """A measured run did not do what it must (wrong exit status, a host missing, a check not run)."""


@dataclass
class Bed:
    """One started testbed (namespace or nspawn hosts) and what the rows need of it."""

    tier: str                       # "namespace" | "nspawn"
    testbed: Testbed
    failing: frozenset[str]         # S1 host controls that must be errors on every host of this tier
    workdir: Path
    cgroup: "CpuCgroup | None" = None   # the hosts' processes are in it (namespace hosts): their CPU

    def hosts_cpu(self) -> float:
        return self.cgroup.seconds() if self.cgroup is not None else float("nan")

    def inventory(self, n: int) -> Path:
        """An Ansible inventory of the first ``n`` hosts, with the testbed's group_vars."""
        directory = self.workdir / f"inventory-{self.tier}-{n}"
        if not directory.exists():
            shutil.copytree(self.testbed.inventory.parent, directory)
            lines = self.testbed.inventory.read_text().splitlines()
            (directory / "hosts.ini").write_text("\n".join(lines[:1 + n]) + "\n")
        return directory / "hosts.ini"

    def urls(self, n: int) -> list[str]:
        return [h.url for h in self.testbed.hosts[:n]]


@dataclass
class Row:
    """One measured command: ``run()`` is timed, ``check(output)`` and ``cleanup()`` are not."""

    tool: str                       # "suite" | "testinfra" | "ansible" | "probe layer"
    bed: Bed
    hosts: int
    run: Callable[[], object]
    check: Callable[[object], str]
    cleanup: Callable[[], None] = lambda: None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    conn: list[float] = field(default_factory=list)
    cmds: list[float] = field(default_factory=list)
    hosts_cpu: list[float] = field(default_factory=list)
    checked: str = ""

    @property
    def label(self) -> str:
        return f"{self.tool} [{self.bed.tier}] x{self.hosts}"

    def measure(self, timed: bool) -> None:
        marks = log_marks(self.bed.testbed.hosts[:self.hosts])
        start_hosts = self.bed.hosts_cpu()
        start_cpu, start = cpu_seconds(), time.perf_counter()
        output = self.run()
        wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        hosts_cpu = self.bed.hosts_cpu() - start_hosts
        counts = server_counts(self.bed.testbed.hosts[:self.hosts], marks)
        self.cleanup()
        self.checked = self.check(output)
        if timed:
            self.wall.append(wall)
            self.cpu.append(cpu)
            self.conn.append(max(c for c, _ in counts))
            self.cmds.append(max(c for _, c in counts))
            self.hosts_cpu.append(hosts_cpu)


def cpu_seconds() -> float:
    """User + system CPU of this process and every child it has waited for (the measured processes
    and their descendants: ssh clients, ansible's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def log_marks(hosts) -> list[int]:
    return [h.sshd_log.stat().st_size for h in hosts]


def server_counts(hosts, marks: list[int]) -> list[tuple[int, int]]:
    """Per host: (SSH logins, remote commands) its sshd logged since ``marks``."""
    counts = []
    for host, mark in zip(hosts, marks, strict=True):
        with open(host.sshd_log, "rb") as log:
            log.seek(mark)
            text = log.read().decode(errors="replace")
        counts.append((text.count("Accepted publickey"), text.count("Starting session: command")))
    return counts


def run_process(argv: list[str], log: Path, *, cwd: Path = REPO, env: dict | None = None) -> tuple[int, str]:
    """Run a whole process (output to a file: an ssh master left behind cannot hold a pipe open)."""
    with open(log, "wb") as out:
        rc = subprocess.run(argv, cwd=cwd, env=env or ENV, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT).returncode
    return rc, log.read_text(errors="replace")


def stop_masters(directory: Path) -> None:
    """Stop the ssh ControlPersist masters whose sockets are in ``directory`` (after a run, untimed)."""
    for socket_path in directory.iterdir() if directory.exists() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "x"], capture_output=True)
        socket_path.unlink(missing_ok=True)


# --- the rows --------------------------------------------------------------------------------------

def host_controls() -> tuple[set[str], set[str]]:
    from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog

    catalog = load_catalog(DEFAULT_POLICY_DIR)
    hosts = [c for c in catalog.controls.values() if c.id.startswith("host.")]
    return {c.id for c in hosts if not c.pending}, {c.id for c in hosts if c.pending}


HOST_CONTROLS, HOST_PENDING = host_controls()


class CpuCgroup:
    """A cgroup the namespace hosts run in, to read the CPU they used (user + system, seconds): cgroup v2
    ``cpu.stat`` (usage_usec is there with no controller enabled) where a cgroup2 hierarchy is mounted,
    else cgroup v1 ``cpuacct.usage``. ``CpuCgroup.make()`` is None where neither can be written."""

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version

    @classmethod
    def make(cls) -> "CpuCgroup | None":
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
        candidates = [(Path(m[1]), 2) for m in mounts if m[2] == "cgroup2"]
        candidates += [(Path(m[1]), 1) for m in mounts if m[2] == "cgroup" and "cpuacct" in m[3].split(",")]
        for root, version in candidates:
            path = root / f"railiance-bench-{os.getpid()}"
            try:
                path.mkdir()
                cgroup = cls(path, version)
                cgroup.seconds()
                return cgroup
            except OSError:
                continue
        return None

    def seconds(self) -> float:
        if self.version == 2:
            text = (self.path / "cpu.stat").read_text()
            return int(re.search(r"^usage_usec (\d+)", text, re.M).group(1)) / 1e6
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError as exc:
            print(f"(could not remove {self.path}: {exc})", file=sys.stderr)


# --- memory and the cluster -----------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}"  # NaN: not measured (nspawn hosts run in no cgroup of ours)


def paired(a: Row | None, b: Row | None, measure: str = "wall") -> float | None:
    """The median over rounds of a's ``measure`` (wall, cpu) / b's in the same round."""
    if a is None or b is None or not getattr(a, measure) or not getattr(b, measure):
        return None
    return statistics.median(x / y for x, y in zip(getattr(a, measure), getattr(b, measure), strict=True))
