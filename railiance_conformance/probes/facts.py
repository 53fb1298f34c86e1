"""Every remote fact the host checks read, each declared once: its command, its section, its reader.

A ``Fact`` is one framed section of the host's single fact script (``host_script.build_script``
composes the script from the facts the selected scenarios need: ``-m T02`` gathers only T02's
facts, still one SSH connection and one command per host). Each constructor below returns the
fact; its ``read_*`` companion decodes the section, returning ``None`` where the thing is absent
and raising ``FactUnavailable`` where it could not be read (permission denied, a missing
command, an unreachable host), so absent and unreadable are decided here and nowhere else.

Paths starting with ``~/`` are in the given user's home (from ``getent passwd``). Commands that
must see what the operator's own programs see (``ssh -G``, ``git remote get-url``) run as that
user (``asuser``: setpriv when logged in as root). Example: ``stat("/swapfile")`` ->
``Fact("stat /swapfile", "sec 'stat /swapfile' stat -c '%F|%U|%u|%a|%s|%b' /swapfile")``.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass

from railiance_conformance.resources import sysctl as sysctl_rules
from railiance_conformance.resources import systemd_units
from railiance_conformance.resources.host_files import FileStat, parse_stat

STAT_FORMAT = "%F|%U|%u|%a|%s|%b"  # type|owner|uid|mode|size|512-byte blocks
q = shlex.quote


@dataclass(frozen=True, slots=True)
class Fact:
    """One section of the fact script: ``section`` names it, ``command`` is one shell line.
    ``concurrent``: the command mostly waits on the network (a login, a ``git ls-remote``), so the
    script runs it alongside the others instead of after them (``host_script.build_script``)."""

    section: str
    command: str
    concurrent: bool = False


def _path(path: str, user: str | None) -> str:
    """Shell text for ``path``; ``~/x`` is ``"<the user's home>"/'x'`` (``_home``)."""
    if path.startswith("~/") or path == "~":
        if not user:
            raise ValueError(f"{path}: a ~ path needs the user whose home it is")
        home = f'"{_home(user)}"'
        return home if path == "~" else f"{home}/{q(path[2:])}"
    return q(path)


def _home(user: str) -> str:
    """Shell text (for inside double quotes) of the user's home directory: ``homeof USER`` once per script, kept
    in a variable per user (``${HM_<hash>:=$(homeof USER)}``): one ``$(...)`` fork instead of one per path."""
    return f"${{HM_{hashlib.sha1(user.encode()).hexdigest()[:16]}:=$(homeof {q(user)})}}"


def _sec(name: str, command: str, *, concurrent: bool = False) -> Fact:
    return Fact(name, f"sec {q(name)} {command}", concurrent)


# --- the login and the machine -------------------------------------------------------------------

def whoami() -> Fact:
    """The login user's name: ``$ME``, read once by the script's preamble (``id``)."""
    return _sec("whoami", "printf '%s\\n' \"$ME\"")


def systemd_running() -> list[Fact]:
    """Whether systemd is PID 1 (``systemd``: rc 0) and what PID 1 is (``pid1``)."""
    return [_sec("systemd", "test -d /run/systemd/system"), _sec("pid1", "cat /proc/1/comm")]


def pagesize() -> Fact:
    return _sec("pagesize", "getconf PAGESIZE")


# /proc/meminfo's lines the host kinds read, by one grep whichever of them a run selects (the physical memory for
# the slice's sizes, the swap totals for the swap outcome): one section, one process
MEMINFO = "meminfo"


def memtotal() -> Fact:
    """/proc/meminfo's ``MemTotal:``, ``SwapTotal:`` and ``SwapFree:`` lines (the ``meminfo`` section,
    shared with ``meminfo_swap``)."""
    return _sec(MEMINFO, "grep -E '^(MemTotal|SwapTotal|SwapFree):' /proc/meminfo")


def _meminfo_kib(text: str, field: str) -> int | None:
    """The value of ``field`` (``"MemTotal:"``) in /proc/meminfo's text, in KiB (the kernel prints kB: KiB)."""
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == [field] and len(fields) >= 2 and fields[1].isdigit():
            return int(fields[1])
    return None


def read_memtotal(facts) -> int | None:
    """Physical memory in bytes (MemTotal), or None when /proc/meminfo cannot tell."""
    section = facts.section(MEMINFO)
    kib = _meminfo_kib(section.out, "MemTotal:") if section.rc == 0 else None
    return None if kib is None else kib * 1024


# --- files --------------------------------------------------------------------------------------

def stat(path: str, user: str | None = None) -> Fact:
    name = f"stat {user}:{path}" if path.startswith("~") else f"stat {path}"
    return _sec(name, f"stat -c {q(STAT_FORMAT)} {_path(path, user)}")


def read_stat(facts, path: str, user: str | None = None) -> FileStat | None:
    """The file's stat, None when it does not exist; unreadable (EACCES, …) is FactUnavailable."""
    name = stat(path, user).section
    found = facts.section(name)
    if found.rc != 0 and "No such file" in found.out:
        return None
    return parse_stat(facts.text(name, what=path))


def pubkey_type(path: str, user: str) -> Fact:
    """The key type field of ``path``.pub (the private key itself is never read; a .pub that exists and is
    not a regular file, a FIFO, is never opened: exit ``NOT_REGULAR`` naming it)."""
    pub = _path(path + '.pub', user)
    return Fact(f"pubkey {user}:{path}", f"p={pub}; if [ -f \"$p\" ] || [ ! -e \"$p\" ]; then "
                f"sec {q(f'pubkey {user}:{path}')} cut -d' ' -f1 -- \"$p\"; "
                f"else sec {q(f'pubkey {user}:{path}')} notregular \"$p\"; fi")


def files(*paths: str) -> list[Fact]:
    """Each file's content (``file <path>`` sections; absent files have no section)."""
    return [Fact(f"file {p}", f"dump {q(p)}") for p in paths]


def directories(*paths: str) -> list[Fact]:
    """Every ``*.conf`` in each directory (``file`` sections); an unlistable one is a ``dir`` section."""
    return [Fact(f"dir {p}", f"dumpdir {q(p)}") for p in paths]


# --- kernel -------------------------------------------------------------------------------------

def proc_swaps() -> Fact:
    return _sec("proc.swaps", "cat /proc/swaps")


def sysctl_live(key: str) -> Fact:
    """The live value of a sysctl key, read from /proc/sys (``vm.swappiness`` -> /proc/sys/vm/swappiness)."""
    dotted = sysctl_rules.normalize_sysctl_key(key)
    proc = "/proc/sys/" + dotted.translate(str.maketrans("./", "/."))
    return _sec(f"sysctl {dotted}", f"cat {q(proc)}")


def sysctl_files() -> list[Fact]:
    return directories(*sysctl_rules.SYSCTL_DIRS)


# --- users and pam_limits -----------------------------------------------------------------------

def account(user: str) -> list[Fact]:
    """The passwd entry (``passwd USER``; rc 2: no such user), group names and ids."""
    return [_sec(f"passwd {user}", f"getent passwd {q(user)}"), _sec(f"groups {user}", f"id -Gn {q(user)}"),
            _sec(f"gids {user}", f"id -G {q(user)}")]


def limits_files() -> list[Fact]:
    return files("/etc/security/limits.conf") + directories("/etc/security/limits.d")


def process_limits(user: str) -> Fact:
    """/proc/<pid>/limits of this login session when it is the user's, else of the user's oldest process."""
    u = q(user)
    return Fact(f"limits {user}",
                f'if [ "$ME" = {u} ]; then sec {q("limits " + user)} cat /proc/self/limits; '
                f"else p=$(pgrep -o -u {u} 2>/dev/null); "
                f'if [ -n "$p" ]; then sec {q("limits " + user)} cat "/proc/$p/limits"; '
                f'else sec {q("limits " + user)} sh -c "echo no process of the user to inspect; exit 3"; fi; fi')


# --- systemd ------------------------------------------------------------------------------------

def unit_files(unit: str) -> list[Fact]:
    """The unit's fragments (its own name and, for a dashed slice, the prefix template) and every drop-in dir."""
    names = [unit]
    prefix, _, unit_type = unit.rpartition(".")
    if "-" in prefix:
        names.append(prefix.split("-")[0] + "-." + unit_type)
    fragments = [f"{d}/{n}" for n in names for d in systemd_units.SYSTEM_UNIT_DIRS]
    return files(*fragments) + directories(*systemd_units.dropin_dirs(unit))


def unit_show(unit: str, properties: tuple[str, ...]) -> Fact:
    """``systemctl show UNIT -p ...`` (bounded by ``$T``); not run where systemd is not PID 1 (no
    /run/systemd/system, as sd_booted(3) tells): exit 3 saying so (its controls read ``systemd`` first)."""
    props = " ".join(f"-p {q(p)}" for p in (*properties, "LoadState"))
    name = q(f"show {unit}")
    return Fact(f"show {unit}", f"if [ -d /run/systemd/system ]; then sec {name} $T systemctl show {q(unit)} {props}; "
                                f"else sec {name} denied 'systemd is not running (no /run/systemd/system)'; fi")


# --- the operator's ssh and git -----------------------------------------------------------------

def ssh_config(user: str, alias: str) -> list[Fact]:
    """``ssh -G ALIAS`` as the user (``ssh.G``; rc 5: could not run as the user), and whether ~/.ssh/config exists."""
    name = q(f"ssh.G {user} {alias}")
    # ssh opens ~/.ssh/config with fopen(3): a FIFO there blocks it (and every ssh the user starts); the
    # probe names it instead of waiting
    return [_sec(f"ssh.userconfig {user}", f'test -e "{_home(user)}/.ssh/config"'),
            Fact(f"ssh.G {user} {alias}", f'c="{_home(user)}/.ssh/config"; if [ -e "$c" ] && [ ! -f "$c" ]; then '
                                          f'sec {name} notregular "$c"; else sec {name} sshG {q(user)} {q(alias)}; fi')]


# --- outcomes (what "Done when" promises, not only configuration) ----------------------

def meminfo_swap() -> Fact:
    """The kernel's swap totals (what ``free`` reads): ``SwapTotal:  4194300 kB`` and ``SwapFree`` (the
    ``meminfo`` section, with MemTotal: ``memtotal``)."""
    return memtotal()


def read_swap_total(facts) -> int:
    """SwapTotal of /proc/meminfo in bytes; FactUnavailable when /proc/meminfo cannot tell."""
    text = facts.text(MEMINFO, what="/proc/meminfo")
    kib = _meminfo_kib(text, "SwapTotal:")
    if kib is None:
        raise ValueError(f"no SwapTotal line in /proc/meminfo: {text[:200]!r}")
    return kib * 1024


def user_processes(user: str) -> Fact:
    """Every running process whose real uid is the user's: ``pid<TAB>soft<TAB>hard<TAB>comm`` of its
    /proc/<pid>/limits "Max processes" row and its /proc/<pid>/comm (the command's name: never its
    arguments, which may hold secrets). rc 2: no such user. Processes that end while being read are left out."""
    # Two execs whatever the number of processes (not a pgrep and four forks per process): one grep of
    # every /proc/<pid>/status for the real uid ("Uid:\t<real>\t<effective>..."), one of the matching
    # processes' limits; each one's comm (the kernel's string: a short line, no NUL) read by the read builtin,
    # its first line as grep -H gave it; a process gone in between left out. $ME/$MEID: the script's preamble.
    script = ('if [ "$1" = "$2" ]; then u=$3; else u=$(id -u "$1" 2>/dev/null) || { echo "no such user: $1"; exit 2; }; fi; '
              'N="\n"; s=$(grep -l "^Uid:\t$u\t" /proc/[0-9]*/status 2>/dev/null); [ -n "$s" ] || exit 0; '
              'set -f; IFS=$N; L=; for f in $s; do L="$L$N${f%/status}/limits"; done; '
              'l=$(grep -H "^Max processes" $L 2>/dev/null); '
              'for x in $l; do p=${x#/proc/}; p=${p%%/*}; { IFS= read -r n < "/proc/$p/comm"; } 2>/dev/null || continue; '
              'IFS=" "; set -- ${x#*:Max processes}; IFS=$N; '
              'printf "%s\\t%s\\t%s\\t%s\\n" "$p" "$1" "$2" "$n"; done')
    # a function whose body is a subshell: the script's own shell forks it, no exec of sh
    return Fact(f"processes {user}", f'procs() ( {script}\n); sec {q(f"processes {user}")} procs {q(user)} "$ME" "$MEID"')


def read_user_processes(facts, user: str) -> list[tuple[int, str, str, str]] | None:
    """``[(pid, soft, hard, comm), ...]``, None when the user does not exist."""
    section = facts.section(f"processes {user}")
    if section.rc == 2:
        return None
    text = facts.text(f"processes {user}", what=f"the processes of {user}")
    rows = []
    for line in text.splitlines():
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[0].isdigit():
            rows.append((int(parts[0]), parts[1], parts[2], parts[3]))
    return rows


CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_path(unit: str) -> str:
    """Where systemd puts a slice in the unified hierarchy: ``user-1000.slice`` ->
    ``/sys/fs/cgroup/user.slice/user-1000.slice`` (each dash of a slice name is a level: systemd.slice(5))."""
    prefix, _, unit_type = unit.rpartition(".")
    if unit_type != "slice" or not prefix:
        raise ValueError(f"{unit}: only slices have a fixed place in the cgroup tree")
    parts = prefix.split("-")
    levels = ["-".join(parts[:i + 1]) + ".slice" for i in range(len(parts))]
    return "/".join([CGROUP_ROOT, *levels])


def cgroup_memory(unit: str, names: tuple[str, ...]) -> list[Fact]:
    """The cgroup filesystem's type (``cgroup2fs`` is cgroup v2) and the unit's interface files
    (``memory.max``, ``memory.swap.max``: ``file`` sections, absent ones none)."""
    return [_sec("cgroup.fs", f"stat -f -c %T {CGROUP_ROOT}"), *files(*(f"{cgroup_path(unit)}/{n}" for n in names))]


# the options that keep a login probe from changing anything or asking anything: no known_hosts
# written (StrictHostKeyChecking=yes, UpdateHostKeys=no), no control socket, no local command, no
# forwarding; batch mode: a key with a passphrase and no agent, or a password, fails instead of prompting
SSH_PROBE_OPTIONS = ("-o BatchMode=yes -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o ControlMaster=no "
                     "-o ControlPath=none -o PermitLocalCommand=no -o ClearAllForwardings=yes -o ForwardAgent=no "
                     "-o ConnectTimeout=5 -o RemoteCommand=none -o RequestTTY=no")


def ssh_login(user: str, alias: str) -> Fact:
    """``ssh -T ALIAS`` as the user in batch mode, no command: a git-shell (or Gitea) login answers and
    exits; exit 255 is ssh's own failure (refused key, unreachable, host key). Nothing runs on the server."""
    name = q(f"ssh.login {user} {alias}")
    # not run when the user's ssh config is not a regular file or ssh -G hung on it (``sshbad``): rc 20 / 21
    return Fact(f"ssh.login {user} {alias}", f"if sshbad {q(user)}; then sec {name} sshnot; else "
                f"sec {name} asuser {q(user)} $T ssh -T {SSH_PROBE_OPTIONS} {q(alias)} </dev/null; fi", concurrent=True)


# The checkout's current branch and the remote names git push/fetch choose from it, as shell text run in the
# checkout (after ``cd``) by ``sh -c``: sets ``b`` (the branch, empty on a detached HEAD), ``f`` (the fetch
# remote) and ``r`` (the push remote), and ``g`` (git that reads any owner's repository). HEAD is read with
# shell builtins where git would read the file: a ``.git`` directory that git takes for one (setup.c
# is_git_directory: ``refs/`` and ``objects/``; no reftable) whose HEAD is "ref: refs/heads/<B>"; anything
# else (a detached HEAD, a ``.git`` file, a checkout's subdirectory) asks ``git symbolic-ref``. The branch is
# the ref less ``refs/heads/``, as remote.c read_config takes it (a HEAD elsewhere: no current branch). The
# three keys come from one ``git config --get-regexp`` ("<key> <value>" lines; the last value wins, as
# ``git config KEY`` gives it); a line that is none of the asked keys (a value spanning lines) reads each key
# with ``git config KEY`` instead. The choice is remote.c's: ``pushremote_for_branch`` (branch.<B>.pushRemote,
# then remote.pushDefault, then) ``remote_for_branch`` (branch.<B>.remote, then "origin").
_GIT_BRANCH_REMOTES = (
    'g() { git -c safe.directory="*" "$@"; }; N="\n"; h=; '
    '{ [ -f .git/HEAD ] && [ -d .git/refs ] && [ -d .git/objects ] && [ ! -e .git/reftable ] && read -r h < .git/HEAD; } '
    '2>/dev/null; case $h in "ref: refs/heads/"*[![:graph:]]*) h=;; esac; '
    'case $h in "ref: refs/heads/"?*) b=${h#"ref: refs/heads/"};; *) b=$(g symbolic-ref -q HEAD); '
    'case $b in refs/heads/?*) b=${b#refs/heads/};; *) b=;; esac;; esac; f=; r=; d=; x=0; '
    'c=$(g config --get-regexp "^(branch\\..*\\.(remote|pushremote)|remote\\.pushdefault)\\$"); '
    'set -f; IFS=$N; for l in $c; do case $l in '
    '"branch.$b.remote"|"branch.$b.remote "*) [ -n "$b" ] && { f=${l#"branch.$b.remote"}; f=${f#" "}; };; '
    '"branch.$b.pushremote"|"branch.$b.pushremote "*) [ -n "$b" ] && { r=${l#"branch.$b.pushremote"}; r=${r#" "}; };; '
    '"remote.pushdefault"|"remote.pushdefault "*) d=${l#remote.pushdefault}; d=${d#" "};; '
    'branch.*.remote|"branch."*".remote "*|branch.*.pushremote|"branch."*".pushremote "*) ;; *) x=1;; esac; done; '
    'unset IFS; set +f; if [ "$x" = 1 ]; then f=; r=; d=$(g config remote.pushDefault); '
    '[ -n "$b" ] && { f=$(g config "branch.$b.remote"); r=$(g config "branch.$b.pushRemote"); }; fi; '
    '[ -n "$f" ] || f=origin; [ -n "$r" ] || r=$d; [ -n "$r" ] || r=$f; ')


def _kept(user: str, path: str) -> str:
    """The shell variable that keeps the checkout's ``push.destination`` section for its ls-remote probe."""
    return "GD_" + hashlib.sha1(f"{user}:{path}".encode()).hexdigest()[:16]


def git_push_destination(user: str, path: str) -> Fact:
    """Where ``git fetch`` and ``git push`` (no arguments) go from the checkout's current branch, read by
    git as the user: lines ``branch B`` (empty: detached HEAD), ``pull-remote R`` (the fetch remote),
    ``push-remote R``, then ``pullurl URL`` and ``pushurl URL`` lines (every push URL: pushurl,
    pushInsteadOf, insteadOf, as ``git remote get-url [--push --all]`` rewrites them; ``pull-error`` /
    ``push-error`` when the remote does not exist). rc 4: no checkout. Only reads (``git config``,
    ``symbolic-ref -q``, ``remote get-url``). The remote is chosen as git's remote.c does:
    ``pushremote_for_branch`` (branch.<B>.pushRemote, then remote.pushDefault, then)
    ``remote_for_branch`` (branch.<B>.remote, then "origin"). The section is kept in a shell variable
    (``keep``) for the checkout's ls-remote probe (``git_ls_push_remote``), which then resolves nothing again."""
    # the URL lines prefixed and the error's first line taken with builtins (pre; ${u%%"$N"*}), no sed or head
    script = ('cd "$1" 2>/dev/null || { echo "no checkout at $1"; exit 4; }; ' + _GIT_BRANCH_REMOTES +
              'printf "branch %s\\npull-remote %s\\npush-remote %s\\n" "$b" "$f" "$r"; '
              'pre() { s=$2$N; while [ -n "$s" ]; do printf "%s %s\\n" "$1" "${s%%"$N"*}"; s=${s#*"$N"}; done; }; '
              'u=$(g remote get-url "$f" 2>&1) && pre pullurl "$u" || printf "pull-error %s\\n" "${u%%"$N"*}"; '
              'u=$(g remote get-url --push --all "$r" 2>&1) && pre pushurl "$u" || printf "push-error %s\\n" "${u%%"$N"*}"')
    return _sec(f"push.destination {user}:{path}",
                f"keep {_kept(user, path)} ashell {q(user)} {q(script)} {_path(path, user)}")


def read_git_destination(facts, user: str, path: str) -> dict | None:
    """``{"branch": "main", "fetch_remote": "origin", "push_remote": "gitea", "fetch": [URL], "push": [URL, ...]}``
    (plus ``fetch_error``/``push_error`` when a remote does not exist); None when there is no checkout;
    FactUnavailable when git could not be run as the user."""
    section = facts.section(git_push_destination(user, path).section)
    if section.rc == 4:
        return None
    text = facts.text(git_push_destination(user, path).section, what=f"git's remotes in {path} as {user}")
    found: dict = {"branch": "", "fetch_remote": "origin", "push_remote": "origin", "fetch": [], "push": []}
    keys = {"branch": "branch", "pull-remote": "fetch_remote", "push-remote": "push_remote",
            "pull-error": "fetch_error", "push-error": "push_error"}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in keys:
            found[keys[key]] = value
        elif key in ("pullurl", "pushurl"):
            found["fetch" if key == "pullurl" else "push"].append(value)
    return found


def local_hostname() -> Fact:
    """This host's name as ``gethostname()`` gives it (the UTS nodename, /proc/sys/kernel/hostname): ssh's
    ``%l``/``%L``/``%C`` tokens."""
    return _sec("hostname", "cat /proc/sys/kernel/hostname")


def git_ls_push_remote(user: str, path: str) -> Fact:
    """``git ls-remote`` of every URL ``git push`` (no arguments) goes to from the checkout's current branch
    (its push remote, chosen as ``git_push_destination`` says), as the user, in batch mode: per URL a
    ``url <URL>`` line, then ``rc <exit> refs <count>`` and (on failure) the first lines git printed. No
    credential helper (nothing stored), no terminal prompt. rc 3: no such remote; rc 4: no checkout.
    When the script gathered the checkout's ``push.destination`` before (its serial part), its push URLs
    are taken from that section (kept in a shell variable) instead of resolved again."""
    # refs counted and the first three lines of a failure picked with shell builtins (no grep/head/sed)
    script = ('export GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false GIT_SSH_COMMAND="$2"; '
              'cd "$1" || exit 4; N="\n"; urls=; k=; case $N$3 in *"${N}pushurl "*) case $N$3 in *"${N}push-error "*) ;; '
              '*) k=1; set -f; IFS=$N; for l in $3; do case $l in "pushurl "*) urls="$urls${k#1}${l#pushurl }"; k=$N;; '
              'esac; done; unset IFS; set +f; k=1;; esac;; esac; '
              'if [ -z "$k" ]; then ' + _GIT_BRANCH_REMOTES +
              'urls=$(g remote get-url --push --all "$r" 2>&1) || { echo "$urls"; exit 3; }; fi; '
              'for u in $urls; do printf "url %s\\n" "$u"; '
              'o=$(git -c safe.directory="*" -c credential.helper= ls-remote "$u" 2>&1 </dev/null); r=$?; '
              'set -f; IFS=$N; n=0; k=0; d=; for l in $o; do case $l in *"\trefs/"*) n=$((n+1));; esac; '
              'case $l in *[![:blank:]]*) [ $k -lt 3 ] && { d="$d  $l$N"; k=$((k+1)); };; esac; done; unset IFS; set +f; '
              'printf "rc %s refs %s\\n" "$r" "$n"; [ "$r" = 0 ] || printf "%s" "$d"; done')
    name = q(f"lsremote {user}:{path}")
    # not run when the user's ssh config is not a regular file or ssh -G hung on it (``sshbad``): rc 20 / 21
    return Fact(f"lsremote {user}:{path}", f"if sshbad {q(user)}; then sec {name} sshnot; else "
                f'sec {name} asuser {q(user)} $T sh -c {q(script)} sh {_path(path, user)} {q("ssh " + SSH_PROBE_OPTIONS)} '
                f'"${{{_kept(user, path)}-}}"; fi',
                concurrent=True)
