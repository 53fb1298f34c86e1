"""What each testbed host looks like: host states as data (``fixtures/hosts/*.yaml``).

A ``HostState`` lists the files that make a host and the fake kernel values it shows; the states
are YAML files, one per state, read by ``load_states`` (see fixtures/hosts/conformant.yaml for the
fields). ``render_layer`` writes a state into a per-host directory that each backend binds
(``binds``) plus the fake kernel views (``kernel_views``), in one loop per backend.
Example: ``render_layer(DRIFTED, Path("/tmp/h2"), ...)``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from railiance_testbed.merge_patch import merge_patch

GIB = 1024 ** 3
REPOS = ("railiance-infra", "railiance-cluster", "railiance-platform", "railiance-apps")
GITEA_NODEPORT = 30022
# A unique value the tests grep for: it must never reach a report, log or test id.
REMOTE_SECRET_SENTINEL = "SENTINEL-remote-token-5f1c2d"
STALE_PROCESS_SENTINEL = "SENTINEL-agent-argument-7d3e"   # in a process's arguments: never reported
FIXTURES = Path(__file__).parent / "fixtures" / "hosts"


@dataclass(frozen=True)
class HostState:
    """One host state; the YAML keys of fixtures/hosts/*.yaml are these fields' names."""

    name: str
    uid: int = 1000
    swap_bytes: int = 4 * GIB
    swap_mode: int = 0o600
    swap_active: bool = True
    fstab_swap_line: str = "/swapfile none swap sw 0 0"
    sysctl_files: dict[str, str] = field(default_factory=dict)   # path -> content (like files; kept apart for tests)
    limits_conf_extra: str = ""
    limits_d: dict[str, str] = field(default_factory=dict)
    slice_dropin: str = ""
    key_mode: int = 0o600
    ssh_port_in_config: int = GITEA_NODEPORT
    remotes: dict[str, str] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)  # any other file: in-host path -> content
    kernel: dict[str, str] = field(default_factory=dict)         # /proc or /sys path -> the value shown there
    drifts: frozenset[str] = frozenset()                         # control ids that must drift on this host
    # real-world variants: each defaults to the plain conformant layout
    pushurls: dict[str, str] = field(default_factory=dict)      # repo -> remote.origin.pushurl
    ssh_config: str | None = None                               # ~/.ssh/config text (None: the gitea-local block)
    home_files: dict[str, bytes | str] = field(default_factory=dict)  # path under ~ -> content (owned by the user)
    limits_d_mode: int | None = None                            # mode of /etc/security/limits.d (bound as a directory)
    root_login: bool = False                                    # the client key may log in as root too
    # the outcomes: the Gitea SSH front end, a process left with old limits
    git_server: bool = True                                     # a real sshd + git-shell serving bare repos
    git_server_refuses: bool = False                            # its authorized_keys lacks the operator's key
    stale_process_nproc: tuple[int, int] | None = None          # a service of the user with these (soft, hard)


class FixtureError(ValueError):
    """A host state file that does not describe a host: names the file and the key."""


def _document(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The state file's mapping with its ``base`` chain applied (each file a merge patch over its base)."""
    if path in seen:
        raise FixtureError(f"{path}: base: the bases form a cycle ({' -> '.join(p.stem for p in (*seen, path))})")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FixtureError(f"{path}: {exc}") from None
    if not isinstance(doc, dict):
        raise FixtureError(f"{path}: a host state is a mapping of HostState fields")
    base = doc.pop("base", None)
    return merge_patch(_document(path.with_name(f"{base}.yaml"), (*seen, path)), doc) if base else doc


_SIZE = re.compile(r"^\s*(\d+)\s*(GiB|MiB|KiB|B)?\s*$")


def _value(path: Path, name: str, value: Any) -> Any:
    if name in ("swap_mode", "key_mode", "limits_d_mode") and isinstance(value, str):
        return int(value, 8)
    if name == "swap_bytes" and isinstance(value, str):
        m = _SIZE.match(value)
        if not m:
            raise FixtureError(f"{path}: {name}: {value!r} is not a size (bytes, or N GiB/MiB/KiB)")
        return int(m[1]) * {"GiB": GIB, "MiB": 1024 ** 2, "KiB": 1024, "B": 1, None: 1}[m[2]]
    if name == "kernel":
        return {str(k): str(v) for k, v in (value or {}).items()}
    if name == "drifts":
        return frozenset(value or ())
    if name == "stale_process_nproc" and value is not None:
        return tuple(value)
    return value


def load_state(path: Path) -> HostState:
    """One host state file (``fixtures/hosts/NAME.yaml``); its name is the file's stem.
    FixtureError names the file and the key for a key that is not a HostState field, a kernel path
    outside /proc and /sys, or a file path that is not absolute."""
    doc = _document(path)
    known = {f.name for f in fields(HostState)} - {"name"}
    for key in doc:
        if key not in known:
            raise FixtureError(f"{path}: {key}: not a host state field (known: {', '.join(sorted(known))})")
    for where in doc.get("kernel") or {}:
        if not str(where).startswith(("/proc/", "/sys/")):
            raise FixtureError(f"{path}: kernel: {where!r} is not a path under /proc or /sys")
    for where in doc.get("files") or {}:
        if not str(where).startswith("/"):
            raise FixtureError(f"{path}: files: {where!r} is not an absolute in-host path")
    return HostState(path.stem, **{key: _value(path, key, value) for key, value in doc.items()})


def load_states(directory: Path = FIXTURES) -> dict[str, HostState]:
    """Every host state file of ``directory`` by name."""
    return {path.stem: load_state(path) for path in sorted(directory.glob("*.yaml"))}


STATES = load_states()
CONFORMANT = STATES["conformant"]
DRIFTED = STATES["drifted"]
if REMOTE_SECRET_SENTINEL not in DRIFTED.remotes.get("railiance-apps", ""):  # the tests grep reports for it
    raise FixtureError(f"{FIXTURES / 'drifted.yaml'}: remotes: railiance-apps must carry {REMOTE_SECRET_SENTINEL}")

# control ids the drifted host must drift on (every S1 host control): fixtures/hosts/drifted.yaml's drifts
DRIFTED_CONTROLS = DRIFTED.drifts
# controls that read the kernel's cgroup v2 files: an error on a machine whose containers get no cgroup v2
# memory controller (see cgroup2_memory()), drift or pass where they do
CGROUP2_CONTROLS = frozenset({"host.slice.enforced"})

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
        if state.git_server:  # Gitea's SSH user: git-shell only
            lines += [{"passwd": f"{GIT_USER}:x:{GIT_UID}:{GIT_UID}:Gitea SSH:/srv/git:/usr/bin/git-shell",
                       "group": f"{GIT_USER}:x:{GIT_UID}:", "shadow": f"{GIT_USER}:*:19800:0:99999:7:::"}[name]]
        out[f"/etc/{name}"] = "\n".join(lines) + "\n"
    return out


def render_layer(state: HostState, layer: Path, *, rootfs: Path, client_pubkey: str,
                 address: str | None = None) -> dict[str, str]:
    """Write the host's files under ``layer``; return {container path: layer path} to bind.

    With ``address`` (the nspawn host's own loopback address) the host also gets its Gitea SSH front
    end (``state.git_server``, see ``_render_git_server``) and the stale process (``state.stale_process_nproc``).
    """
    binds: dict[str, str] = {}
    etc = layer / "etc-files"
    limits_extra = state.limits_conf_extra
    files = {
        "/etc/fstab": FSTAB_BASE + state.fstab_swap_line + "\n",
        "/etc/security/limits.conf": (b"# /etc/security/limits.conf\n" + limits_extra) if isinstance(limits_extra, bytes)
        else "# /etc/security/limits.conf\n" + limits_extra,
        "/etc/systemd/system/user-1000.slice.d/50-resource-limits.conf": state.slice_dropin,
        **state.files, **state.sysctl_files, **state.limits_d, **_user_db(rootfs, state),
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
    # fake kernel views: layer/kernel/<in-host path>, bound over the path by each backend (kernel_views)
    for inside, text in kernel_files(state).items():
        _write(layer / "kernel" / inside.lstrip("/"), text)
    _render_home(state, layer / "home", client_pubkey)
    binds["/home/tegwick"] = str(layer / "home")
    if address is not None:
        # the machine's loopback is shared by every container: a host's "localhost" (where Gitea's SSH
        # NodePort answers on a node) is its own loopback address here
        _write(layer / "hosts", f"{address} localhost\n")
        binds["/etc/hosts"] = str(layer / "hosts")
        if state.git_server:
            binds.update(_render_git_server(state, layer / "git-server", address))
    if address is not None and state.stale_process_nproc is not None:
        binds.update(_render_stale_process(state, layer / "stale-process"))
    return binds


def kernel_files(state: HostState) -> dict[str, str]:
    """The fake kernel views of a host on nspawn and namespace hosts, by in-host path: ``/proc/swaps``
    and ``/proc/meminfo`` from the state's swap, then every ``state.kernel`` value (a line each)."""
    swaps = PROC_SWAPS_HEADER
    if state.swap_active:
        swaps += f"/swapfile{' ' * 31}file\t\t{state.swap_bytes // 1024 - 4}\t\t0\t\t-2\n"
    return {"/proc/swaps": swaps, "/proc/meminfo": fake_meminfo(state),
            **{inside: f"{value}\n" for inside, value in state.kernel.items()}}


def kernel_views(state: HostState) -> list[str]:
    """The in-host paths a backend binds from ``<layer>/kernel/<path>`` over the host's own: /proc ones
    first, then /sys (a backend mounts /proc and /sys before binding over them)."""
    return sorted(kernel_files(state), key=lambda p: (not p.startswith("/proc/"), p))


def live_sysctls(state: HostState) -> dict[str, str]:
    """The state's kernel values under /proc/sys as sysctl keys (a VM writes these at boot):
    ``{"/proc/sys/vm/swappiness": "10"}`` -> ``{"vm.swappiness": "10"}``."""
    return {inside.removeprefix("/proc/sys/").replace("/", "."): value
            for inside, value in state.kernel.items() if inside.startswith("/proc/sys/")}


def fake_meminfo(state: HostState, source: Path = Path("/proc/meminfo")) -> str:
    """This machine's /proc/meminfo with SwapTotal/SwapFree as the host's kernel would show them: the
    active swap file's size minus its header page (what /proc/swaps lists too), 0 when none is active."""
    swap_kib = state.swap_bytes // 1024 - 4 if state.swap_active else 0
    lines = []
    for line in source.read_text().splitlines():
        if line.startswith(("SwapTotal:", "SwapFree:")):
            line = f"{line.split(':')[0]}:{swap_kib:>16} kB"
        lines.append(line)
    return "\n".join(lines) + "\n"


GIT_USER, GIT_UID = "git", 1990
GITEA_SSHD_UNIT = """[Unit]
Description=Gitea's SSH front end (testbed: OpenSSH with git-shell serving bare repositories)
After=network.target

[Service]
Type=notify
ExecStartPre=/bin/mkdir -p /run/sshd
ExecStart=/usr/sbin/sshd -D -f /etc/gitea-ssh/sshd_config
Restart=always
RestartSec=200ms
"""


def _render_git_server(state: HostState, layer: Path, address: str) -> dict[str, str]:
    """A second sshd on the host's address, on the port the operator's ssh config names (GITEA_NODEPORT;
    the drifted host's 30023 is an old NodePort that still answers), as Gitea's SSH front end: user ``git``
    with git-shell as its shell, one bare repository per checkout (``/coulomb/<repo>.git``, with a
    commit), the operator's Gitea public key in its authorized_keys (another key when
    ``state.git_server_refuses``). The operator's known_hosts knows the server's host key."""
    binds: dict[str, str] = {}
    layer.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(layer / "host_key")], check=True)
    os.chmod(layer / "host_key", 0o600)
    config = (f"ListenAddress {address}:{state.ssh_port_in_config}\nHostKey /etc/gitea-ssh/host_key\n"
              "PidFile /run/gitea-sshd.pid\nAuthorizedKeysFile /etc/gitea-ssh/authorized_keys\n"
              f"AllowUsers {GIT_USER}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
              "UsePAM no\nLogLevel VERBOSE\n")
    _write(layer / "sshd_config", config)
    if state.git_server_refuses:
        other = layer / "someone_else"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
        authorized = other.with_suffix(".pub").read_text()
    else:
        authorized = (layer.parent / "home" / ".ssh" / "id_ed25519_gitea.pub").read_text()
    _write(layer / "authorized_keys", authorized, 0o644)
    _write(layer / "gitea-sshd.service", GITEA_SSHD_UNIT)
    _write(layer / "wants.conf", "[Unit]\nWants=gitea-sshd.service\n")
    repos = layer / "coulomb"
    for repo in REPOS:
        bare = repos / f"{repo}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        work = layer / "work" / repo
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(layer), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_AUTHOR_NAME": "tb", "GIT_AUTHOR_EMAIL": "tb@invalid", "GIT_COMMITTER_NAME": "tb",
               "GIT_COMMITTER_EMAIL": "tb@invalid"}
        for argv in (["git", "init", "-q", "-b", "main", str(work)],
                     ["git", "-C", str(work), "commit", "-q", "--allow-empty", "-m", f"{repo}: first commit"],
                     ["git", "-C", str(work), "push", "-q", str(bare), "main"]):
            subprocess.run(argv, check=True, env=env, capture_output=True)
    shutil.rmtree(layer / "work")
    home = layer / "home-git"  # git-shell starts in its home; scp-like remotes (git@gitea-local:coulomb/x.git) resolve there
    home.mkdir()
    (home / "coulomb").symlink_to("/coulomb")
    _write(home / ".gitconfig", "[safe]\n\tdirectory = *\n", 0o644, GIT_UID)  # a copy may be root-owned (the VM's)
    os.lchown(home / "coulomb", GIT_UID, GIT_UID)
    os.chown(home, GIT_UID, GIT_UID)
    for path in [repos, *repos.rglob("*")]:
        os.lchown(path, GIT_UID, GIT_UID)
    public = (layer / "host_key.pub").read_text().split()[:2]
    known = layer.parent / "home" / ".ssh" / "known_hosts"
    _write(known, f"[localhost]:{state.ssh_port_in_config} {' '.join(public)}\n", 0o644, state.uid)
    binds.update({"/etc/gitea-ssh/sshd_config": str(layer / "sshd_config"),
                  "/etc/gitea-ssh/host_key": str(layer / "host_key"),
                  "/etc/gitea-ssh/authorized_keys": str(layer / "authorized_keys"),
                  "/etc/systemd/system/gitea-sshd.service": str(layer / "gitea-sshd.service"),
                  "/etc/systemd/system/multi-user.target.d/gitea-sshd.conf": str(layer / "wants.conf"),
                  "/coulomb": str(repos), "/srv/git": str(home)})
    return binds


def _render_stale_process(state: HostState, layer: Path) -> dict[str, str]:
    """A service of the operator user started with other nproc limits than pam_limits gives a login
    (INC-002: an agent started before the converge keeps its old limits): ``sh`` looping over ``sleep``,
    with a token in its arguments that must never reach a report (only the command name may)."""
    soft, hard = state.stale_process_nproc
    unit = (f"[Unit]\nDescription=an agent of the operator left running with old limits\n\n[Service]\n"
            f"User=tegwick\nLimitNPROC={soft}:{hard}\n"
            f"ExecStart=/bin/sh -c 'while :; do sleep 3600; done' agent --token={STALE_PROCESS_SENTINEL}\n")
    _write(layer / "stale-agent.service", unit)
    _write(layer / "wants.conf", "[Unit]\nWants=stale-agent.service\n")
    return {"/etc/systemd/system/stale-agent.service": str(layer / "stale-agent.service"),
            "/etc/systemd/system/multi-user.target.d/stale-agent.conf": str(layer / "wants.conf")}


def cgroup2_memory() -> bool:
    """Whether this machine's containers get cgroup v2 with the memory controller (a unified
    /sys/fs/cgroup offering ``memory``): where not, ``CGROUP2_CONTROLS`` are errors on nspawn hosts."""
    try:
        return "memory" in Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    except OSError:
        return False


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
