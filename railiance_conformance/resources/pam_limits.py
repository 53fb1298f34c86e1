"""A user's effective pam_limits soft/hard limit on Debian 12, e.g. resolve_limit([("/etc/security/limits.conf", "* hard nproc 100")], user="bob", uid=1000, groups=["bob"]).hard == 100."""
# Modelled on Linux-PAM 1.5.2 modules/pam_limits/pam_limits.c (parse_config_file, process_limit,
# parse_uid_range, pam_sm_open_session) with Debian's pam 1.5.2-6+deb12u1 patch
# 027_pam_limits_better_init_allow_explicit_root, and limits.conf(5).
# Values are in limits.conf units (KB for fsize/data/stack/core/rss/memlock/as, minutes for cpu,
# the configured [-20, 19] value for nice), or "unlimited". pam_limits replaces "nofile unlimited" by
# /proc/sys/fs/nr_open at login time; that is reported here as "unlimited". None means no line sets it:
# Debian's patch 027 then resets the limit to PID 1's (/proc/1/limits; soft nofile capped at 1024).
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LIMITS_CONF = "/etc/security/limits.conf"
LIMITS_D = "/etc/security/limits.d"
UNLIMITED = "unlimited"

# LIMITS_DEF_* in pam_limits.c: a lower number is a more specific domain. uid ranges count as USER,
# gid ranges as GROUP. ALLGROUP (2) and ALL (3) come from "%" domains, which only affect maxlogins.
_USER, _GROUP, _ALLGROUP, _ALL, _DEFAULT, _NONE = 0, 1, 2, 3, 4, 6
_RLIMIT_ITEMS = frozenset({"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock",
                           "as", "locks", "sigpending", "msgqueue", "nice", "rtprio"})
_KNOWN_ITEMS = _RLIMIT_ITEMS | {"maxlogins", "maxsyslogins", "priority"}  # process_limit()'s item names
_SCALE = {"cpu": 60, **dict.fromkeys(("fsize", "data", "stack", "core", "rss", "memlock", "as"), 1024)}
_RLIM_INFINITY = 2**64 - 1
_C_SPACE = re.compile(r"[ \t\n\v\f\r]+")  # what sscanf("%s") and isspace() treat as blanks
_STRTOUL = re.compile(r"([+-]?)([0-9]+)")


@dataclass(frozen=True)
class SkippedLine:
    """A line pam_limits skips although it could be meant for this user and item: a fact, not an unknown."""
    source: str  # "path:lineno"
    text: str  # the line as written (comment removed, blanks trimmed)
    why: str  # why pam_limits skips it, in the words of its log message
    halves: tuple[str, ...]  # the halves ("soft", "hard") the line would have set

    def describe(self) -> str:
        return f"pam_limits skips {self.source} {self.text!r} ({self.why})"


@dataclass(frozen=True)
class ResolvedLimit:
    soft: int | str | None
    hard: int | str | None
    soft_source: str | None
    hard_source: str | None
    # "path:lineno" of a matching "<domain> -" line: pam_limits then applies no limits at all.
    exempt_source: str | None = None
    # Lines for this user that name this item (or an unknown item, or none) and that pam_limits skips.
    skipped: tuple[SkippedLine, ...] = ()


class _BadRange(Exception):
    pass


def order_limits_files(paths: Iterable[str]) -> list[str]:
    """limits.conf first, then limits.d/*.conf as glob(3) returns them under LC_COLLATE=C; others dropped."""
    paths = list(paths)
    dropins = [p for p in paths if posixpath.dirname(p) == LIMITS_D
               and p.endswith(".conf") and not posixpath.basename(p).startswith(".")]  # "*" skips dot files
    return [p for p in paths if p == LIMITS_CONF] + sorted(dropins, key=lambda p: p.encode("utf-8", "surrogateescape"))


def resolve_limit(files: Sequence[tuple[str, str]], *, user: str, uid: int, groups: Sequence[str],
                  item: str = "nproc", gid: int | None = None, gids: Sequence[int] = ()) -> ResolvedLimit:
    """Resolve ``item`` for ``user``; ``files`` is (path, content) in the order pam_limits reads them.

    ``groups`` are all the user's group names; ``gid`` (primary) and ``gids`` (all, primary included)
    are needed only if a matching line uses an ``@gid`` range (else ValueError). A line pam_limits skips
    although it may be meant for this user and item (bad uid range, unknown item or type, a value that is
    no number such as ``"1024"`` in quotes, too few fields, a ``%`` domain) is skipped here too and
    listed in ``skipped`` with the reason (parse_config_file() / process_limit() log messages).
    """
    item = item.lower()
    if item not in _RLIMIT_ITEMS:
        raise ValueError(f"unsupported pam_limits item {item!r}: expected one of {sorted(_RLIMIT_ITEMS)}")
    all_gids = frozenset(gids) | ({gid} if gid is not None else frozenset())
    state: dict[str, tuple[int, int | str | None, str | None]] = {  # (LIMITS_DEF_*, value, source)
        "soft": (_NONE, None, None), "hard": (_NONE, None, None)}
    skipped: list[SkippedLine] = []

    def skip(where: str, fields: list[str], why: str, ltype: str) -> None:
        halves = {"soft": ("soft",), "hard": ("hard",)}.get(ltype, ("soft", "hard"))
        skipped.append(SkippedLine(where, " ".join(fields), why, halves))

    for path, content in files:
        for lineno, raw in enumerate(content.split("\n"), 1):  # fgets(); 1023-byte line splitting ignored
            where = f"{path}:{lineno}"
            # '#' starts a comment anywhere on the line; sscanf("%s%s%s%s") reads at most four fields.
            fields = [f for f in _C_SPACE.split(raw.split("#", 1)[0]) if f][:4]
            if not fields:
                continue
            domain, ltype = fields[0], fields[1].lower() if len(fields) > 1 else ""
            line_item = fields[2].lower() if len(fields) > 2 else None
            # Could the line be meant for this item? It names it, an item pam_limits does not know, or none.
            maybe_ours = line_item is None or line_item == item or line_item not in _KNOWN_ITEMS
            try:
                rng = _parse_range(domain)
            except _BadRange:  # "invalid uid range '%s' - skipped", whatever the rest of the line says
                if maybe_ours and not (len(fields) == 2 and ltype.startswith("-")):
                    skip(where, fields, f"invalid uid/gid range {domain!r}", ltype)
                continue
            if len(fields) == 4:
                source = _source(domain, rng, user, uid, gid, all_gids, groups)
                if source is None or not maybe_ours:
                    continue
                why = _process(state, source, ltype, line_item or "", fields[3].lower(), where, item)
                if why:
                    skip(where, fields, why, ltype)
            elif len(fields) == 2 and ltype.startswith("-"):
                # "<domain> -": parse_config_file() returns PAM_IGNORE and pam_sm_open_session() returns
                # at once: no limit from any file (earlier ones included) is applied.
                if _exempt(domain, rng, user, uid, gid, all_gids, groups):
                    return ResolvedLimit(None, None, None, None, exempt_source=where, skipped=tuple(skipped))
            elif maybe_ours and _source(domain, rng, user, uid, gid, all_gids, groups) is not None:
                skip(where, fields, f"invalid line: {len(fields)} field{'s' if len(fields) > 1 else ''}, "
                                    "pam_limits needs <domain> <type> <item> <value>", ltype)
    (_, soft, soft_src), (_, hard, hard_src) = state["soft"], state["hard"]
    return ResolvedLimit(soft, hard, soft_src, hard_src, skipped=tuple(skipped))


def _parse_range(domain: str) -> tuple[str, int, int] | None:
    """parse_uid_range(): None, or (kind, min, max) with kind "one" (":max"), "min" ("min:"), "mm"."""
    if ":" not in domain:
        return None
    lo_text, hi_text = domain[1:].split(":", 1) if domain[0] in "@%" else domain.split(":", 1)
    if lo_text == "":  # ":max" is an exact match (limits.conf(5)); ":" alone is an error
        if hi_text == "":
            raise _BadRange
        hi = _strtoul_id(hi_text)
        return ("one", hi, hi)
    lo = _strtoul_id(lo_text)
    return ("min", lo, 0) if hi_text == "" else ("mm", lo, _strtoul_id(hi_text))


def _strtoul_id(text: str) -> int:
    match = _STRTOUL.fullmatch(text)  # strtoul() must consume the whole field
    if not match or int(match.group(2)) > 2**64 - 1:
        raise _BadRange
    value = int(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    return value % 2**32  # stored in a uid_t/gid_t


def _in_range(rng: tuple[str, int, int], value: int) -> bool:
    kind, lo, hi = rng
    return value == hi if kind == "one" else lo <= value and (kind == "min" or value <= hi)


def _need_gid(gid: int | None, gids: frozenset[int], exact: bool) -> None:
    missing = not gids if exact else gid is None
    if missing:
        raise ValueError("an @gid range domain needs the user's gid= (primary) and gids= (all groups)")


def _source(domain: str, rng: tuple[str, int, int] | None, user: str, uid: int, gid: int | None,
            gids: frozenset[int], groups: Sequence[str]) -> int | None:
    """The LIMITS_DEF_* a 4-field line's domain gives for this user, or None if it does not apply."""
    root = uid == 0
    if domain == user:  # exact, case-sensitive user name
        return _USER
    # Debian 027 patch: "@", "%" and "*" domains are skipped for uid 0 ("!pl->root")...
    if domain.startswith("@") and not root:
        if rng is None:
            return _GROUP if domain[1:] in groups else None
        _need_gid(gid, gids, exact=rng[0] == "one")
        # "@:gid" checks every group of the user; "@min:max"/"@min:" only the primary gid (limits.conf(5)).
        return _GROUP if (rng[2] in gids if rng[0] == "one" else _in_range(rng, gid or 0)) else None
    if domain.startswith("%") and not root:
        # LIMITS_DEF_ALL / ALLGROUP, which process_limit() then drops for anything but maxlogins.
        if rng is None:
            return _ALL if domain == "%" else _ALLGROUP if domain[1:] in groups else None
        if rng[0] == "one":
            _need_gid(gid, gids, exact=True)
            return _ALLGROUP if rng[2] in gids else None
        return None  # "range unsupported for %group matching - ignored"
    if rng is None:
        return _DEFAULT if domain == "*" and not root else None
    # ...but their ranges fall through to the uid-range branch, so for root "@:0" or "@0:" act as uid ranges.
    return _USER if _in_range(rng, uid) else None


def _exempt(domain: str, rng: tuple[str, int, int] | None, user: str, uid: int, gid: int | None,
            gids: frozenset[int], groups: Sequence[str]) -> bool:
    """Does a "<domain> -" line apply? ("*" never does; the Debian patch leaves this branch alone for root.)"""
    if domain == user:
        return True
    if domain.startswith("@"):
        if rng is None:
            return domain[1:] in groups
        _need_gid(gid, gids, exact=rng[0] == "one")
        return rng[2] in gids if rng[0] == "one" else _in_range(rng, gid or 0)
    return rng is not None and _in_range(rng, uid)  # includes "%" ranges, read as uid ranges here


def _process(state: dict[str, tuple[int, int | str | None, str | None]], source: int, ltype: str,
             line_item: str, value: str, where: str, item: str) -> str | None:
    """process_limit() for a line naming ``item`` or an unknown item: None if applied, else why it is skipped."""
    if line_item not in _KNOWN_ITEMS:
        return f"unknown limit item {line_item!r}"
    halves = {"soft": ("soft",), "hard": ("hard",), "-": ("soft", "hard")}.get(ltype)
    if halves is None:
        return f"unknown limit type {ltype!r}"
    parsed = _parse_value(item, value)
    if parsed is None:
        return f"wrong limit value {value!r}: not a number"
    if source in (_ALL, _ALLGROUP):
        return "a '%' domain is valid for maxlogins only"
    for half in halves:
        # "if (src_soft < source) return;": a more specific earlier setting wins, an equally specific later
        # line overwrites. The early return means a blocked soft half of "-" also skips the hard half.
        if state[half][0] < source:
            return None
        state[half] = (source, parsed, where)
    return None


def _parse_value(item: str, value: str) -> int | str | None:
    if item == "nice":  # strtol(), clamped to [-20, 19]; no "unlimited" spelling
        match = re.match(r"[+-]?[0-9]+", value)
        return None if not match else max(-20, min(19, int(match.group())))
    if value in ("-1", "-", "unlimited", "infinity"):
        return UNLIMITED
    match = _STRTOUL.match(value)  # strtoull(): trailing garbage is accepted, no digits is an error
    if not match:
        return None
    number = int(match.group(2))
    if number > _RLIM_INFINITY:
        number = _RLIM_INFINITY  # ERANGE: strtoull() saturates at ULLONG_MAX, whatever the sign
    elif match.group(1) == "-":
        number = -number % 2**64  # strtoull() negates in unsigned arithmetic
    scale = _SCALE.get(item, 1)
    if number == _RLIM_INFINITY or (scale > 1 and number >= _RLIM_INFINITY // scale):
        return UNLIMITED  # the "* 60" / "* 1024" conversion saturates to RLIM_INFINITY
    return number
