"""The one remote command that gathers every host fact the S1 controls need.

All facts of a host come from a single ``sh -c`` over a single SSH connection; each
section is framed by a random boundary so file contents can hold anything. Every policy
value that reaches the script is quoted with ``shlex.quote``. The script only reads:
``stat``, ``cat``, ``getent``, ``id``, ``systemctl show``, ``ssh -G`` and ``git remote get-url``
(the last two as the operator user: ``setpriv`` when logged in as root)
(it never reads a private key: only ``stat`` of it and the type field of its ``.pub``).
Example: ``build_script(plan, boundary="b0")`` -> shell text; ``parse_output(text, "b0")`` -> sections.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

STAT_FORMAT = "%F|%U|%u|%a|%s|%b"  # type|owner|uid|mode|size|512-byte blocks


@dataclass(frozen=True, slots=True)
class ScriptPlan:
    """What to gather, derived from a host's desired state (plain values)."""

    user: str
    expected_uid: int
    swap_file: str
    file_globs: Sequence[str]          # directories whose *.conf files are dumped
    files: Sequence[str]               # single files dumped if present
    slice_unit: str
    ssh_alias: str
    identity_file: str                 # may start with ~/ (the user's home)
    repo_paths: Sequence[str]          # may start with ~/


@dataclass(frozen=True, slots=True)
class Section:
    rc: int
    out: str


def _home_path(path: str) -> str:
    """``~/x`` -> ``"$home"/'x'`` (the user's home from getent); other paths quoted."""
    if path == "~":
        return '"$home"'
    if path.startswith("~/"):
        return '"$home"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def build_script(plan: ScriptPlan, boundary: str) -> str:
    q = shlex.quote
    b = q(boundary)
    lines = [
        "LC_ALL=C; export LC_ALL",
        f"B={b}",
        # sec NAME CMD...: run CMD, frame its stdout+stderr, record its exit status
        'sec() { n=$1; shift; printf "%s %s\\n" "$B" "$n"; "$@" 2>&1; r=$?; printf "\\n%s/rc %s\\n" "$B" "$r"; }',
        # dump FILE...: each existing file's content; a file whose existence cannot even be told
        # (a directory on its path is not searchable) is a section of its own, never "absent"
        'dump() { for f in "$@"; do if [ -e "$f" ] || [ -L "$f" ]; then sec "file $f" cat -- "$f"; else '
        'e=$(stat -c %F -- "$f" 2>&1); case $e in *"ermission denied"*) sec "file $f" denied "$e";; esac; fi; done; }',
        # dumpdir DIR: every *.conf in DIR (as glob(3) lists them: no hidden files); a directory the
        # login user cannot list is a "dir" section with exit 13, never an empty directory
        'dumpdir() { d=$1; if [ -d "$d" ]; then if [ -r "$d" ] && [ -x "$d" ]; then dump "$d"/*.conf; else '
        'sec "dir $d" denied "cannot list $d as $(id -un): permission denied ($(stat -c \'%A %U:%G\' -- "$d"))"; fi; '
        'else e=$(stat -c %F -- "$d" 2>&1); case $e in *"ermission denied"*) sec "dir $d" denied "$e";; esac; fi; }',
        'denied() { echo "$1"; return 13; }',
        'T=; command -v timeout >/dev/null 2>&1 && T="timeout 15"',
        "sec whoami id -un",
        "sec systemd test -d /run/systemd/system",
        "sec pid1 cat /proc/1/comm",
        "sec pagesize getconf PAGESIZE",
        "sec memtotal grep MemTotal /proc/meminfo",
        f"sec swapfile.stat stat -c {q(STAT_FORMAT)} {q(plan.swap_file)}",
        "sec proc.swaps cat /proc/swaps",
        "sec swappiness cat /proc/sys/vm/swappiness",
        f"sec passwd getent passwd {q(plan.user)}",
        f"sec groups id -Gn {q(plan.user)}",
        f"sec gids id -G {q(plan.user)}",
        f"home=$(getent passwd {q(plan.user)} | cut -d: -f6)",
        # effective limits: this session's own when we are the user, else the user's oldest process
        f'if [ "$(id -un)" = {q(plan.user)} ]; then sec limits cat /proc/self/limits; '
        f"else p=$(pgrep -o -u {q(plan.user)} 2>/dev/null); "
        f'if [ -n "$p" ]; then sec limits cat "/proc/$p/limits"; '
        f'else sec limits sh -c "echo no process of the user to inspect; exit 3"; fi; fi',
        f"sec slice.show $T systemctl show {q(plan.slice_unit)} -p MemoryMax -p MemorySwapMax -p LoadState",
        # asuser CMD...: run CMD as the operator's own processes run it: their uid, groups and HOME, so
        # ssh reads their ~/.ssh/config (relative Includes resolve in *their* ~/.ssh) and git their
        # ~/.gitconfig (insteadOf/pushInsteadOf). Logged in as root: setpriv (util-linux; no PAM
        # session, nothing written). Logged in as anyone else: exit 5 with the reason.
        f'me=$(id -un); U={q(plan.user)}',
        'asuser() { if [ "$me" = "$U" ]; then HOME="$home" "$@"; elif [ "$(id -u)" = 0 ]; then '
        'HOME="$home" USER="$U" LOGNAME="$U" setpriv --reuid="$U" --regid="$(id -g "$U")" --init-groups -- "$@"; '
        'else echo "cannot resolve as $U: logged in as $me, who is neither $U nor root"; return 5; fi; }',
        'sec ssh.userconfig stat -c %F -- "$home/.ssh/config"',
        f"sec ssh.G asuser ssh -G {q(plan.ssh_alias)}",
        f"sec key.stat stat -c {q(STAT_FORMAT)} {_home_path(plan.identity_file)}",
        f"sec key.type cut -d' ' -f1 {_home_path(plan.identity_file + '.pub')}",
    ]
    for index, path in enumerate(plan.repo_paths):
        git = f"asuser git -c safe.directory='*' -C {_home_path(path)} remote get-url"
        lines.append(f"sec repo.{index} {git} origin")
        # where pushes go: every push URL (remote.origin.pushurl, else the url) after pushInsteadOf
        lines.append(f"sec repo.{index}.push {git} --push --all origin")
    lines.append("dump " + " ".join(q(f) for f in plan.files))
    for directory in plan.file_globs:
        lines.append(f"dumpdir {q(directory)}")
    return "\n".join(lines) + "\nexit 0\n"


def parse_output(text: str, boundary: str) -> dict[str, Section]:
    """Split the framed output into ``{section name: Section(rc, output)}``."""
    sections: dict[str, Section] = {}
    name: str | None = None
    body: list[str] = []
    for line in text.split("\n"):
        if name is None:
            if line.startswith(boundary + " "):
                name, body = line[len(boundary) + 1:], []
            continue
        if line.startswith(boundary + "/rc "):
            content = "\n".join(body)
            sections[name] = Section(int(line.rsplit(" ", 1)[1]), content[:-1] if content.endswith("\n") else content)
            name = None
            continue
        body.append(line)
    return sections


def render_files(sections: Mapping[str, Section], prefix: str = "") -> dict[str, Section]:
    """The dumped files (``file <path>`` sections) whose path starts with ``prefix``."""
    return {name[5:]: s for name, s in sections.items() if name.startswith("file " + prefix)}
