"""What each testbed host looks like: the conformant host and the drifted one, as data.

A ``HostState`` lists the files that make a host (conformant or drifted) and the fake kernel
views; ``render_layer`` writes them into a per-host directory that ``nspawn`` binds into the
booted container. The drifted host drifts on every S1 control, each in a way operators
really meet (a later sysctl.d file, a limits.d override, a commented fstab line, ...).
Example: ``render_layer(DRIFTED, Path("/tmp/h2"), ...)``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

GIB = 1024 ** 3
REPOS = ("railiance-infra", "railiance-cluster", "railiance-platform", "railiance-apps")
GITEA_NODEPORT = 30022
# A unique value the tests grep for: it must never reach a report, log or test id.
REMOTE_SECRET_SENTINEL = "SENTINEL-remote-token-5f1c2d"
STALE_PROCESS_SENTINEL = "SENTINEL-agent-argument-7d3e"   # in a process's arguments: never reported


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
    # issue 13 (outcomes): the Gitea SSH front end, a process left with old limits
    git_server: bool = True                                     # a real sshd + git-shell serving bare repos
    git_server_refuses: bool = False                            # its authorized_keys lacks the operator's key
    stale_process_nproc: tuple[int, int] | None = None          # a service of the user with these (soft, hard)


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
    "host.slice.effective", "host.gitea_ssh.key", "host.gitea_ssh.config", "host.gitea_ssh.remotes",
    # the outcomes (issue 13): no swap at all; every process runs with limits.d's 4096; the key file is
    # 0644, so ssh ignores it ("UNPROTECTED PRIVATE KEY FILE") and the server at the configured port
    # refuses the login and every ls-remote
    "host.swap.total", "host.nproc.processes", "host.gitea_ssh.login", "host.gitea_ssh.ls_remote"})
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
    _write(proc / "meminfo", fake_meminfo(state))
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
