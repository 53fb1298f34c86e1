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
_USER, _GROUP, _DEFAULT, _NONE = 0, 1, 4, 6
_RLIMIT_ITEMS = frozenset({"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock",
                           "as", "locks", "sigpending", "msgqueue", "nice", "rtprio"})
_SCALE = {"cpu": 60, **dict.fromkeys(("fsize", "data", "stack", "core", "rss", "memlock", "as"), 1024)}
_RLIM_INFINITY = 2**64 - 1
_C_SPACE = re.compile(r"[ \t\n\v\f\r]+")  # what sscanf("%s") and isspace() treat as blanks
_STRTOUL = re.compile(r"([+-]?)([0-9]+)")


@dataclass(frozen=True)
class ResolvedLimit:
    soft: int | str | None
    hard: int | str | None
    soft_source: str | None
    hard_source: str | None
    # "path:lineno" of a matching "<domain> -" line: pam_limits then applies no limits at all.
    exempt_source: str | None = None


class _BadRange(Exception):
    pass


def order_limits_files(paths: Iterable[str]) -> list[str]:
    """limits.conf first, then limits.d/*.conf as glob(3) returns them under LC_COLLATE=C; others dropped."""
    paths = list(paths)
    dropins = [p for p in paths if posixpath.dirname(p) == LIMITS_D
               and p.endswith(".conf") and not posixpath.basename(p).startswith(".")]  # "*" skips dot files
    return [p for p in paths if p == LIMITS_CONF] + sorted(dropins, key=lambda p: p.encode("utf-8", "surrogateescape"))


def resolve_limit(files: Sequence[tuple[str, str]], *, user: str, uid: int, groups: Sequence[str],
                  item: str = "nproc", gid: int | None = None, gids: Sequence[int] = (),
                  strict: bool = True) -> ResolvedLimit:
    """Resolve ``item`` for ``user``; ``files`` is (path, content) in the order pam_limits reads them.

    ``groups`` are all the user's group names; ``gid`` (primary) and ``gids`` (all, primary included)
    are needed only if a matching line uses an ``@gid`` range. With ``strict``, a line pam_limits would
    skip although it names this user and item (bad type/value/uid range, missing value) raises
    ValueError("path:lineno: ..."); without it such lines are skipped, as pam_limits does.
    """
    item = item.lower()
    if item not in _RLIMIT_ITEMS:
        raise ValueError(f"unsupported pam_limits item {item!r}: expected one of {sorted(_RLIMIT_ITEMS)}")
    all_gids = frozenset(gids) | ({gid} if gid is not None else frozenset())
    state: dict[str, tuple[int, int | str | None, str | None]] = {  # (LIMITS_DEF_*, value, source)
        "soft": (_NONE, None, None), "hard": (_NONE, None, None)}
    for path, content in files:
        for lineno, raw in enumerate(content.split("\n"), 1):  # fgets(); 1023-byte line splitting ignored
            where = f"{path}:{lineno}"
            # '#' starts a comment anywhere on the line; sscanf("%s%s%s%s") reads at most four fields.
            fields = [f for f in _C_SPACE.split(raw.split("#", 1)[0]) if f][:4]
            if not fields:
                continue
            domain, ltype = fields[0], fields[1].lower() if len(fields) > 1 else ""
            names_item = len(fields) > 2 and fields[2].lower() == item
            try:
                rng = _parse_range(domain)
            except _BadRange:  # "invalid uid range - skipped", whatever the rest of the line says
                if strict and names_item:
                    raise ValueError(f"{where}: invalid uid/gid range {domain!r}") from None
                continue
            if len(fields) == 4:
                source = _source(domain, rng, user, uid, gid, all_gids, groups) if names_item else None
                if source is not None:
                    _process(state, source, ltype, item, fields[3].lower(), where, strict)
            elif len(fields) == 2 and ltype.startswith("-"):
                # "<domain> -": parse_config_file() returns PAM_IGNORE and pam_sm_open_session() returns
                # at once: no limit from any file (earlier ones included) is applied.
                if _exempt(domain, rng, user, uid, gid, all_gids, groups):
                    return ResolvedLimit(None, None, None, None, exempt_source=where)
            elif strict and len(fields) == 3 and names_item \
                    and _source(domain, rng, user, uid, gid, all_gids, groups) is not None:
                raise ValueError(f"{where}: limit line without a value")
    (_, soft, soft_src), (_, hard, hard_src) = state["soft"], state["hard"]
    return ResolvedLimit(soft, hard, soft_src, hard_src)


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
        return None  # ALL/ALLGROUP: process_limit() drops them for anything but maxlogins
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
             item: str, value: str, where: str, strict: bool) -> None:
    """process_limit() for one rlimit item."""
    halves = {"soft": ("soft",), "hard": ("hard",), "-": ("soft", "hard")}.get(ltype)
    parsed = _parse_value(item, value)
    if halves is None or parsed is None:
        if strict:
            raise ValueError(f"{where}: pam_limits ignores this line (type {ltype!r}, value {value!r})")
        return
    for half in halves:
        # "if (src_soft < source) return;": a more specific earlier setting wins, an equally specific later
        # line overwrites. The early return means a blocked soft half of "-" also skips the hard half.
        if state[half][0] < source:
            return
        state[half] = (source, parsed, where)


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
