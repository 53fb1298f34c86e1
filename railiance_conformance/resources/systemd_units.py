"""Effective unit properties after systemd's fragment + drop-in merge, e.g. resolve_unit_properties(files, unit="user-1000.slice", section="Slice", properties=["MemoryMax"])["MemoryMax"].value == "1500M"."""
# Modelled on systemd v252 (Debian 12): src/shared/dropin.c, src/basic/{conf-files,unit-file,path-lookup,
# parse-util,percent-util}.c, src/shared/conf-parser.c, src/core/load-fragment.c, systemd.unit(5),
# systemd.resource-control(5). Values are raw (no %-specifier expansion) and single-valued (list settings
# such as ExecStart= accumulate in systemd); aliases (symlinked unit names) are not followed.
from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# lookup_paths_init() for the system scope. Debian 12 builds with split-usr, so SYSTEM_DATA_UNIT_DIR is
# /lib/systemd/system and precedes /usr/lib/systemd/system (meson.build: systemunitdir = rootprefix /
# 'lib/systemd/system'); on merged-/usr hosts both are the same directory.
SYSTEM_UNIT_DIRS = (
    "/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
    "/run/systemd/generator.early", "/etc/systemd/system", "/etc/systemd/system.attached",
    "/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator",
    "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
)

_WHITESPACE = " \t\n\r"  # strstrip() in src/basic/string-util.h
_EOL = re.compile(r"(?:\n\r?|\r\n?)\0?|\0")  # read_line(): \n, \r, \0 and their combinations
_IEC = (("E", 1024**6), ("P", 1024**5), ("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024),
        ("B", 1), ("", 1))
_U64_MAX = 2**64 - 1
# safe_atoi(): strtol() base 0 after mangle_base(), so 0x.., 0o.., 0b.. and leading-0 octal are accepted.
_C_INT = re.compile(r"[ \t\n\r]*(?:0[bB](?P<b>[01]+)|0[oO](?P<o>[0-7]+)|(?P<s>[+-]?)(?:0[xX](?P<x>[0-9a-fA-F]+)"
                    r"|(?P<d>[1-9][0-9]*)|(?P<z>0[0-7]*)))")
_MEMORY_PROPERTIES = frozenset({"MemoryMin", "MemoryLow", "MemoryHigh", "MemoryMax", "MemorySwapMax",
                                "MemoryLimit", "DefaultMemoryLow", "DefaultMemoryMin"})
_ZERO_ALLOWED = frozenset({"MemorySwapMax", "MemoryLow", "MemoryMin", "DefaultMemoryLow", "DefaultMemoryMin"})
# unit_load_fragment_and_dropin(u, fragment_required=true) callers; other types load from drop-ins alone.
_FRAGMENT_REQUIRED = frozenset({"service", "socket", "target", "timer", "path", "automount"})


class UnitMaskedError(ValueError):
    """The unit's fragment is empty or a /dev/null symlink: systemd marks it masked."""


@dataclass(frozen=True)
class UnitSetting:
    value: str
    source: str  # "path:lineno" (first line of a continued line)


def parse_size(text: str, *, mem_total: int | None = None, page_size: int = 4096) -> int | str:
    """Bytes for a MemoryMax=-style value ("512M", "1.5G", "1G 512M", "infinity", "25%", "5‰", "1‱").

    ``mem_total`` is physical memory in bytes (MemTotal from /proc/meminfo * 1024), needed for
    percentages, which systemd rounds down to whole pages (physical_memory_scale()).
    """
    if text == "infinity":
        return "infinity"
    permyriad = _parse_permyriad(text)
    if permyriad is not None:
        if mem_total is None:
            raise ValueError(f"memory size {text!r} is relative to physical memory: pass mem_total=")
        if permyriad == 10000:
            return mem_total
        return (mem_total // page_size) * permyriad // 10000 * page_size
    # parse_size(t, 1024, ...): [number[.fraction]][ws]suffix parts, each with a smaller suffix than the last.
    rest, total, start = text, 0, 0
    while True:
        rest = rest.lstrip(_WHITESPACE)
        number = re.match(r"\+?([0-9]+)(?:\.([0-9]+)?)?", rest)
        if not number or int(number.group(1)) > _U64_MAX:
            raise ValueError(f"invalid memory size {text!r}: expected bytes, K/M/G/T/P/E, %, or 'infinity'")
        whole, digits = int(number.group(1)), number.group(2) or ""
        fraction = float(int(digits)) if digits else 0.0
        for _ in digits:  # same double arithmetic as the C code ("1.5G" -> 1610612736)
            fraction /= 10
        rest = rest[number.end():].lstrip(_WHITESPACE)
        index = next((i for i in range(start, len(_IEC)) if rest.startswith(_IEC[i][0])), None)
        if index is None:
            raise ValueError(f"invalid memory size {text!r}: suffixes must be in decreasing order")
        suffix, factor = _IEC[index]
        part = whole * factor + int(fraction * factor)
        if digits and int(digits) > _U64_MAX or whole + (fraction > 0) > _U64_MAX // factor \
                or total + part > _U64_MAX:
            raise ValueError(f"memory size {text!r} is out of range")
        total += part
        rest, start = rest[len(suffix):], index + 1
        if not rest:
            return total


def dropin_dirs(unit: str) -> list[str]:
    """Every drop-in directory systemd consults for ``unit``, in its search order."""
    unit_type = _split_unit(unit)[2]
    dirs = [d for base in SYSTEM_UNIT_DIRS for d in _name_dirs(base, unit)]
    # unit_file_find_dropin_paths(): the top-level "<type>.d" is added last, after every name and path.
    dirs += [f"{base}/{unit_type}.d" for base in SYSTEM_UNIT_DIRS]
    return list(dict.fromkeys(dirs))


def resolve_unit_properties(files: Mapping[str, str], *, unit: str, section: str,
                            properties: Sequence[str]) -> dict[str, UnitSetting | None]:
    """Merge the unit's fragment and drop-ins (``files``: absolute path -> content) as systemd loads them."""
    prefix, instance, unit_type = _split_unit(unit)
    contents = {posixpath.normpath(path): text for path, text in files.items()}
    # unit_file_find_fragment(): the unit's own name in any directory first, then its template.
    names = [unit] + ([f"{prefix}@.{unit_type}"] if instance else [])
    fragment = next((f"{d}/{n}" for n in names for d in SYSTEM_UNIT_DIRS if f"{d}/{n}" in contents), None)
    if fragment is not None and contents[fragment] == "":
        raise UnitMaskedError(f"{unit} is masked by {fragment}")  # null_or_empty() -> UNIT_MASKED
    if fragment is None and unit_type in _FRAGMENT_REQUIRED:
        raise ValueError(f"{unit}: no unit file among the given files; systemd would report it not-found")
    by_name: dict[str, str] = {}
    for directory in dropin_dirs(unit):  # conf_files_list_strv(): the first directory to provide a name wins
        for path in sorted(contents):
            name = posixpath.basename(path)
            if posixpath.dirname(path) == directory and name.endswith(".conf") and not name.startswith("."):
                by_name.setdefault(name, path)  # an empty (/dev/null) drop-in still claims its name
    # "applied in lexicographic order of their filename, regardless of which directory" (systemd.unit(5))
    order = ([fragment] if fragment else []) + [by_name[name] for name in sorted(by_name)]
    result: dict[str, UnitSetting | None] = {name: None for name in properties}
    for path in order:
        for lineno, key, value in _assignments(path, contents[path], section):
            if key not in result:
                continue
            if key in _MEMORY_PROPERTIES and value and not _memory_value_ok(key, value):
                continue  # config_parse_memory_limit(): "Invalid memory limit ..., ignoring" keeps the old value
            result[key] = UnitSetting(value, f"{path}:{lineno}") if value else None  # "Key=" resets
    return result


def _split_unit(unit: str) -> tuple[str, str, str]:
    """(prefix, instance, type): "getty@tty1.service" -> ("getty", "tty1", "service")."""
    stem, dot, unit_type = unit.rpartition(".")
    if not dot or not stem or not unit_type or "/" in unit:
        raise ValueError(f"not a unit name: {unit!r}")
    prefix, _, instance = stem.partition("@")
    return prefix, instance, unit_type


def _name_dirs(base: str, name: str) -> list[str]:
    """unit_file_find_dirs(): name.d, then the template's dirs, then the dashed-prefix dirs, recursively."""
    prefix, instance, unit_type = _split_unit(name)
    dirs = [f"{base}/{name}.d"]
    if instance:
        dirs += _name_dirs(base, f"{prefix}@.{unit_type}")
    chopped = False  # "foo-bar-baz" -> "foo-bar-", a trailing dash is chopped once: "foo-bar-" -> "foo-"
    while True:
        dash = prefix.rfind("-")
        if dash <= 0:
            return dirs
        if dash + 1 < len(prefix) or chopped:
            prefix = prefix[:dash + 1]
            break
        prefix, chopped = prefix[:dash], True
    return dirs + _name_dirs(base, f"{prefix}@{instance}.{unit_type}" if instance else f"{prefix}.{unit_type}")


def _assignments(path: str, content: str, section: str) -> list[tuple[int, str, str]]:
    """config_parse(): (lineno, key, value) of every assignment inside [section]."""
    found: list[tuple[int, str, str]] = []
    current: str | None = None
    logical: list[tuple[int, str]] = []
    continuation: str | None = None
    start, bom_seen = 0, False
    lines = _EOL.split(content)
    for lineno, raw in enumerate(lines[:-1] if lines[-1] == "" else lines, 1):
        if raw.lstrip(_WHITESPACE)[:1] in ("#", ";"):
            continue  # comment lines are dropped even in the middle of a continuation
        if not bom_seen and raw.startswith("\ufeff"):
            raw, bom_seen = raw[1:], True
        text = raw if continuation is None else continuation + raw
        if (len(text) - len(text.rstrip("\\"))) % 2:  # odd trailing backslashes: continue on the next line
            start = lineno if continuation is None else start
            continuation = text[:-1] + " "
            continue
        logical.append((lineno if continuation is None else start, text))
        continuation = None
    if continuation is not None:
        logical.append((start, continuation))
    for lineno, text in logical:
        line = text.strip(_WHITESPACE)
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"{path}:{lineno}: invalid section header {line!r}; systemd fails to load the unit")
            current = line[1:-1]
        elif current is not None and "=" in line and not line.startswith("="):
            key, value = line.split("=", 1)  # assignments outside a section or without a key are ignored
            if current == section:
                found.append((lineno, key.strip(_WHITESPACE), value.strip(_WHITESPACE)))
    return found


def _memory_value_ok(key: str, value: str) -> bool:
    """Would config_parse_memory_limit() accept a non-empty value for ``key``?"""
    if value == "infinity":
        return True
    permyriad = _parse_permyriad(value)
    try:
        size = permyriad if permyriad is not None else parse_size(value)
    except ValueError:
        return False
    return isinstance(size, int) and size < _U64_MAX and (size > 0 or key in _ZERO_ALLOWED)


def _parse_permyriad(text: str) -> int | None:
    """parse_permyriad(): "N‱", "N[.d]‰" or "N[.dd]%" as parts per 10000, None if not one of these."""
    for symbol, places in (("‱", 0), ("‰", 1), ("%", 2)):
        if text.endswith(symbol):
            number, dot, decimals = text[:-1].partition(".")
            if dot and (not places or not 1 <= len(decimals) <= places or not decimals.isascii()
                        or not decimals.isdigit()):
                return None
            whole = _c_atoi(number)
            if whole is None or whole < 0:
                return None
            value = whole * 10**places + int(decimals.ljust(places, "0") or 0)
            return value if value <= 10000 else None  # parse_permyriad() is bounded
    return None


def _c_atoi(text: str) -> int | None:
    match = _C_INT.fullmatch(text)
    if not match:
        return None
    base, digits = next((b, match[g]) for g, b in (("b", 2), ("o", 8), ("x", 16), ("d", 10), ("z", 8)) if match[g])
    return int(digits, base) * (-1 if match["s"] == "-" else 1)


GENERATOR_DIR = "/run/systemd/generator"  # where systemd-fstab-generator writes the units of /etc/fstab


def unit_name_from_path(path: str, suffix: str) -> str:
    """systemd's unit name for a path (``systemd-escape --path --suffix``): ``/swapfile`` ->
    ``swapfile.swap``, ``/var/lib/swap file`` -> ``var-lib-swap\\x20file.swap``.

    src/basic/unit-name.c ``unit_name_from_path`` -> ``unit_name_path_escape``: the path is simplified
    (duplicate and trailing slashes dropped), the leading ``/`` removed, every ``/`` becomes ``-``, and
    ``do_escape`` writes each byte that is not ``[A-Za-z0-9:_.]`` (and a leading ``.``) as ``\\xNN``.
    """
    parts = [part for part in path.split("/") if part and part != "."]
    if not parts:
        return "-." + suffix
    out = []
    for index, byte in enumerate("/".join(parts).encode("utf-8", "surrogateescape")):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif (char.isascii() and (char.isalnum() or char in ":_.")) and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out) + "." + suffix


def generated_unit_state(files: Mapping[str, str], unit: str) -> tuple[str, str]:
    """(LoadState, source) systemd gives a unit that a generator writes to /run/systemd/generator,
    given the files named ``unit`` in the unit directories (``files``: path -> content).

    The first directory of the search path (``SYSTEM_UNIT_DIRS``, src/basic/path-lookup.c
    ``lookup_paths_init``) that holds the name provides the unit (src/basic/unit-file.c
    ``unit_file_build_name_map``); an empty file or a symlink to /dev/null there masks it
    (``null_or_empty`` -> ``UNIT_MASKED``). So a mask in /etc/systemd/system(.control), /run/systemd/system
    (or .transient, .attached, generator.early) hides the generated unit, while one in /usr/lib,
    /lib or /usr/local/lib does not: the generator's directory comes first. Proved against
    ``systemctl show`` on a booted systemd 252 (tests/differential/test_swap_unit_differential.py).
    """
    contents = {posixpath.normpath(path): text for path, text in files.items()}
    for directory in SYSTEM_UNIT_DIRS:
        path = f"{directory}/{unit}"
        if directory == GENERATOR_DIR and path not in contents:
            return "loaded", f"{GENERATOR_DIR}/{unit} (written by the generator)"
        if path in contents:
            return ("masked" if contents[path] == "" else "loaded"), path
    return "loaded", f"{GENERATOR_DIR}/{unit} (written by the generator)"
