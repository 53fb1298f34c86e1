"""Real sshd hosts on this machine: systemd-nspawn containers booting the cached rootfs.

Each host boots real systemd, logind and sshd (PAM limits, user slices) with
``--volatile=overlay`` (the rootfs is never changed), listens on its own 127.0.x.y:2222,
and gets its per-host files bound in. Every container is stopped by its pid.
Example::

    with Testbed([CONFORMANT, DRIFTED], workdir) as bed:
        bed.inventory   # an Ansible inventory of the running hosts
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from railiance_testbed.hosts import HostState, kernel_views, render_layer
from railiance_testbed.rootfs import ensure_rootfs

SSH_PORT = 2222
INVENTORY_FIXTURES = Path(__file__).parent / "fixtures" / "inventory"   # group_vars/ copied into each inventory


def free_address_block(count: int) -> list[str]:
    """``count`` loopback addresses 127.<r>.<n>.x on which nothing listens on SSH_PORT."""
    for _ in range(50):
        second, third = random.randint(100, 250), random.randint(1, 250)
        addresses = [f"127.{second}.{third}.{n}" for n in range(2, 2 + count)]
        if all(_port_free(a) for a in addresses):
            return addresses
    raise RuntimeError("no free loopback address block for the testbed")


def _port_free(address: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, SSH_PORT))
        except OSError:
            return False
    return True


@dataclass
class NspawnHost:
    state: HostState
    address: str
    workdir: Path
    rootfs: Path
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"ssh://tegwick@{self.address}:{SSH_PORT}"

    @property
    def sshd_log(self) -> Path:
        return self.workdir / "log" / "sshd.log"

    def prepare(self, client_pubkey: str) -> str:
        """Render the layer and host key; returns this host's known_hosts line."""
        binds = render_layer(self.state, self.workdir / "layer", rootfs=self.rootfs, client_pubkey=client_pubkey,
                             address=self.address)
        keydir = self.workdir / "hostkey"
        keydir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keydir / "ssh_host_ed25519_key")],
                       check=True)
        sshd = self.workdir / "sshd_config.d" / "testbed.conf"
        sshd.parent.mkdir(parents=True, exist_ok=True)
        sshd.write_text(f"ListenAddress {self.address}:{SSH_PORT}\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
                        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n")
        default = self.workdir / "default-ssh"
        default.write_text('SSHD_OPTS="-E /var/log/testbed/sshd.log"\n')
        (self.workdir / "log").mkdir(exist_ok=True)
        self.sshd_log.touch()
        self.binds = {**binds, "/etc/ssh/sshd_config.d/testbed.conf": str(sshd),
                      "/etc/ssh/ssh_host_ed25519_key": str(keydir / "ssh_host_ed25519_key"),
                      "/etc/ssh/ssh_host_ed25519_key.pub": str(keydir / "ssh_host_ed25519_key.pub"),
                      "/etc/default/ssh": str(default)}
        public = (keydir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        return f"[{self.address}]:{SSH_PORT} {' '.join(public)}"

    def start(self) -> None:
        layer = self.workdir / "layer"
        args = ["systemd-nspawn", "--quiet", "--boot", "--volatile=overlay", "--keep-unit", "--register=no",
                "--console=read-only", "-D", str(self.rootfs), "-M", f"tb-{self.state.name}-{self.address.replace('.', '-')}"[:64],
                # the fake kernel views (nspawn resolves the source of a bind over /proc inside the
                # container, so those come from /fixture-kernel; any other source from the machine's side)
                f"--bind-ro={layer / 'kernel'}:/fixture-kernel",
                *(f"--bind-ro={'/fixture-kernel' if inside.startswith('/proc/') else layer / 'kernel'}{inside}:{inside}"
                  for inside in kernel_views(self.state)),
                f"--bind={self.workdir / 'log'}:/var/log/testbed"]
        for inside, outside in self.binds.items():
            args.append(f"--bind={outside}:{inside}" if inside == "/home/tegwick" else f"--bind-ro={outside}:{inside}")
        console = open(self.workdir / "console.log", "wb")
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        console.close()
        self.pid = process.pid
        self._process = process

    def wait_ready(self, ssh_base: list[str], timeout: float = 120) -> None:
        """Until sshd answers and the boot has finished: ``systemctl is-system-running --wait`` says
        ``running`` or ``degraded`` (logind up, no unit still starting that may restart sshd: on a
        loaded machine a login during the boot can be cut off)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.state.name}: nspawn exited: {(self.workdir / 'console.log').read_text()[-2000:]}")
            with socket.socket() as probe:
                probe.settimeout(0.2)
                if probe.connect_ex((self.address, SSH_PORT)) == 0:
                    done = subprocess.run([*ssh_base, "-p", str(SSH_PORT), f"tegwick@{self.address}",
                                           "timeout 20 systemctl is-system-running --wait"],
                                          capture_output=True, text=True,
                                          timeout=max(1.0, deadline - time.monotonic()))
                    if done.stdout.strip() in ("running", "degraded"):
                        return
            time.sleep(0.1)
        raise TimeoutError(f"{self.state.name} at {self.address}: no SSH login within {timeout}s")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (nspawn powers the container off cleanly), SIGKILL if it lingers."""
        if self.pid is None or self._process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self._process.wait(5)


class Testbed:
    """Start several hosts in parallel; ``stop()`` (or leaving the ``with``) stops them all."""

    __test__ = False  # not a pytest test class

    def __init__(self, states: list[HostState], workdir: Path, *, down: list[str] = ()):
        self.workdir = Path(workdir)
        self.states = states
        self.down = list(down)  # names of hosts that are listed in the inventory but not running
        self.hosts: list[NspawnHost] = []

    def __enter__(self) -> "Testbed":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def client_key(self) -> Path:
        return self.workdir / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.workdir / "ssh_config"

    @property
    def inventory(self) -> Path:
        return self.workdir / "inventory" / "hosts.ini"

    def ssh_base(self) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config)]

    def start(self) -> None:
        rootfs = ensure_rootfs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        pubkey = self.client_key.with_suffix(".pub").read_text()
        addresses = free_address_block(len(self.states) + len(self.down))
        self.hosts = [NspawnHost(state, address, self.workdir / f"{i:02d}-{state.name}", rootfs)
                      for i, (state, address) in enumerate(zip(self.states, addresses, strict=False))]
        self.down_addresses = dict(zip(self.down, addresses[len(self.states):], strict=True))
        with ThreadPoolExecutor(max_workers=8) as pool:
            known = list(pool.map(lambda h: h.prepare(pubkey), self.hosts))
        self.known_hosts.write_text("\n".join(known) + "\n")
        self.ssh_config.write_text(f"IdentityFile {self.client_key}\nUserKnownHostsFile {self.known_hosts}\n"
                                   "StrictHostKeyChecking yes\nBatchMode yes\nLogLevel ERROR\n")
        self._write_inventory()
        for host in self.hosts:
            host.start()
        with ThreadPoolExecutor(max_workers=len(self.hosts) or 1) as pool:
            list(pool.map(lambda h: h.wait_ready(self.ssh_base()), self.hosts))

    def _write_inventory(self) -> None:
        lines = ["[coulomb]"]
        for host in self.hosts:
            lines.append(f"{host.state.name} ansible_host={host.address} ansible_port={SSH_PORT} ansible_user=tegwick")
        for name, address in self.down_addresses.items():
            lines.append(f"{name} ansible_host={address} ansible_port={SSH_PORT} ansible_user=tegwick")
        self.inventory.parent.mkdir(parents=True, exist_ok=True)
        self.inventory.write_text("\n".join(lines) + "\n")
        group_vars = self.inventory.parent / "group_vars"
        group_vars.mkdir(exist_ok=True)
        # the inventory's vars are data: fixtures/inventory/group_vars/ (as in railiance-infra's inventory)
        for source in sorted(INVENTORY_FIXTURES.glob("group_vars/*.yml")):
            shutil.copyfile(source, group_vars / source.name)

    def stop(self) -> None:
        errors = []
        for host in self.hosts:
            try:
                host.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]

    def describe(self) -> dict:
        return {"inventory": str(self.inventory), "ssh_config": str(self.ssh_config),
                "hosts": {h.state.name: {"url": h.url, "pid": h.pid, "sshd_log": str(h.sshd_log)} for h in self.hosts},
                "down": {name: f"ssh://tegwick@{a}:{SSH_PORT}" for name, a in self.down_addresses.items()}}

    def write_state(self) -> Path:
        path = self.workdir / "testbed.json"
        path.write_text(json.dumps(self.describe(), indent=2))
        return path

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
