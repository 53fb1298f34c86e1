"""What each testbed host looks like: the conformant host and the drifted one, as data.

A ``HostState`` lists the files that make a host (conformant or drifted) and the fake kernel
views; ``render_layer`` writes them into a per-host directory that ``nspawn`` binds into the
booted container. The drifted host drifts on every S1 control, each in a way operators
really meet (a later sysctl.d file, a limits.d override, a commented fstab line, ...).
Example: ``render_layer(DRIFTED, Path("/tmp/h2"), ...)``.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

GIB = 1024 ** 3
REPOS = ("railiance-infra", "railiance-cluster", "railiance-platform", "railiance-apps")
GITEA_NODEPORT = 30022
# A unique value the tests grep for: it must never reach a report, log or test id.
REMOTE_SECRET_SENTINEL = "SENTINEL-remote-token-5f1c2d"


@dataclass(frozen=True)
class HostState:
    name: str
    uid: int = 1000
    swap_bytes: int = 4 * GIB
    swap_mode: int = 0o600
    swap_active: bool = True
    swappiness_live: int = 10
    fstab_swap_line: str = "/swapfile none swap sw 0 0"
    sysctl_files: dict[str, str] = field(default_factory=lambda: {
        "/etc/sysctl.d/60-swappiness.conf": "# managed by ansible (role swapfile)\nvm.swappiness = 10\n"})
    limits_conf_extra: str = "tegwick soft nproc 512\ntegwick hard nproc 1024\n"
    limits_d: dict[str, str] = field(default_factory=dict)
    slice_dropin: str = "[Slice]\nMemoryMax=1500M\nMemorySwapMax=512M\n"
    key_mode: int = 0o600
    ssh_port_in_config: int = GITEA_NODEPORT
    remotes: dict[str, str] = field(default_factory=lambda: {
        repo: f"ssh://git@gitea-local/coulomb/{repo}.git" for repo in REPOS})
    # real-world variants (issue 10/11): each defaults to the plain conformant layout
    pushurls: dict[str, str] = field(default_factory=dict)      # repo -> remote.origin.pushurl
    ssh_config: str | None = None                               # ~/.ssh/config text (None: the gitea-local block)
    home_files: dict[str, bytes | str] = field(default_factory=dict)  # path under ~ -> content (owned by the user)
    limits_d_mode: int | None = None                            # mode of /etc/security/limits.d (bound as a directory)
    root_login: bool = False                                    # the client key may log in as root too


CONFORMANT = HostState("conformant")

DRIFTED = replace(
    CONFORMANT,
    name="drifted",
    uid=1001,
    swap_bytes=2 * GIB,
    swap_mode=0o644,
    swap_active=False,
    swappiness_live=60,
    fstab_swap_line="#/swapfile none swap sw 0 0",
    sysctl_files={"/etc/sysctl.d/60-swappiness.conf": "vm.swappiness = 10\n",
                  "/etc/sysctl.d/99-zz-tuning.conf": "# someone's later tuning wins\nvm.swappiness = 60\n"},
    limits_d={"/etc/security/limits.d/99-build-jobs.conf": "tegwick - nproc 4096\n"},
    slice_dropin="[Slice]\nMemoryMax=2G\nMemorySwapMax=1G\n",
    key_mode=0o644,
    ssh_port_in_config=30023,
    remotes={**CONFORMANT.remotes,
             "railiance-apps": f"https://tegwick:{REMOTE_SECRET_SENTINEL}@gitea.example.invalid/coulomb/railiance-apps.git"},
)

# control ids the drifted host must drift on (every S1 host control)
DRIFTED_CONTROLS = frozenset({
    "host.swap.file", "host.swap.active", "host.swap.fstab", "host.swappiness.live", "host.swappiness.persisted",
    "host.user.uid", "host.nproc.configured", "host.nproc.effective", "host.slice.configured",
    "host.slice.effective", "host.gitea_ssh.key", "host.gitea_ssh.config", "host.gitea_ssh.remotes"})

FSTAB_BASE = "# /etc/fstab: static file system information.\nproc /proc proc defaults 0 0\n"
PROC_SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


def _write(path: Path, text: str | bytes, mode: int = 0o644, uid: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.chmod(path, mode)
    os.chown(path, uid, uid)


def _user_db(rootfs: Path, state: HostState) -> dict[str, str]:
    """/etc/passwd, group, shadow of the rootfs with the operator's uid/gid set to ``state.uid``."""
    out = {}
    for name in ("passwd", "group", "shadow"):
        lines = (rootfs / "etc" / name).read_text().splitlines()
        for i, line in enumerate(lines):
            fields = line.split(":")
            if fields[0] == "tegwick" and name in ("passwd", "group"):
                fields[2] = str(state.uid)
                if name == "passwd":
                    fields[3] = str(state.uid)
                lines[i] = ":".join(fields)
        out[f"/etc/{name}"] = "\n".join(lines) + "\n"
    return out


def render_layer(state: HostState, layer: Path, *, rootfs: Path, client_pubkey: str) -> dict[str, str]:
    """Write the host's files under ``layer``; return {container path: layer path} to bind."""
    binds: dict[str, str] = {}
    etc = layer / "etc-files"
    limits_extra = state.limits_conf_extra
    files = {
        "/etc/fstab": FSTAB_BASE + state.fstab_swap_line + "\n",
        "/etc/security/limits.conf": (b"# /etc/security/limits.conf\n" + limits_extra) if isinstance(limits_extra, bytes)
        else "# /etc/security/limits.conf\n" + limits_extra,
        "/etc/systemd/system/user-1000.slice.d/50-resource-limits.conf": state.slice_dropin,
        **state.sysctl_files, **state.limits_d, **_user_db(rootfs, state),
    }
    limits_d = "/etc/security/limits.d"
    for path, text in files.items():
        source = etc / path.lstrip("/")
        _write(source, text, 0o640 if path == "/etc/shadow" else 0o644)
        if state.limits_d_mode is None or not path.startswith(limits_d + "/"):
            binds[path] = str(source)
    if state.limits_d_mode is not None:  # the directory itself, with its own mode (e.g. 0700 root)
        directory = etc / limits_d.lstrip("/")
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, state.limits_d_mode)
        binds[limits_d] = str(directory)
    if state.root_login:
        _write(layer / "root-authorized_keys", client_pubkey, 0o600)
        binds["/root/.ssh/authorized_keys"] = str(layer / "root-authorized_keys")
    # /swapfile: a sparse file with the state's size and mode (the kernel's swap is faked below)
    swapfile = layer / "swapfile"
    with open(swapfile, "wb") as handle:
        handle.truncate(state.swap_bytes)
    os.chmod(swapfile, state.swap_mode)
    binds["/swapfile"] = str(swapfile)
    # fake kernel views, bound from /fixture-proc (a /proc bind resolves its source inside)
    proc = layer / "proc"
    swaps = PROC_SWAPS_HEADER
    if state.swap_active:
        swaps += f"/swapfile{' ' * 31}file\t\t{state.swap_bytes // 1024 - 4}\t\t0\t\t-2\n"
    _write(proc / "swaps", swaps)
    _write(proc / "swappiness", f"{state.swappiness_live}\n")
    _render_home(state, layer / "home", client_pubkey)
    binds["/home/tegwick"] = str(layer / "home")
    return binds


def _render_home(state: HostState, home: Path, client_pubkey: str) -> None:
    uid = state.uid
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    _write(ssh / "authorized_keys", client_pubkey, 0o600, uid)
    key = ssh / "id_ed25519_gitea"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tegwick@coulombcore", "-f", str(key)],
                   check=True)
    os.chmod(key, state.key_mode)
    config = state.ssh_config if state.ssh_config is not None else (
        "Host gitea-local\n    HostName localhost\n"
        f"    Port {state.ssh_port_in_config}\n    User git\n    IdentityFile ~/.ssh/id_ed25519_gitea\n")
    _write(ssh / "config", config, 0o600, uid)
    for relative, content in state.home_files.items():
        _write(home / relative, content, 0o600, uid)
    for repo, url in state.remotes.items():
        subprocess.run(["git", "init", "-q", str(home / repo)], check=True)
        subprocess.run(["git", "-C", str(home / repo), "remote", "add", "origin", url], check=True)
        if repo in state.pushurls:
            subprocess.run(["git", "-C", str(home / repo), "config", "remote.origin.pushurl", state.pushurls[repo]],
                           check=True)
    for path in [home, *home.rglob("*")]:
        os.lchown(path, uid, uid)
    os.chmod(home, 0o750)
    os.chmod(ssh, 0o700)
