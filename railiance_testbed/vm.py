"""The realistic host tier: one testbed host as a real VM under QEMU (TCG), real kernel included.

Nothing is faked: the setup unit baked into the image (``vm_image``) plays the Ansible swapfile role and
writes the state's ``/proc/sys`` values with ``sysctl -p``. Each VM boots a qcow2 overlay of the cached
image plus a config disk (label ``TBCONFIG``) with the host state's files, a fresh SSH host key and ``swap.env``.
Example::

    with VMHost(CONFORMANT, workdir) as vm:      # ~30-90 s to the first SSH login under TCG
        run_suite("--hosts", vm.url, "--ssh-config", str(vm.ssh_config), ...)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from railiance_testbed.hosts import CONFORMANT, HostState, live_sysctls, render_layer
from railiance_testbed.rootfs import OPERATOR_USER
from railiance_testbed.vm_image import CONFIG_LABEL, FAST_KEX, VMImage, ensure_image


class _PortTaken(RuntimeError):
    """QEMU could not bind its hostfwd port."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class VMHost:
    """One testbed host as a QEMU VM (TCG) on its own qcow2 overlay, SSH forwarded to 127.0.0.1:port.

    ``start()`` boots it and waits for an SSH login as the operator; ``stop()`` stops QEMU by its
    pid (SIGTERM, then SIGKILL) and removes the overlay; leaving the ``with`` stops it also when
    the body failed.
    """

    def __init__(self, state: HostState = CONFORMANT, workdir: Path | str = ".", *, memory_mib: int = 1024,
                 cpus: int = 2, log=sys.stderr):
        self.state = state
        self.workdir = Path(workdir)
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.log = log
        self.port: int | None = None
        self.pid: int | None = None
        self._process: subprocess.Popen | None = None
        self.timings: dict[str, float] = {}

    # --- what a client needs --------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ssh://{OPERATOR_USER}@127.0.0.1:{self.port}"

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
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def overlay(self) -> Path:
        return self.workdir / "overlay.qcow2"

    @property
    def config_disk(self) -> Path:
        return self.workdir / "config.ext4"

    def ssh(self, command: str, *, timeout: float = 30, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """Run ``command`` on the VM as the operator (the client key is only authorized for them).

        Prefers curve25519 key exchange as the suite does (``--ssh-kex fast``): OpenSSH's default
        post-quantum hybrid costs the guest seconds under TCG.
        """
        return subprocess.run(["ssh", "-F", str(self.ssh_config), "-o", f"KexAlgorithms={FAST_KEX}", *options,
                               "-p", str(self.port), f"{OPERATOR_USER}@127.0.0.1", command],
                              check=False, capture_output=True, text=True, timeout=timeout)

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> VMHost:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 240) -> None:
        began = time.monotonic()
        image = ensure_image(log=self.log)
        self.timings["image"] = time.monotonic() - began
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._prepare(image)
        booted = time.monotonic()
        for attempt in range(3):
            self._launch(image)
            try:
                self._wait_for_login(timeout)
                break
            except _PortTaken:  # another process bound the free port between the probe and QEMU
                if attempt == 2:
                    raise
        self.timings["boot_to_ssh"] = time.monotonic() - booted
        print(f"testbed: VM {self.state.name} up: image {self.timings['image']:.1f}s, "
              f"prepare {self.timings['prepare']:.1f}s, boot to SSH login {self.timings['boot_to_ssh']:.1f}s",
              file=self.log, flush=True)

    def _launch(self, image: VMImage) -> None:
        self.port = free_port()
        self.overlay.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.base), "-F", "raw",
                        str(self.overlay)], check=True)
        args = ["qemu-system-x86_64", "-accel", "tcg", "-m", str(self.memory_mib), "-smp", str(self.cpus),
                "-nodefaults", "-nographic", "-serial", f"file:{self.console_log}", "-monitor", "none",
                "-no-reboot",
                "-kernel", str(image.kernel), "-initrd", str(image.initrd),
                "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1",
                "-drive", f"file={self.overlay},format=qcow2,if=virtio,cache=unsafe",
                "-drive", f"file={self.config_disk},format=raw,if=virtio,readonly=on",
                "-netdev", f"user,id=n,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:22",
                "-device", "virtio-net-pci,netdev=n,romfile=",
                "-device", "virtio-rng-pci"]
        with open(self.workdir / "qemu.stderr", "wb") as stderr:
            self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=stderr, start_new_session=True)
        self.pid = self._process.pid
        print(f"testbed: VM {self.state.name} booting (qemu pid {self.pid}, ssh 127.0.0.1:{self.port}, "
              f"console {self.console_log})", file=self.log, flush=True)

    def _prepare(self, image: VMImage) -> None:
        """Client key, host key, the config disk; known_hosts and ssh_config for the client."""
        began = time.monotonic()
        for stale in (self.client_key, self.client_key.with_suffix(".pub")):
            stale.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "railiance-testbed-client",
                        "-f", str(self.client_key)], check=True)
        config = self.workdir / "config"
        shutil.rmtree(config, ignore_errors=True)
        root = config / "root"
        root.mkdir(parents=True)
        os.chmod(root, 0o755)
        # the host state's files, exactly those the nspawn hosts get bound in
        layer = self.workdir / "layer"
        shutil.rmtree(layer, ignore_errors=True)
        binds = render_layer(self.state, layer, rootfs=image.rootfs,
                             client_pubkey=self.client_key.with_suffix(".pub").read_text(),
                             address="127.0.0.1")  # the VM's loopback is its own: Gitea's SSH server on it
        for inside, outside in binds.items():
            if inside == "/swapfile":
                continue  # the VM makes a real one (fallocate + mkswap + swapon)
            destination = root / inside.lstrip("/")
            self._mkdirs(root, destination.parent)
            if Path(outside).is_dir():
                shutil.copytree(outside, destination, symlinks=True)
                shutil.copystat(outside, destination)
                os.chown(destination, os.stat(outside).st_uid, os.stat(outside).st_gid)
            else:
                shutil.copy2(outside, destination)
                os.chown(destination, os.stat(outside).st_uid, os.stat(outside).st_gid)
        for path in (root / "home").rglob("*"):  # copytree keeps modes, not owners
            os.lchown(path, self.state.uid, self.state.uid)
        shutil.rmtree(layer, ignore_errors=True)  # its sparse 4 GiB swapfile is not needed
        hostkey = root / "etc" / "ssh" / "ssh_host_ed25519_key"
        self._mkdirs(root, hostkey.parent)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{self.state.name}-vm",
                        "-f", str(hostkey)], check=True)
        (config / "swap.env").write_text(
            f"SWAP_BYTES={self.state.swap_bytes}\nSWAP_MODE={self.state.swap_mode:o}\n"
            f"SWAP_ACTIVE={'yes' if self.state.swap_active else 'no'}\n")
        # the state's /proc/sys values, written live at boot (a VM's other /proc and /sys are its kernel's own)
        (config / "live-sysctl.conf").write_text("".join(f"{key} = {value}\n"
                                                         for key, value in live_sysctls(self.state).items()))
        self.config_disk.unlink(missing_ok=True)
        subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", CONFIG_LABEL, "-d", str(config),
                        str(self.config_disk), "16M"], check=True, stdout=subprocess.DEVNULL)
        public = hostkey.with_suffix(".pub").read_text().split()[:2]
        self._public_host_key = " ".join(public)
        shutil.rmtree(config)  # the host's private key lives on in the config disk only
        self.timings["prepare"] = time.monotonic() - began

    @staticmethod
    def _mkdirs(root: Path, directory: Path) -> None:
        """Create ``directory`` under ``root`` as root-owned 0755 directories."""
        missing = []
        while directory != root and not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for path in reversed(missing):
            path.mkdir()
            os.chmod(path, 0o755)

    def _write_client_files(self) -> None:
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {self._public_host_key}\n")
        self.ssh_config.write_text(f"IdentityFile {self.client_key}\nIdentitiesOnly yes\n"
                                   f"UserKnownHostsFile {self.known_hosts}\nStrictHostKeyChecking yes\n"
                                   "BatchMode yes\nLogLevel ERROR\nConnectTimeout 10\n")

    def _wait_for_login(self, timeout: float) -> None:
        """Poll an SSH login (slirp accepts TCP before sshd listens: only a login proves it is up)."""
        self._write_client_files()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = (self.workdir / "qemu.stderr").read_text(errors="replace")
                if "host forwarding rule" in stderr:
                    raise _PortTaken(stderr)
                raise RuntimeError(f"VM {self.state.name}: qemu exited with {self._process.returncode}: "
                                   f"{stderr[-2000:]}\n"
                                   f"console: {self._console_tail()}")
            try:
                # slirp accepts the TCP connection at once and only then reaches the guest: a short
                # ConnectTimeout (it also bounds the banner exchange) keeps the polling tight
                done = self.ssh("timeout 60 systemctl is-system-running --wait; true",
                                timeout=max(5.0, min(90.0, deadline - time.monotonic())),
                                options=("-o", "ConnectTimeout=3"))
            except subprocess.TimeoutExpired:
                continue
            if done.returncode == 0:
                return
            last = done.stderr.strip()
            time.sleep(1)
        raise TimeoutError(f"VM {self.state.name}: no SSH login on 127.0.0.1:{self.port} within {timeout:.0f}s "
                           f"(last ssh error: {last!r}); console: {self._console_tail()}")

    def _console_tail(self, chars: int = 3000) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no console log)"

    def stop(self, timeout: float = 10) -> None:
        """Stop QEMU by its pid (SIGTERM, then SIGKILL) and remove the overlay; idempotent."""
        try:
            if self._process is not None and self._process.poll() is None:
                os.kill(self.pid, signal.SIGTERM)
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    self._process.wait(10)
        finally:
            self.overlay.unlink(missing_ok=True)
            self.config_disk.unlink(missing_ok=True)
