"""The cached Debian rootfs the nspawn testbed hosts boot from.

Built once with debootstrap and cached outside the repo, keyed by a hash of its recipe, so
a changed recipe builds a new rootfs and an unchanged one is reused.
Example: ``ensure_rootfs()`` -> ``/var/cache/railiance-testbed/rootfs-3f2a9c01d4e5``.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE_DIR = Path(os.environ.get("RAILIANCE_TESTBED_CACHE", "/var/cache/railiance-testbed"))
OPERATOR_USER, OPERATOR_UID = "tegwick", 1000

RECIPE = {
    "suite": "bookworm",
    "variant": "minbase",
    "mirror": os.environ.get("RAILIANCE_TESTBED_MIRROR", "http://deb.debian.org/debian"),
    # dbus + libpam-systemd: without them logind never creates user-1000.slice (TESTBED.md)
    "include": ["systemd-sysv", "openssh-server", "udev", "iproute2", "procps", "util-linux", "sudo",
                "dbus", "libpam-systemd", "git",
                # python3 only so the benchmark can run the same checks with ansible-playbook --check
                "python3"],
    "post": [
        ["useradd", "--create-home", "--uid", str(OPERATOR_UID), "--shell", "/bin/bash", OPERATOR_USER],
        # nothing in a test host needs these at boot; they only slow it down
        ["systemctl", "mask", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
         "fstrim.timer", "systemd-networkd-wait-online.service", "getty@tty1.service", "console-getty.service"],
        # /run/nologin (pam_nologin refuses logins) is created at boot and removed by
        # systemd-user-sessions; under load on 2 cores that unit was seen to fail, locking
        # the host. The testbed does not test nologin: never create the file.
        ["ln", "-sf", "/dev/null", "/etc/tmpfiles.d/systemd-nologin.conf"],
        ["apt-get", "clean"],
    ],
    "recipe_version": 1,
}


def recipe_key(recipe: dict = RECIPE) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def ensure_rootfs(cache_dir: Path = CACHE_DIR, *, log=sys.stderr) -> Path:
    """The rootfs for the current recipe; builds it (about a minute) when the cache lacks it."""
    target = cache_dir / f"rootfs-{recipe_key()}"
    if (target / ".complete").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; others wait and reuse
        if (target / ".complete").exists():
            return target
        building = cache_dir / f"{target.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        print(f"testbed: building {target} with debootstrap (cached afterwards)", file=log, flush=True)
        subprocess.run(["debootstrap", f"--variant={RECIPE['variant']}", f"--include={','.join(RECIPE['include'])}",
                        RECIPE["suite"], str(building), RECIPE["mirror"]],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for step in RECIPE["post"]:
            subprocess.run(["chroot", str(building), *step], check=True, stdout=subprocess.DEVNULL)
        (building / ".complete").write_text(json.dumps(RECIPE, indent=1))
        building.rename(target)
    return target
