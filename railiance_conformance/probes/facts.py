"""Every remote fact the host checks read, each declared once: its command, its section, its reader.

A ``Fact`` is one framed section of the host's single fact script (``host_script.build_script``
composes the script from the facts the selected scenarios need: ``-m T02`` gathers only T02's
facts, still one SSH connection and one command per host). Each constructor below returns the
fact; its ``read_*`` companion decodes the section, returning ``None`` where the thing is absent
and raising ``FactUnavailable`` where it could not be read (permission denied, a missing
command, an unreachable host), so absent and unreadable are decided here and nowhere else.

Paths starting with ``~/`` are in the given user's home (from ``getent passwd``). Commands that
must see what the operator's own programs see (``ssh -G``, ``git config``) run as that
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


# The checkout's current branch, the remotes git fetch and git push choose from it, and their URLs, as shell text
# run in the checkout (after ``cd``) by ``sh -c``, with one git process: ``git config --show-scope --get-regexp``
# of every key git's remote.c reads for them (git 2.39.5 remote.c read_config/handle_config/alias_all_urls),
# resolved with shell builtins. Sets ``b`` (the branch, empty on a detached HEAD), ``f`` (the fetch remote), ``r``
# (the push remote), ``g`` (git that reads any owner's repository) and ``gu REMOTE [--push --all]``, which leaves
# in ``u`` what ``git remote get-url [--push --all] REMOTE 2>&1`` prints (as ``$(...)`` gives it) and returns its
# exit status.
# HEAD is read where git would read the file: a ``.git`` directory (setup.c is_git_directory: ``refs/`` and
# ``objects/``; no reftable, no commondir) whose HEAD is "ref: refs/heads/<B>" with B a plain refname that is not
# itself a symbolic ref (refs/files-backend.c follows those), or 40 hex digits (detached); anything else asks
# ``git symbolic-ref``. The branch is the ref less ``refs/heads/`` (remote.c read_config).
# The choice is remote.c's pushremote_for_branch (branch.<B>.pushRemote, then remote.pushDefault, then)
# remote_for_branch (branch.<B>.remote, then the only remote when exactly one is configured, then "origin"); the
# last value wins, an empty value is a name (git_config_string). The URLs are alias_all_urls' and get_url's
# (builtin/remote.c): pushurls rewritten by insteadOf; with none, each url rewritten by pushInsteadOf where one
# matches; urls rewritten by insteadOf; a remote with no url is its own name (remotes_remote_get_1); the longest
# matching prefix wins, a tie goes to the base configured first, then to its earlier value (alias_url); a remote
# no key of the repository's own config (local, worktree scope) names is "error: No such remote 'R'" (exit 2).
# What this does not cover asks git (``X``: ``git remote get-url``), so the text is always git's: a key without
# a value, a remote named "/...", vcs, receivepack, uploadpack, transfer.credentialsInUrl, a refspec or boolean
# of another shape than the common ones (git would warn or die), a remote with no url that .git/remotes or
# .git/branches might name; and what cannot be parsed (``Z``: also the choice asked key by key, the remote count
# from ``--name-only``): a value spanning lines, a line of another shape (a subsection with a space), no
# repository's own config, GIT_DIR/GIT_COMMON_DIR/GIT_CONFIG set, a git without --show-scope (before 2.26).
# Where git's own output is ambiguous the resolver reads it as git prints it: a subsection holding
# ".<variable> " (a space after a variable's name) as the shorter key, and a value whose next line reproduces
# a whole output line (a scope, a tab, an asked key) as that key. Git before 2.37 took "origin" where the only
# remote is taken here (remote.c 8a649be7e8 "push: default to single remote even when not named origin").
_GIT_CONFIG_KEYS = ("^(core\\.repositoryformatversion|transfer\\.credentialsinurl|remote\\..*|"
                    "branch\\..*\\.(remote|pushremote|merge)|branch\\.\\.[^.]*|"
                    "url\\..*\\.(insteadof|pushinsteadof)|rcf\\.end)$")
_GIT_BRANCH_REMOTES = (
    'g() { git -c safe.directory="*" "$@"; }; N="\n"; H="\t"; b=; f=; r=; p=; d=; fs=; ps=; ds=; G=; X=; Z=; L=; '
    'h=; k=; c=; RN=$N; RC=0; SI=$N; SP=$N; [ -z "${GIT_DIR+x}${GIT_COMMON_DIR+x}${GIT_CONFIG+x}" ] || Z=1; '
    # HEAD (G: .git is the git directory)
    '{ [ -z "$Z" ] && [ -f .git/HEAD ] && [ ! -L .git/HEAD ] && [ -d .git/refs ] && [ -d .git/objects ] && '
    '[ ! -e .git/reftable ] && [ ! -e .git/commondir ] && { IFS= read -r h < .git/HEAD || [ -n "$h" ]; }; } '
    '2>/dev/null; case $h in "ref: refs/"*) G=1;; *) [ ${#h} = 40 ] && case $h in *[!0-9a-f]*) ;; *) G=1; k=1;; esac;; '
    'esac; case $h in "ref: refs/heads/"?*) b=${h#"ref: refs/heads/"}; k=1; '
    'case $b in *[!A-Za-z0-9._/-]*|.*|*/.*|*..*|*//*|*/|*.|*.lock|*.lock/*) k=;; esac; z=.git/refs/heads/$b; '
    'if [ -L "$z" ]; then k=; elif [ -e "$z" ]; then { [ -f "$z" ] && IFS= read -r z < "$z"; } 2>/dev/null && '
    'case $z in ref:*) false;; esac || k=; fi;; esac; '
    '[ -n "$k" ] || { b=$(g symbolic-ref -q HEAD); case $b in refs/heads/?*) b=${b#refs/heads/};; *) b=;; esac; }; '
    # the one git process; its last line is the command line's rcf.end: trailing newlines of a value stay inside
    '[ -n "$Z" ] || { c=$(g -c rcf.end=. config --show-scope --get-regexp ' + q(_GIT_CONFIG_KEYS) + ' 2>/dev/null) && '
    'case $c in *"$N$N"*) Z=1;; "command${H}rcf.end .") c=;; '
    '*"${N}command${H}rcf.end .") c=${c%"command${H}rcf.end ."};; *) Z=1;; esac || Z=1; }; '
    # rn NAME: one more remote (remote.c make_remote), counted once
    'rn() { case $RN in *"$N$1$N"*) ;; *) RN=$RN$1$N; RC=$((RC+1));; esac; }; '
    # rs KIND REFSPEC: a fetch/push refspec of the common shapes (refspec.c parse_refspec accepts them)
    'rt() { t=$1; gl=0; case $t in */\\*) t=${t%/\\*}; gl=1;; esac; '
    'case $t in ""|/*|*/|*//*|*[!A-Za-z0-9_/-]*) return 1;; esac; }; '
    'rs() { s=${2#+}; case $1$s in push:) return 0;; '
    '*:*) rt "${s%:*}" && e=$gl && rt "${s##*:}" && [ "$e" = "$gl" ];; *) rt "$s" && [ "$gl" = 0 ];; esac; }; '
    # bo VALUE: a boolean git_config_bool reads without dying
    'bo() { case $1 in ""|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff]) ;; '
    '*[!0-9]*) return 1;; *) [ ${#1} -lt 10 ];; esac; }; '
    'set -f; IFS=$N; for l in $c; do '
    'case $l in system"$H"*|global"$H"*|local"$H"*|worktree"$H"*|command"$H"*) ;; *) Z=1; break;; esac; '
    's=${l%%"$H"*}; k=${l#*"$H"}; v=; n=; case $k in *" "*) v=${k#* }; k=${k%% *}; n=1;; esac; '
    'case $k in core.repositoryformatversion) case $s in local|worktree) L=1;; esac;; '
    'rcf.end) ;; branch..*) X=1;; remote.pushdefault) d=$v; ds=1; [ -n "$n" ] || X=1;; '
    'remote./*|transfer.credentialsinurl) X=1;; remote..*) X=1; rn "${k#remote.}";; '
    'remote.?*.[a-z]*) m=${k#remote.}; rn "${m%.*}"; '
    'case ${k##*.} in *[!a-z0-9-]*) Z=1; break;; url|pushurl|proxy|proxyauthmethod|tagopt) [ -n "$n" ] || X=1;; '
    'fetch|push) [ -n "$n" ] && rs "${k##*.}" "$v" || X=1;; '
    'mirror|skipdefaultupdate|skipfetchall|prune|prunetags) [ -z "$n" ] || bo "$v" || X=1;; '
    'vcs|receivepack|uploadpack) X=1;; esac;; '
    'branch.?*.remote|branch.?*.pushremote|branch.?*.merge) [ -n "$n" ] || X=1; '
    'if [ "$k" = "branch.$b.remote" ]; then f=$v; fs=1; elif [ "$k" = "branch.$b.pushremote" ]; then p=$v; ps=1; fi;; '
    'url.*.insteadof) [ -n "$n" ] || X=1; m=${k#url.}; m=${m%.insteadof}; '
    'case $SI in *"$N$m$N"*) ;; *) SI=$SI$m$N;; esac;; '
    'url.*.pushinsteadof) [ -n "$n" ] || X=1; m=${k#url.}; m=${m%.pushinsteadof}; '
    'case $SP in *"$N$m$N"*) ;; *) SP=$SP$m$N;; esac;; *) Z=1; break;; esac; done; [ -n "$L" ] || Z=1; '
    # Z: the choice key by key, as before, and the remotes counted from their keys' names
    'if [ -n "$Z" ]; then X=1; fs=; ps=; ds=; RN=$N; RC=0; d=$(g config remote.pushDefault) && ds=1; '
    '[ -z "$b" ] || { f=$(g config "branch.$b.remote") && fs=1; p=$(g config "branch.$b.pushRemote") && ps=1; }; '
    'for k in $(g config --name-only --get-regexp "^remote\\\\."); do case $k in remote./*) ;; '
    'remote..*) rn "${k#remote.}";; remote.?*.?*) m=${k#remote.}; rn "${m%.*}";; esac; done; fi; '
    'unset IFS; set +f; '
    '[ -n "$fs" ] || { f=origin; [ "$RC" = 1 ] && { f=${RN#"$N"}; f=${f%"$N"}; }; }; '
    'if [ -n "$ps" ]; then r=$p; elif [ -n "$ds" ]; then r=$d; else r=$f; fi; '
    # al URL BASES VARIABLE: alias_url; A the URL, A0 set when a rule matched
    'al() { A=$1; A0=; bl=-1; bp=0; for ae in $c; do ae=${ae#*"$H"}; case $ae in *" "*) ;; *) continue;; esac; '
    'av=${ae#* }; am=${ae%% *}; case $am in url.*."$3") ;; *) continue;; esac; '
    'case $1 in "$av"*) ;; *) continue;; esac; am=${am#url.}; am=${am%."$3"}; ae=${2%%"$N$am$N"*}; '
    'if [ ${#av} -gt $bl ] || { [ ${#av} = $bl ] && [ ${#ae} -lt $bp ]; }; '
    'then bl=${#av}; bp=${#ae}; A=$am${1#"$av"}; A0=1; fi; done; }; '
    # rem REMOTE: U (get-url), P (get-url --push --all), S (their exit); sets X where git must answer
    'rem() { R=$1; UU=; PU=; PA=; np=; ci=; nu=; set -f; IFS=$N; for l in $c; do k=${l#*"$H"}; v=; '
    'case $k in *" "*) v=${k#* }; k=${k%% *};; esac; [ -n "$R" ] && [ "${k%.*}" = "remote.$R" ] || continue; '
    'case ${l%%"$H"*} in local|worktree) ci=1;; esac; case ${k##*.} in '
    'url) nu=1; al "$v" "$SP" pushinsteadof; [ -z "$A0" ] || PA=$PA$A$N; al "$v" "$SI" insteadof; UU=$UU$A$N;; '
    'pushurl) np=1; al "$v" "$SI" insteadof; PU=$PU$A$N;; esac; done; '
    'if [ -z "$nu" ]; then case $R in ""|.|..|*/*) ;; *) [ -n "$G" ] || X=1; for t in remotes branches; do '
    'if [ -d ".git/$t" ]; then { [ -x ".git/$t" ] && [ ! -e ".git/$t/$R" ] && [ ! -L ".git/$t/$R" ]; } || X=1; '
    'elif [ -L ".git/$t" ]; then X=1; fi; done;; esac; al "$R" "$SI" insteadof; UU=$A$N; '
    'al "$R" "$SP" pushinsteadof; [ -z "$A0" ] || { PU=$PU$A$N; np=1; }; fi; unset IFS; set +f; '
    'if [ -z "$ci" ]; then S=2; U="error: No such remote \'$R\'"; P=$U; else S=0; U=${UU%%"$N"*}; '
    'if [ -n "$np" ]; then P=$PU; elif [ -n "$PA" ]; then P=$PA; else P=$UU; fi; '
    'while case $P in *"$N") ;; *) false;; esac; do P=${P%"$N"}; done; fi; }; '
    'gu() { [ -n "$X" ] || rem "$1"; if [ -n "$X" ]; then u=$(g remote get-url ${2:-} "$1" 2>&1); return; fi; '
    'if [ -n "${2:-}" ]; then u=$P; else u=$U; fi; return $S; }; ')


def _kept(user: str, path: str) -> str:
    """The shell variable that keeps the checkout's ``push.destination`` section for its ls-remote probe."""
    return "GD_" + hashlib.sha1(f"{user}:{path}".encode()).hexdigest()[:16]


def git_push_destination(user: str, path: str) -> Fact:
    """Where ``git fetch`` and ``git push`` (no arguments) go from the checkout's current branch, as git reads
    it as the user: lines ``branch B`` (empty: detached HEAD), ``pull-remote R`` (the fetch remote),
    ``push-remote R``, then ``pullurl URL`` and ``pushurl URL`` lines (every push URL: pushurl,
    pushInsteadOf, insteadOf), exactly what ``git remote get-url R`` and ``git remote get-url --push --all R``
    print (``pull-error`` / ``push-error`` and git's first line when they fail: "error: No such remote 'R'").
    rc 4: no checkout. One git process (``git config --show-scope --get-regexp``), resolved with shell builtins
    as git's remote.c does (``_GIT_BRANCH_REMOTES``; ``git symbolic-ref -q`` and ``git remote get-url`` only
    for what the resolver leaves to git). The remote is chosen as remote.c does: ``pushremote_for_branch``
    (branch.<B>.pushRemote, then remote.pushDefault, then) ``remote_for_branch`` (branch.<B>.remote, then the
    only remote when exactly one is configured, then "origin"). The section is kept in a shell variable
    (``keep``) for the checkout's ls-remote probe (``git_ls_push_remote``), which then resolves nothing again.
    Proved against git on generated configs: tests/differential/test_git_push_differential.py."""
    # the URL lines prefixed and the error's first line taken with builtins (pre; ${u%%"$N"*}), no sed or head
    script = ('cd "$1" 2>/dev/null || { echo "no checkout at $1"; exit 4; }; ' + _GIT_BRANCH_REMOTES +
              'printf "branch %s\\npull-remote %s\\npush-remote %s\\n" "$b" "$f" "$r"; '
              'pre() { s=$2$N; while [ -n "$s" ]; do printf "%s %s\\n" "$1" "${s%%"$N"*}"; s=${s#*"$N"}; done; }; '
              'gu "$f" && pre pullurl "$u" || printf "pull-error %s\\n" "${u%%"$N"*}"; '
              'gu "$r" "--push --all" && pre pushurl "$u" || printf "push-error %s\\n" "${u%%"$N"*}"')
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
    are taken from that section (kept in a shell variable) instead of resolved again; alone, it resolves them
    as that fact does (one ``git config``, ``_GIT_BRANCH_REMOTES``)."""
    # refs counted and the first three lines of a failure picked with shell builtins (no grep/head/sed)
    script = ('export GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false GIT_SSH_COMMAND="$2"; '
              'cd "$1" || exit 4; N="\n"; urls=; k=; case $N$3 in *"${N}pushurl "*) case $N$3 in *"${N}push-error "*) ;; '
              '*) k=1; set -f; IFS=$N; for l in $3; do case $l in "pushurl "*) urls="$urls${k#1}${l#pushurl }"; k=$N;; '
              'esac; done; unset IFS; set +f; k=1;; esac;; esac; '
              'if [ -z "$k" ]; then ' + _GIT_BRANCH_REMOTES +
              'gu "$r" "--push --all" && urls=$u || { echo "$u"; exit 3; }; fi; '
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
