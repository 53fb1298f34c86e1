"""Many cheap sshd-only hosts: "namespace hosts" in private mount namespaces over the cached rootfs.

Per host: ``unshare --mount --uts --pid --fork --kill-child`` runs a shell that mounts an overlay
(the state's template layer over the rootfs), a fresh /proc and a read-only /sys, binds the fake
kernel views over them (``hosts.kernel_views``), starts the Gitea sshd and execs sshd as PID 1.
No systemd: controls that ask systemd are error findings, as they must be. Design and costs:
docs/architecture.md ("The testbed"). Example::

    with NamespaceTestbed([replace(CONFORMANT, name=f"h{i:03d}") for i in range(100)], workdir) as bed:
        bed.inventory, bed.ssh_config   # an Ansible inventory of the running hosts, their ssh_config
"""
from __future__ import annotations

import os
import random
import shlex
import signal
import socket
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from railiance_testbed.hosts import HostState, kernel_views, render_layer
from railiance_testbed.nspawn import SSH_PORT, Testbed
from railiance_testbed.rootfs import ensure_rootfs

# the second octet of every namespace host's loopback address (127.77.x.y)
NS_OCTET = 77
# rendered into the shared template where a host's own address belongs; replaced per host
TEMPLATE_ADDRESS = "127.77.0.1"
GITEA_SSHD_CONFIG = "/etc/gitea-ssh/sshd_config"
# The Gitea SSH server offers classical key exchange only, as Gitea's built-in server (Go's x/crypto/ssh)
# does: the operator's OpenSSH then skips sntrup761, whose ~0.1 s of CPU per login, times five logins
# per host (host.gitea_ssh.login, .ls_remote) and 100 hosts, would be the testbed's cost on the 2 cores
# the suite is measured on, not the suite's.
GITEA_KEX = b"KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n"
# S1 host controls that are error findings on a namespace host (no systemd), and the reason each gives
SYSTEMD_CONTROLS = {"host.slice.effective": "systemd is not running",
                    # systemd builds /sys/fs/cgroup; without it the host's sysfs has an empty directory there
                    "host.slice.enforced": "/sys/fs/cgroup is sysfs, not cgroup v2"}


def ns_address_block(count: int) -> list[str]:
    """``count`` addresses 127.77.x.y (x from a random start, y 2..251) on which nothing listens on SSH_PORT.

    Raises RuntimeError when 50 tries find no free block."""
    per_block = 250
    blocks = -(-count // per_block)
    for _ in range(50):
        first = random.randint(1, 255 - blocks)
        addresses = [f"127.{NS_OCTET}.{first + i // per_block}.{2 + i % per_block}" for i in range(count)]
        if all(_port_free(a) for a in addresses):
            return addresses
    raise RuntimeError(f"no free block of {count} loopback addresses 127.{NS_OCTET}.x.y for namespace hosts")


def _port_free(address: str) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, SSH_PORT))
        except OSError:
            return False
    return True


def _make_parents(root: Path, inside: str, rootfs: Path) -> Path:
    """``root``/``inside``'s parent directories, each with the owner and mode of the rootfs's own (0755
    root where the rootfs has none): in an overlay the upper directory's attributes are the merged ones."""
    current_in, current_out = rootfs, root
    for part in PurePosixPath(inside).parent.parts[1:]:
        current_in, current_out = current_in / part, current_out / part
        if current_out.is_dir():
            continue
        current_out.mkdir()
        try:
            info = current_in.stat()
            mode, uid, gid = stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
        except FileNotFoundError:
            mode, uid, gid = 0o755, 0, 0
        os.chmod(current_out, mode)
        os.chown(current_out, uid, gid)
    return root / inside.lstrip("/")


@dataclass
class Template:
    """One ``HostState`` rendered once: ``tree`` (the files at their in-host paths: an overlay lower
    layer), ``kernel`` (the fake kernel views, ``hosts.kernel_views``), and the in-host paths of files
    that name the address."""

    tree: Path
    kernel: Path
    address_files: tuple[str, ...]
    git_server: bool

    @classmethod
    def render(cls, state: HostState, directory: Path, rootfs: Path, client_pubkey: str) -> "Template":
        layer = directory / "layer"
        binds = render_layer(state, layer, rootfs=rootfs, client_pubkey=client_pubkey, address=TEMPLATE_ADDRESS)
        tree = directory / "tree"
        tree.mkdir(parents=True)
        os.chmod(tree, 0o755)
        address_files = []
        for inside, outside in binds.items():
            source = Path(outside)
            if source.is_file() and source.stat().st_size < 65536 and TEMPLATE_ADDRESS.encode() in source.read_bytes():
                address_files.append(inside)
            target = _make_parents(tree, inside, rootfs)
            os.rename(source, target)
            if target.is_dir():  # replaces the rootfs's directory, as a bind mount would (no merge with it)
                os.setxattr(target, "trusted.overlay.opaque", b"y")
        return cls(tree, layer / "kernel", tuple(address_files), GITEA_SSHD_CONFIG in binds)


@dataclass
class NamespaceHost:
    """One sshd-only host (see the module docstring); ``start`` returns at once, ``wait_ready`` waits."""

    state: HostState
    address: str
    workdir: Path
    rootfs: Path
    template: Template
    pid: int | None = None
    _process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ssh://tegwick@{self.address}:{SSH_PORT}"

    @property
    def upper(self) -> Path:
        return self.workdir / "upper"

    @property
    def sshd_log(self) -> Path:
        """The host's sshd log (LogLevel VERBOSE), readable from outside: it is in the upper layer."""
        return self.upper / "var" / "log" / "testbed" / "sshd.log"

    def prepare(self) -> str:
        """Write the host's own upper layer; returns its known_hosts line."""
        upper = self.upper
        upper.mkdir(parents=True)
        os.chmod(upper, 0o755)
        (self.workdir / "work").mkdir()
        (self.workdir / "merged").mkdir()
        key = _make_parents(upper, "/etc/ssh/ssh_host_ed25519_key", self.rootfs)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.state.name, "-f", str(key)],
                       check=True)
        config = _make_parents(upper, "/etc/ssh/sshd_config.d/testbed.conf", self.rootfs)
        config.write_text(f"ListenAddress {self.address}:{SSH_PORT}\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
                          "PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n")
        for inside in self.template.address_files:
            source = self.template.tree / inside.lstrip("/")
            target = _make_parents(upper, inside, self.rootfs)
            text = source.read_bytes().replace(TEMPLATE_ADDRESS.encode(), self.address.encode())
            if inside == GITEA_SSHD_CONFIG:
                text += GITEA_KEX
            target.write_bytes(text)
            info = source.stat()
            os.chmod(target, stat.S_IMODE(info.st_mode))
            os.chown(target, info.st_uid, info.st_gid)
        _make_parents(upper, "/run/sshd/-", self.rootfs)  # /run/sshd: sshd's privilege separation directory
        self.sshd_log.parent.mkdir(parents=True)
        self.sshd_log.touch()
        public = key.with_suffix(".pub").read_text().split()[:2]
        return f"[{self.address}]:{SSH_PORT} {' '.join(public)}"

    def script(self) -> str:
        """The shell run as PID 1 of the host's namespaces: mounts, then exec sshd (see the module docstring)."""
        q = shlex.quote
        merged, kernel = self.workdir / "merged", self.template.kernel
        options = f"lowerdir={self.template.tree}:{self.rootfs},upperdir={self.upper},workdir={self.workdir}/work"
        lines = ["set -e",
                 f"mount -t overlay overlay -o {q(options)} {q(str(merged))}",
                 f"mount -t proc proc {q(str(merged / 'proc'))}",
                 f"mount -t sysfs -o ro sysfs {q(str(merged / 'sys'))}",
                 # the fake kernel views over the fresh /proc and /sys
                 *(f"mount -o bind,ro {q(str(kernel) + inside)} {q(str(merged) + inside)}"
                   for inside in kernel_views(self.state)),
                 f"hostname {q(self.state.name)}"]
        if self.template.git_server:
            lines.append(f"chroot {q(str(merged))} /usr/sbin/sshd -f {GITEA_SSHD_CONFIG} "
                         "-E /var/log/testbed/gitea-sshd.log")
        lines.append(f"exec chroot {q(str(merged))} /usr/sbin/sshd -D -E /var/log/testbed/sshd.log")
        return "\n".join(lines)

    def start(self, cgroup: Path | None = None) -> None:
        """Start the host; with ``cgroup`` (a cgroup directory) it joins that cgroup before anything runs."""
        argv = ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private",
                "sh", "-c", self.script()]
        if cgroup is not None:  # the shell joins the cgroup, then becomes unshare (same pid): no process escapes it
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup), *argv]
        console = open(self.workdir / "console.log", "wb")
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        console.close()
        self.pid = self._process.pid

    def ports(self) -> list[int]:
        return [SSH_PORT, *([self.state.ssh_port_in_config] if self.template.git_server else [])]

    def wait_ready(self, deadline: float) -> None:
        """Until the host's sshd (and its Gitea sshd) accept connections; RuntimeError if it exited,
        TimeoutError at ``deadline`` (time.monotonic())."""
        waiting = self.ports()
        while waiting:
            if self._process.poll() is not None:
                raise RuntimeError(f"namespace host {self.state.name} at {self.address} exited "
                                   f"({self._process.returncode}): {(self.workdir / 'console.log').read_text()[-2000:]}")
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex((self.address, waiting[0])) == 0:
                    waiting.pop(0)
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace host {self.state.name}: nothing listens on {self.address}:{waiting[0]}")
            time.sleep(0.05)

    def kill(self) -> list[int]:
        """SIGKILL to ``unshare`` (``--kill-child`` then kills the host's PID 1, and with it every process of
        its pid namespace); returns the pid of that PID 1 (as this machine sees it) to wait for."""
        if self._process is None or self._process.poll() is not None:
            return []
        try:
            children = [int(p) for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]
        except OSError:
            children = []
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return children

    def stop(self, timeout: float = 10) -> None:
        """Kill the host (see ``kill``) and wait until its PID 1 is gone: the kernel ends a pid namespace's
        init only after every other process in it, so then nothing of the host runs and its mounts are gone."""
        wait_gone(self, self.kill(), timeout)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie runs nothing
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def wait_gone(host: NamespaceHost, inits: list[int], timeout: float) -> None:
    """Reap ``host``'s unshare and wait until the namespace inits ``inits`` have ended (TimeoutError after ``timeout``)."""
    if host._process is not None:
        host._process.wait(timeout)
    deadline = time.monotonic() + timeout
    while not all(_gone(pid) for pid in inits):
        if time.monotonic() > deadline:
            raise TimeoutError(f"namespace host {host.state.name}: its PID 1 ({inits}) still runs {timeout}s after SIGKILL")
        time.sleep(0.01)


class NamespaceTestbed(Testbed):
    """Start many namespace hosts; the same surface as ``nspawn.Testbed`` (``inventory``, ``ssh_config``,
    ``known_hosts``, ``hosts``, ``describe``, ``down=``), and ``stop()`` (or leaving the ``with``)
    stops every host by its pid, also when starting failed half way."""

    __test__ = False

    def __init__(self, states: list[HostState], workdir: Path, *, down: list[str] = (), ready_timeout: float = 60,
                 cgroup: Path | None = None):
        """``cgroup``: an existing cgroup directory every host's processes join (e.g. to read the CPU all hosts
        used, cgroup v2 ``cpu.stat``); the caller makes and removes it."""
        super().__init__(states, workdir, down=down)
        self.ready_timeout = ready_timeout
        self.cgroup = cgroup
        self.templates: dict[str, Template] = {}

    def start(self) -> None:
        rootfs = ensure_rootfs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        pubkey = self.client_key.with_suffix(".pub").read_text()
        addresses = ns_address_block(len(self.states) + len(self.down))
        self.down_addresses = dict(zip(self.down, addresses[len(self.states):], strict=True))
        hosts = []
        for i, (state, address) in enumerate(zip(self.states, addresses, strict=False)):
            key = repr(replace(state, name=""))  # hosts that differ only by name share one template
            if key not in self.templates:
                self.templates[key] = Template.render(state, self.workdir / "templates" / str(len(self.templates)),
                                                      rootfs, pubkey)
            hosts.append(NamespaceHost(state, address, self.workdir / f"{i:03d}-{state.name}", rootfs,
                                       self.templates[key]))
        self.hosts = hosts
        with ThreadPoolExecutor(max_workers=8) as pool:
            known = list(pool.map(NamespaceHost.prepare, hosts))
        self.known_hosts.write_text("\n".join(known) + "\n")
        self.ssh_config.write_text(f"IdentityFile {self.client_key}\nUserKnownHostsFile {self.known_hosts}\n"
                                   "StrictHostKeyChecking yes\nBatchMode yes\nLogLevel ERROR\n")
        self._write_inventory()
        for host in hosts:
            host.start(self.cgroup)
        deadline = time.monotonic() + self.ready_timeout
        for host in hosts:
            host.wait_ready(deadline)

    def stop(self) -> None:
        """Every started host, by pid: SIGKILL to all first, then wait until each is gone."""
        errors = []
        inits = {id(host): host.kill() for host in self.hosts}
        for host in self.hosts:
            try:
                wait_gone(host, inits[id(host)], 10)
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]
