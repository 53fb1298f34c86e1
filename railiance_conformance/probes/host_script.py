"""The one remote command that gathers the host facts the selected controls need.

All facts of a host come from a single ``sh -c`` over a single SSH connection, composed from
the ``Fact`` declarations (``probes.facts``) of the selected scenarios; each section is framed
by a random boundary so file contents can hold anything. Every value that reaches the script
is quoted with ``shlex.quote``. The script only reads:
``stat``, ``cat``, ``grep``, ``getent``, ``id``, ``systemctl show``, ``ssh -G`` and ``git config`` (a
checkout's remotes, resolved by shell builtins; ``git symbolic-ref`` and ``git remote get-url`` for what the
resolver leaves to git) (the last two as the operator user: ``setpriv`` when logged in as root)
(it never reads a private key: only ``stat`` of it and the type field of its ``.pub``), and never opens
a file that is not a regular file (a FIFO, a device). ``wrap`` runs it on the host in a session of its
own (``setsid``, ``timeout``, ``pkill -s``) with its own deadline, ended with the ssh session.
Costs on the host (forks are most of them): shell builtins wherever a fork per path would do, every
config file read by one ``grep`` (``flush``), the user's processes by three ``grep``s whatever their number.
Example: ``build_script([facts.whoami()], boundary="b0")`` -> shell text; ``parse_output(text, "b0")`` -> sections.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

from railiance_conformance.probes.facts import STAT_FORMAT, Fact  # noqa: F401  (STAT_FORMAT re-exported)

# The largest config file the probe reads (bytes; systemd's own line bound is 1 MiB, LONG_LINE_MAX), the
# memory bound of the grep that reads them (KiB of address space), and the exit of a file too large to read.
MAX_FILE_BYTES = 1 << 20
MAX_GREP_KIB = 256 * 1024
TOO_LARGE = 22


@dataclass(frozen=True, slots=True)
class Section:
    rc: int
    out: str


PREAMBLE = [
    "LC_ALL=C; export LC_ALL",
    # the login's own name and uid, read once with one id(1) ("uid=1000(tegwick) gid=..."; asuser and
    # homeof ask them for every fact); an id that prints no name for the uid is asked for it once more
    'I=$(id); MEID=${I#uid=}; MEID=${MEID%%[!0-9]*}; case $I in "uid=$MEID("*) ME=${I#*"("}; ME=${ME%%")"*};; '
    '*) ME=$(id -un);; esac',
    # sec NAME CMD...: run CMD, frame its stdout+stderr, record its exit status
    'sec() { n=$1; shift; printf "%s %s\\n" "$B" "$n"; "$@" 2>&1; r=$?; printf "\\n%s/rc %s\\n" "$B" "$r"; }',
    # dump FILE...: each existing regular file's content; a file whose existence cannot even be told
    # (a directory on its path is not searchable) is a section of its own, never "absent". Anything
    # else that exists (a FIFO, a device, a socket, a directory) is never opened: opening a FIFO blocks
    # until a writer comes, a device may block or have effects. Its section (exit NOT_REGULAR) names
    # it; test(1)'s -f/-p/-c/-b/-S/-d are builtins, stat(2) of the name only. A dangling symlink is
    # given to cat, which names why it cannot be opened (ENOENT, ELOOP). The components themselves do not
    # skip such a file in the versions here, so it is its control's error, not "absent": systemd-sysctl
    # 252 blocks on a FIFO in sysctl.d (measured: systemd 252.39, a mount namespace, timeout 124; its
    # src/basic/conf-files.c files_add stats an entry only for CONF_FILES_REGULAR and the like, which
    # conf_files_list_with_replacement does not pass; later systemd passes CONF_FILES_REGULAR and logs
    # "Ignoring ..., as it is not a regular file"); Linux-PAM 1.5 modules/pam_limits/pam_limits.c
    # pam_sm_open_session globs limits.d/*.conf and parse_config_file fopen()s each match, no type check.
    # A readable regular file is queued (Q) and read with every other queued file by one grep at the end
    # (flush: one process for every file, not a cat each); grep -a passes every byte, and the framing
    # drops a file's last newline either way (parse_output), so the content is the same.
    'N="\n"; Q=',
    # A symlink to /dev/null (systemd's mask) is read as before: empty, never blocking.
    'dump() { for f in "$@"; do if { [ -f "$f" ] || [ "$f" -ef /dev/null ]; } && [ -r "$f" ]; then case $f in *"$N"*) sec "file $f" cat -- "$f";; '
    '*) Q="$Q$f$N";; esac; elif [ -f "$f" ] || { [ -L "$f" ] && [ ! -e "$f" ]; }; then sec "file $f" cat -- "$f"; '
    'elif [ -e "$f" ]; then sec "file $f" notregular "$f"; '
    'elif unseen "$f"; then sec "file $f" denied "cannot tell whether $f exists: $q is not searchable by $ME"; '
    'fi; done; }',
    'notregular() { if [ -d "$1" ]; then t="a directory"; elif [ -p "$1" ]; then t="a FIFO (named pipe)"; '
    'elif [ -c "$1" ]; then t="a character device"; elif [ -b "$1" ]; then t="a block device"; '
    'elif [ -S "$1" ]; then t="a socket"; else t="not a regular file"; fi; '
    'echo "not read: $1 is $t, not a regular file (opening it could block the probe)"; return 20; }',
    # dumpdir DIR: every *.conf in DIR (as glob(3) lists them: no hidden files); a directory the
    # login user cannot list is a "dir" section with exit 13, never an empty directory
    'dumpdir() { d=$1; if [ -d "$d" ]; then if [ -r "$d" ] && [ -x "$d" ]; then dump "$d"/*.conf; else '
    'sec "dir $d" denied "cannot list $d as $ME: permission denied ($(stat -c \'%A %U:%G\' -- "$d"))"; fi; '
    'elif unseen "$d"; then sec "dir $d" denied "cannot tell whether $d exists: $q is not searchable by $ME"; fi; }',
    # unseen PATH: true when PATH's absence cannot be told (its nearest existing ancestor, left in $q,
    # is not searchable). Shell builtins only: most probed paths are absent, and a fork each would
    # cost the host more than the rest of the script.
    'unseen() { q=${1%/*}; while [ -n "$q" ] && [ ! -e "$q" ]; do q=${q%/*}; done; q=${q:-/}; [ ! -x "$q" ]; }',
    'denied() { echo "$1"; return 13; }',
    # ashell USER SCRIPT ARG...: sh -c SCRIPT sh ARG... as the user (asuser); for the login user a subshell of this
    # shell runs SCRIPT (its $1... the ARGs): the same commands, one exec of sh less
    'ashell() { au=$1; as=$2; shift 2; if [ "$au" = "$ME" ] && [ -n "$HOME" ] && [ -z "${SUDO_USER:-}" ]; then '
    '(eval "$as"); else asuser "$au" sh -c "$as" sh "$@"; fi; }',
    # keep VAR CMD...: run CMD, print its output (stdout and stderr) and, when it exits 0, keep that output in
    # VAR for a later fact (the lanes are subshells forked after the serial part: they see it). The output passes
    # through $(...), which drops trailing newlines; printf gives back one, and the framing drops one either way
    'keep() { kv=$1; shift; ko=$("$@" 2>&1); kr=$?; printf "%s\\n" "$ko"; [ "$kr" = 0 ] && eval "$kv=\\$ko"; return $kr; }',
    # homeof USER: the user's home directory from the passwd database (NSS). For the login user it is
    # $HOME, which sshd set from the same getpwnam() entry (session.c do_setup_env): two forks less a
    # call. Not under sudo (become): there HOME may still be the invoking user's, so getent answers
    'homeof() { if [ "$1" = "$ME" ] && [ -n "$HOME" ] && [ -z "${SUDO_USER:-}" ]; then printf "%s\\n" "$HOME"; '
    'else getent passwd "$1" | cut -d: -f6; fi; }',
    # asuser USER CMD...: run CMD as the user's own processes run it: their uid, groups and HOME, so
    # ssh reads their ~/.ssh/config (relative Includes resolve in *their* ~/.ssh) and git their
    # ~/.gitconfig. Logged in as root: setpriv (util-linux; no PAM session, nothing written).
    # Logged in as anyone else: exit 5 with the reason.
    # flush: the queued files, one grep: a "files" section, the list, a "<boundary>/files" line, grep's lines
    # A file larger than MAX_FILE_BYTES (stat(1) of them all, one process) is not read: its section says its size
    # (TOO_LARGE): a config file is small, and a huge one (GBs of one line) would cost the host's memory in grep and
    # the client's in the answer. grep runs under ulimit -v (MAX_GREP_KIB): a file that says size 0 and is endless
    # (a symlink into /proc) ends it with "memory exhausted", which split_files makes the unread files' error.
    'flush() { if [ -n "$Q" ]; then set -f; IFS=$N; set -- $Q; Q=; for l in $(stat -L -c "%s %n" -- "$@" 2>/dev/null); do '
    f'z=${{l%% *}}; f=${{l#* }}; if [ "$z" -gt {MAX_FILE_BYTES} ]; then sec "file $f" toolarge "$f" "$z"; else Q="$Q$f$N"; fi; '
    'done; unset IFS; set +f; fi; printf "%s files\\n%s%s/files\\n" "$B" "$Q" "$B"; r=0; if [ -n "$Q" ]; then set -f; '
    f'IFS=$N; set -- $Q; unset IFS; set +f; Q=; (ulimit -v {MAX_GREP_KIB}; exec grep -aH "" -- "$@") 2>&1; r=$?; fi; '
    'printf "\\n%s/rc %s\\n" "$B" "$r"; }',
    f'toolarge() {{ echo "not read: $1 is $2 bytes, more than the {MAX_FILE_BYTES} bytes the probe reads of a config file"; '
    f'return {TOO_LARGE}; }}',
    'asuser() { u=$1; shift; if [ "$u" = "$ME" ] && [ -n "$HOME" ] && [ -z "${SUDO_USER:-}" ]; then h=$HOME; '
    'else h=$(homeof "$u"); fi; [ -n "$h" ] || { echo "cannot resolve as $u: no such user"; return 5; }; '
    'if [ "$ME" = "$u" ]; then HOME="$h" "$@"; '
    'elif [ "$MEID" = 0 ]; then HOME="$h" USER="$u" LOGNAME="$u" setpriv --reuid="$u" --regid="$(id -g "$u")" '
    '--init-groups -- "$@"; else echo "cannot resolve as $u: logged in as $ME, who is neither $u nor root"; '
    'return 5; fi; }',
    # $T bounds a command that may wait (systemctl, ssh, git over the network): -s KILL, because a child that
    # ignores SIGTERM (a ProxyCommand with trap '' TERM) would outlive timeout's TERM and hold its lane's pipe
    # open until the host's deadline; KILL reaches timeout's whole process group, and the exit is 137
    'T=; command -v timeout >/dev/null 2>&1 && T="timeout -s KILL 15"',
    # sshbad USER: true when the user's ~/.ssh/config exists and is not a regular file (left in $c), or when
    # ssh -G as the user already hung on its configuration (an Include of a FIFO: why in $S). Every ssh the
    # user starts opens the same files (fopen(3), no type check: readconf.c read_config_file_depth), so the
    # login and ls-remote probes are not run then: their section names the file (NOT_REGULAR) or the hang
    # (NOT_RUN), instead of a network timeout blamed on the git server
    # (the login user's home is $HOME, as homeof says, without a $(...) fork: sshbad runs before every ssh probe)
    'sshbad() { if [ "$1" = "$ME" ] && [ -n "$HOME" ] && [ -z "${SUDO_USER:-}" ]; then c=$HOME; else c=$(homeof "$1"); fi; '
    'c="$c/.ssh/config"; { [ -e "$c" ] && [ ! -f "$c" ]; } || [ -n "${S:-}" ]; }',
    'sshnot() { if [ -n "${S:-}" ]; then echo "$S"; return 21; fi; notregular "$c"; }',
    # sshG USER ALIAS: ssh -G as the user, bounded (it makes no connection; only a config read that blocks or a
    # Match exec that hangs takes long); on its timeout $S says so for the ssh probes after it
    f'sshG() {{ asuser "$1" ${{T:+timeout -s KILL {5}}} ssh -G "$2"; s=$?; if [ "$s" = 124 ] || [ "$s" = 137 ]; then S="not run: ssh -G $2 as $1 did '
    f'not finish within 5 s: ssh blocks reading its configuration (an Include of a FIFO or a device, a Match exec '
    f'that hangs): every ssh of the user would"; echo "$S"; fi; return $s; }}',
]


# How many network-bound facts run at once. Every process of the script counts against the login
# user's RLIMIT_NPROC (pam_limits "nproc"), which the workplan caps for the operator user (512/1024):
# a lane costs about eight processes (a subshell, timeout, sh, git, ssh, ...), so two lanes keep one
# probe near twenty. One SSH command with the script, on a namespace host: one lane 0.88 s, two 0.62 s,
# five 0.41 s; but five lanes on 100 namespace hosts (one kernel: one uid's processes across all of
# them) hit the cap ("cannot fork"), three did not.
LANES = 2
# The longest a network-bound fact may take (``timeout``), and the least: a Gitea SSH server that accepts
# and never answers costs each fact of a lane this long, so network_timeout() fits them in the budget.
NETWORK_TIMEOUT_S = 15
NETWORK_TIMEOUT_MIN_S = 3


def network_timeout(facts: Sequence[Fact], budget_s: float) -> int:
    """Seconds each network-bound fact may take so that the longest lane ends within ``budget_s``
    (the host's --command-timeout less a margin): ``budget_s // facts in that lane``, between
    ``NETWORK_TIMEOUT_MIN_S`` and ``NETWORK_TIMEOUT_S``. Example: 5 such facts, 2 lanes, 45 s -> 15;
    30 s -> 10; 12 s -> 4. A stalled git server then costs its own controls, never the host's others."""
    count = len({f.section for f in facts if f.concurrent})
    longest = -(-count // LANES) if count else 1
    return max(NETWORK_TIMEOUT_MIN_S, min(NETWORK_TIMEOUT_S, int(budget_s // longest)))


def build_script(facts: Sequence[Fact], boundary: str, network_timeout_s: int = NETWORK_TIMEOUT_S) -> str:
    """The one ``sh`` script that gathers ``facts`` (deduplicated by section), framed by ``boundary``.

    The others run first, one after another (so the user's process list, read among them, holds no
    process of this script but its login shell). Then the ``concurrent`` facts (network waits: logins,
    ``git ls-remote``) run in ``LANES`` lanes at once, each lane its share one after another, as the
    stages of one pipeline: ``: | { o=$(F1; F3; F5); printf '%s\\n' "$o"; } | { o=$(F2; F4); <copy>; …; }``.
    Each stage keeps its lane's output in ``o`` until the stages before it have ended (a ``read`` loop copies
    theirs through first), so sections never interleave: the output is the same text as if the facts
    ran one after another, and their time is the slowest lane's. (Output loses NUL bytes in ``$(…)``;
    these are status lines and git/ssh messages.) Each network-bound fact runs under
    ``timeout network_timeout_s`` (see ``network_timeout``).
    """
    lines = [*PREAMBLE, f"B={shlex.quote(boundary)}"]
    seen: set[str] = set()
    serial: list[str] = []
    concurrent: list[str] = []
    for fact in facts:
        if fact.section not in seen:
            seen.add(fact.section)
            (concurrent if fact.concurrent else serial).append(fact.command)
    # the config files first, read at once by flush: a later command that blocks (git on a FIFO as its
    # .git/config, a hung NSS lookup) until the host's deadline then costs its own controls, not theirs
    files = [c for c in serial if c.startswith(("dump ", "dumpdir "))]
    lines.extend(files)
    lines.append("flush")
    lines.extend(c for c in serial if not c.startswith(("dump ", "dumpdir ")))
    if concurrent:
        lanes = ["\n".join(concurrent[i::LANES]) for i in range(min(LANES, len(concurrent)))]
        # stdin of a stage is the pipe from the one before: the facts read /dev/null, never that
        bound = f'[ -z "$T" ] || T="timeout -s KILL {int(network_timeout_s)}"'  # no timeout(1) on the host: none
        # the stages before copied through by the read builtin, not a cat each: what they send is lines (each
        # stage ends its own with a newline) without NUL bytes ($(...) drops them); the first stage has none
        copy = ["", 'while IFS= read -r l; do printf \'%s\\n\' "$l"; done; ']
        lines.append(":" + "".join(f""" | {{ o=$( {{
{bound}
{lane}
}} </dev/null); {copy[min(i, 1)]}printf '%s\\n' "$o"; }}""" for i, lane in enumerate(lanes)))
    return "\n".join(lines) + "\nexit 0\n"


# A section whose command was still running when the host's deadline ended the script (``wrap``) gets
# this exit status and the deadline in its text; a dumped file that is not a regular file (a FIFO, a
# device: never opened) gets NOT_REGULAR.
DEADLINE_RC = 254
NOT_REGULAR = 20
NOT_RUN = 21  # an ssh probe not run: ssh -G as the user hung on its configuration (``sshG``)

# The session on the host (``wrap``): the fact script runs in a session of its own (setsid(1), so one
# process group holds everything it starts) under timeout(1) with the host's own deadline; a watchdog
# reads the ssh channel and kills that session when the channel closes (the client ended or was
# killed: sshd closes the command's stdin), so nothing the probe started outlives the ssh session.
# The client sends one line first (``bounded_command``) and keeps its end open while it waits: with no
# such line (stdin closed at once, a backend that sends nothing) the watchdog stands down and the
# deadline still holds. pkill -s (procps) ends every process group of the session: timeout(1) puts each
# bounded network fact in a group of its own; without pkill, ``end`` does (every /proc/<pid>/stat whose session
# field is the script's, shell builtins only, twice for a fork in between). Without setsid or timeout(1) (a
# busybox-like host) the login's own session stands in (sshd made it one: session.c, setsid before the shell):
# a ``sleep`` is the deadline, and at the deadline, when the channel closes or when the script ends, ``end``
# kills every process of that session but this shell, the session leader and its parent (the login shell, if
# it forked this one). Without /proc or sleep the script runs as before, unbounded on the host.
WRAPPER = r"""exec 3<&0 </dev/null
end() { for k in 1 2; do for f in /proc/[0-9]*/stat; do { read -r l < "$f"; } 2>/dev/null || continue; p=${f#/proc/}
p=${p%/stat}; case " $$ $L " in *" $p "*) continue;; esac; set -- ${l##*") "}; [ "$4" = "$m" ] && kill -s KILL "$p" 2>/dev/null
done; done; }
L=
if command -v setsid >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
endp() { pkill -KILL -s "$1" 2>/dev/null || { m=$1; end; }; }
setsid timeout -s KILL "$3" sh -c "$1" sh & P=$!
{ if read -r _; then while read -r _; do :; done; endp "$P"; fi; } <&3 3<&- & W=$!
exec 3<&-
wait "$P"; r=$?
kill "$W" 2>/dev/null
if [ "$r" = 137 ]; then printf '
%s/deadline %s
' "$2" "$3"; endp "$P"; else kill -s KILL -- "-$P" 2>/dev/null; fi
exit 0
fi
if [ -r "/proc/$$/stat" ] && command -v sleep >/dev/null 2>&1; then
a=$1 b=$2 d=$3; read -r l < "/proc/$$/stat"; set -- ${l##*") "}; m=$4; L="$m $PPID"
sleep "$d" & S=$!
{ sh -c "$a" sh; kill "$S" 2>/dev/null; } & P=$!
{ if read -r _; then while read -r _; do :; done; kill "$S" 2>/dev/null; fi; } <&3 3<&- & W=$!
exec 3<&-
wait "$S" 2>/dev/null && printf '
%s/deadline %s
' "$b" "$d"
end
exit 0
fi
exec 3<&-; exec sh -c "$1" sh"""


def deadline_for(command_timeout_s: float) -> int:
    """The host's own deadline for the fact script, in seconds: ``command_timeout_s`` (the client's bound on
    the whole ssh session) less a margin for the login and for the output to arrive, at least 1 s.
    Example: 60 -> 54; 20 -> 18; 8 -> 6."""
    return max(1, int(command_timeout_s - max(2.0, command_timeout_s * 0.1)))


def wrap(script: str, boundary: str, deadline_s: int) -> str:
    """The remote command (shell text for the login shell) that runs ``script`` (``build_script``) in a
    session of its own, killed with everything it started after ``deadline_s`` on the host or when the
    ssh session ends (``WRAPPER``). The output is the script's; a deadline adds ``<boundary>/deadline N``."""
    return "sh -c " + " ".join(shlex.quote(a) for a in (WRAPPER, "rcf", script, boundary, str(int(deadline_s))))


def parse_output(text: str, boundary: str) -> dict[str, Section]:
    """Split the framed output into ``{section name: Section(rc, output)}``. A section still open when the
    host's deadline ended the script (``wrap``) is ``Section(DEADLINE_RC, what it printed + why)``."""
    sections: dict[str, Section] = {}
    name: str | None = None
    body: list[str] = []
    deadline = ""
    for line in text.split("\n"):
        if line.startswith(boundary + "/deadline "):
            deadline = line.rsplit(" ", 1)[1]
            continue
        if name is None:
            if line.startswith(boundary + " "):
                name, body = line[len(boundary) + 1:], []
            continue
        if line.startswith(boundary + "/rc "):
            content = "\n".join(body)
            sections[name] = Section(int(line.rsplit(" ", 1)[1]), content[:-1] if content.endswith("\n") else content)
            name = None
            continue
        if line.startswith(boundary + " "):  # a section began inside an unfinished one (cut short)
            name, body = line[len(boundary) + 1:], []
            continue
        body.append(line)
    if FILES_SECTION in sections:
        sections.update(split_files(sections.pop(FILES_SECTION), boundary))
        sections[FILES_READ] = Section(0, "")
    if deadline:
        hung = "" if name is None else name[5:] if name.startswith("file ") else name
        if name == FILES_SECTION:
            hung = "one of " + ", ".join(body[:body.index(boundary + "/files")] if boundary + "/files" in body else body)
        if name is not None:
            sections[name] = Section(DEADLINE_RC, f"{hung}: not finished when the probe's deadline on the host "
                                                  f"({deadline} s) ended it: a read that blocks (a FIFO, a device, a "
                                                  "hung mount, an unanswered lookup)")
        sections[DEADLINE_SECTION] = Section(DEADLINE_RC, f"{deadline} {hung}".strip())
    return sections


# set by parse_output when the host's deadline ended the script (its text: the deadline in seconds)
DEADLINE_SECTION = "@deadline"
FILES_SECTION = "files"  # the queued files read by one grep (``flush``), split into ``file <path>`` sections
FILES_READ = "@files-read"  # set by parse_output when flush ended: every dumped file was read


def split_files(section: Section, boundary: str) -> dict[str, Section]:
    """``flush``'s section -> ``{"file <path>": Section(0, content)}`` for every listed file, in order: a line
    ``<path>:<text>`` belongs to the file being read if it starts with that file's path and a colon, else
    to the next file it starts with (grep -H reads them in the order given; an empty file has no line).
    A line ``grep: <path>: <error>`` (the file went away or could not be read after it was listed) makes
    that file's section that error (exit 2)."""
    listed, _, lines = ("\n" + section.out).partition("\n" + boundary + "/files")
    lines = lines[1:]
    paths = [p for p in listed.split("\n") if p]
    bodies: dict[str, list[str]] = {p: [] for p in paths}
    errors: dict[str, str] = {}
    index = 0
    exhausted = False
    for line in lines.split("\n") if lines else []:
        if line == "grep: memory exhausted":  # ulimit -v: a file without line ends (endless, size 0)
            exhausted = True
            break
        if line.startswith("grep: "):
            failed = next((p for p in paths if line.startswith(f"grep: {p}: ")), None)
            if failed is not None:
                errors[failed] = line[len("grep: "):]
                continue
        for i in range(index, len(paths)):
            if line.startswith(paths[i] + ":"):
                index = i
                bodies[paths[i]].append(line[len(paths[i]) + 1:])
                break
    if exhausted:  # the file being read and every one after it are unread: never partial content
        for p in paths[index:]:
            errors[p] = (f"not read: {', '.join(paths[index:])}: grep ran out of its memory bound "
                         f"({MAX_GREP_KIB // 1024} MiB) reading one of them: a line longer than that (a file without "
                         "line ends, an endless file in /proc)")
    return {f"file {p}": Section(2, errors[p]) if p in errors else Section(0, "\n".join(bodies[p])) for p in paths}


def render_files(sections: Mapping[str, Section], prefix: str = "") -> dict[str, Section]:
    """The dumped files (``file <path>`` sections) whose path starts with ``prefix``."""
    return {name[5:]: s for name, s in sections.items() if name.startswith("file " + prefix)}
