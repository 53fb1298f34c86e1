"""The VM tier's disk image: debootstrap + kernel (``base.raw``), built once and cached by a hash of its
recipe (``RECIPE``), with the setup unit that plays the Ansible swapfile role at boot. ``vm.VMHost`` boots it.
Example: ``ensure_image()`` -> ``VMImage(path)`` (minutes the first time, then the cached file).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from railiance_testbed.rootfs import CACHE_DIR, OPERATOR_UID, OPERATOR_USER, recipe_key

DISK_SIZE = "7G"      # room for the rootfs (~1 GiB) and a real 4 GiB swapfile
CONFIG_LABEL = "TBCONFIG"
FAST_KEX = "^curve25519-sha256,curve25519-sha256@libssh.org"
GUEST_ADDRESS = "10.0.2.15"  # QEMU user networking's guest address; hostfwd forwards to it

# Runs once per boot, before sshd: the per-VM files from the config disk, then the swapfile
# role exactly as Ansible's does it (and as the workplan's T01 describes), then the live sysctl.
SETUP_SCRIPT = """#!/bin/sh
# railiance testbed: per-VM setup from the config disk (label TBCONFIG), before sshd starts.
set -eu
mnt=/run/testbed-config
mkdir -p "$mnt"
mount -o ro LABEL=TBCONFIG "$mnt"
cp -a "$mnt/root/." /
. "$mnt/swap.env"
cp "$mnt/live-sysctl.conf" /run/testbed-live-sysctl.conf
umount "$mnt"
# QEMU's user network, a static address (systemd-networkd alone takes ~7 s to start under TCG);
# net.ifnames=0 on the kernel command line keeps the name eth0
for _ in $(seq 150); do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done
ip addr add {address}/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
# the copied unit drop-ins (user-1000.slice.d) must be seen before logind creates the slice
systemctl daemon-reload
# the swapfile role: fallocate, chmod, mkswap, swapon (fstab came with the files above)
if [ ! -e /swapfile ]; then
    fallocate -l "$SWAP_BYTES" /swapfile
fi
chmod "$SWAP_MODE" /swapfile
if ! grep -q '^/swapfile ' /proc/swaps; then
    mkswap /swapfile >/dev/null
    if [ "$SWAP_ACTIVE" = yes ]; then
        swapon /swapfile
    fi
fi
# the sysctl role: persisted files applied, then the live values the host state asks for
sysctl --system >/dev/null
sysctl -q -p /run/testbed-live-sysctl.conf
echo "testbed-setup: done: $(tail -n +2 /proc/swaps) swappiness=$(cat /proc/sys/vm/swappiness)"
""".replace("{address}", GUEST_ADDRESS)

SETUP_UNIT = """[Unit]
Description=railiance testbed per-VM setup (host files, swapfile, sysctl)
Wants=dev-disk-by\\x2dlabel-TBCONFIG.device
After=dev-disk-by\\x2dlabel-TBCONFIG.device local-fs.target
Before=ssh.service systemd-user-sessions.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/testbed-setup
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
RequiredBy=ssh.service
"""

RECIPE = {
    "suite": "bookworm",
    "variant": "minbase",
    "mirror": os.environ.get("RAILIANCE_TESTBED_MIRROR", "http://deb.debian.org/debian"),
    # dbus + libpam-systemd: without them logind never creates user-1000.slice (TESTBED.md);
    # linux-image-amd64 pulls initramfs-tools, whose initrd loads virtio_blk and ext4
    "include": ["linux-image-amd64", "systemd-sysv", "openssh-server", "udev", "iproute2", "procps",
                "util-linux", "sudo", "dbus", "libpam-systemd", "git", "e2fsprogs", "kmod"],
    "files": {
        "/etc/hostname": ("coulombcore-vm\n", 0o644),
        "/etc/hosts": ("127.0.0.1 localhost\n127.0.1.1 coulombcore-vm\n", 0o644),
        "/etc/fstab": (("# the root filesystem is mounted by the kernel (root=/dev/vda rw);\n"
                        "# testbed-setup replaces this file with the host state's fstab\n"), 0o644),
        # a small initrd: only what finds the root disk (MODULES=most unpacks and probes ~36 MB under TCG)
        "/etc/initramfs-tools/conf.d/testbed.conf": ("MODULES=list\n", 0o644),
        "/etc/initramfs-tools/modules": ("virtio_pci\nvirtio_blk\next4\n", 0o644),
        "/etc/ssh/sshd_config.d/testbed.conf": (
            ("HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nUseDNS no\nLogLevel VERBOSE\n"), 0o644),
        "/usr/local/sbin/testbed-setup": (SETUP_SCRIPT, 0o755),
        "/etc/systemd/system/testbed-setup.service": (SETUP_UNIT, 0o644),
    },
    "post": [
        ["useradd", "--create-home", "--uid", str(OPERATOR_UID), "--shell", "/bin/bash", OPERATOR_USER],
        ["systemctl", "enable", "testbed-setup.service"],
        ["sh", "-c", "mount -t proc proc /proc && update-initramfs -u -k all; r=$?; umount /proc; exit $r"],
        # nothing in a test host needs these at boot; they only slow it down (TCG is slow)
        ["systemctl", "mask", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
         "e2scrub_reap.service", "fstrim.timer", "dpkg-db-backup.timer", "man-db.timer",
         "systemd-timesyncd.service", "getty@tty1.service", "serial-getty@ttyS0.service"],
        # pam_nologin: see rootfs.py
        ["ln", "-sf", "/dev/null", "/etc/tmpfiles.d/systemd-nologin.conf"],
        # every VM gets its own host key from its config disk; none is shared through the image
        ["sh", "-c", "rm -f /etc/ssh/ssh_host_*"],
        ["apt-get", "clean"],
    ],
    "recipe_version": 2,
}


class VMImage:
    """A built image in the cache: the rootfs it came from, its base disk, kernel and initrd."""

    def __init__(self, path: Path):
        self.path = path
        self.rootfs = path / "rootfs"
        self.base = path / "base.raw"
        self.kernel = path / "vmlinuz"
        self.initrd = path / "initrd.img"


def ensure_image(cache_dir: Path = CACHE_DIR, *, log=sys.stderr) -> VMImage:
    """The image for the current recipe; builds it (a few minutes, once) when the cache lacks it."""
    target = cache_dir / f"vm-{recipe_key(RECIPE)}"
    if (target / ".complete").exists():
        return VMImage(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".vm-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; others wait and reuse
        if (target / ".complete").exists():
            return VMImage(target)
        building = cache_dir / f"{target.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        image = VMImage(building)
        started = time.monotonic()
        print(f"testbed: building the VM image {target} with debootstrap (cached afterwards)", file=log, flush=True)
        done = subprocess.run(["debootstrap", f"--variant={RECIPE['variant']}",
                               f"--include={','.join(RECIPE['include'])}",
                               RECIPE["suite"], str(image.rootfs), RECIPE["mirror"]],
                              check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed ({done.returncode}): {done.stderr[-2000:]}")
        for path, (text, mode) in RECIPE["files"].items():
            file = image.rootfs / path.lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
            os.chmod(file, mode)
        for step in RECIPE["post"]:
            done = subprocess.run(["chroot", str(image.rootfs), *step], check=False,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"image step {step} failed ({done.returncode}): {done.stderr[-2000:]}")
        boot = image.rootfs / "boot"
        kernels = sorted(boot.glob("vmlinuz-*"))
        initrds = sorted(boot.glob("initrd.img-*"))
        if len(kernels) != 1 or len(initrds) != 1:
            raise RuntimeError(f"expected one kernel and one initrd in {boot}: {kernels} {initrds}")
        shutil.copyfile(kernels[0], image.kernel)
        shutil.copyfile(initrds[0], image.initrd)
        bootstrapped = time.monotonic()
        # a sparse raw ext4 disk holding the rootfs; never booted itself (qcow2 overlays only)
        subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", str(image.rootfs),
                        str(image.base), DISK_SIZE], check=True, stdout=subprocess.DEVNULL)
        os.chmod(image.base, 0o444)
        (building / ".complete").write_text(json.dumps(RECIPE, indent=1))
        building.rename(target)
        print(f"testbed: VM image built in {time.monotonic() - started:.0f}s "
              f"(debootstrap {bootstrapped - started:.0f}s, disk {time.monotonic() - bootstrapped:.0f}s)",
              file=log, flush=True)
    return VMImage(target)
