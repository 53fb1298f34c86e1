"""Effective sysctl.d settings as systemd-sysctl applies them at boot, e.g. resolve_sysctl({"/etc/sysctl.d/99-x.conf": "vm/swappiness = 10"})["vm.swappiness"].value == "10"."""
# Modelled on systemd v252 (Debian 12 bookworm): src/sysctl/sysctl.c (parse_file, run),
# src/basic/conf-files.c (conf_files_list_strv), src/basic/sysctl-util.c (sysctl_normalize), sysctl.d(5).
# Deliberate limitations:
# * Glob keys (containing "*", "?" or "[") and "-key" glob exclusions are ignored: expanding them needs
#   the host's /proc/sys tree. systemd applies a glob only to matching keys without an explicit entry,
#   so an explicit key returned here is never overridden by a glob.
# * The sysctl.extra credential and --prefix= filtering are not modelled.
# What the kernel then does with a value is modelled by kernel_write_int() (proc_dointvec_minmax).
from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

# CONF_PATHS_STRV("sysctl.d") in src/basic/def.h; /lib/sysctl.d is added on split-usr builds.
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")

_WHITESPACE = " \t\n\r"  # WHITESPACE in src/basic/string-util.h (what strstrip() removes)
_COMMENTS = "#;"  # COMMENTS in src/basic/def.h
_GLOB_CHARS = "*?["  # string_is_glob() in src/basic/glob-util.h
# read_line() in src/basic/fileio.c: \n, \r, \0 and their combinations (\r\n, \n\r, ...\0) end a line.
_EOL = re.compile(r"(?:\n\r?|\r\n?)\0?|\0")
_SWAP_SEPARATORS = str.maketrans("./", "/.")


@dataclass(frozen=True)
class SysctlSetting:
    key: str  # dotted form as sysctl(8) prints it, e.g. "net.ipv4.conf.eth0/100.forwarding"
    value: str
    source: str  # "path:lineno" of the assignment systemd-sysctl keeps


def normalize_sysctl_key(key: str) -> str:
    """Dotted form of a sysctl key; ``vm/swappiness`` and `` vm.swappiness `` both give ``vm.swappiness``."""
    return _internal_key(key.strip(_WHITESPACE)).translate(_SWAP_SEPARATORS)


def resolve_sysctl(files: Mapping[str, str]) -> dict[str, SysctlSetting]:
    """Map each explicitly configured key to the value systemd-sysctl writes, and where it comes from.

    ``files`` maps the absolute path of every ``*.conf`` in SYSCTL_DIRS to its content (read through
    symlinks; a symlink to /dev/null is empty content). Paths outside SYSCTL_DIRS raise ValueError.
    """
    by_name: dict[str, str] = {}
    for path in files:
        directory = posixpath.dirname(posixpath.normpath(path))
        if directory not in SYSCTL_DIRS:
            raise ValueError(f"{path}: not directly inside one of {', '.join(SYSCTL_DIRS)}")
    for directory in SYSCTL_DIRS:  # files_add(): first directory (highest priority) to provide a name wins
        for path in sorted(files):
            name = posixpath.basename(path)
            # FOREACH_DIRENT skips hidden files; only the ".conf" suffix is enumerated. A /dev/null
            # symlink is not filtered (sysctl passes no CONF_FILES_FILTER_MASKED): it still claims its
            # name, which masks lower directories, and parses as empty.
            if posixpath.dirname(posixpath.normpath(path)) == directory and name.endswith(".conf") \
                    and not name.startswith("."):
                by_name.setdefault(name, path)

    # (value, source); value None is a "-key" negative entry. Insertion order mirrors systemd's ordered hashmap.
    options: dict[str, tuple[str | None, str]] = {}
    # base_cmp(): files are applied sorted by file name (strcmp), regardless of their directory.
    for name in sorted(by_name):
        path = by_name[name]
        for lineno, line in enumerate(_lines(files[path]), 1):
            _parse_line(options, line, f"{path}:{lineno}")

    settings: dict[str, SysctlSetting] = {}
    for key, (value, source) in options.items():
        if value is not None and not any(c in key for c in _GLOB_CHARS):
            dotted = key.translate(_SWAP_SEPARATORS)
            settings[dotted] = SysctlSetting(dotted, value, source)
    return settings


def _parse_line(options: dict[str, tuple[str | None, str]], line: str, source: str) -> None:
    p = line.strip(_WHITESPACE)
    if not p or p[0] in _COMMENTS:
        return
    value: str | None
    if "=" in p:
        key, value = p.split("=", 1)
        key = key[1:] if key.startswith("-") else key  # "-key = v": ignore write failures
        value = value.strip(_WHITESPACE)  # a trailing "# ..." is part of the value: comments are whole-line only
    elif p.startswith("-"):
        key, value = p[1:], None  # "-key" without "=": negative match (excludes key from globs)
    else:
        return  # "Line is not an assignment, ignoring"
    key = _internal_key(key.strip(_WHITESPACE))
    if not key:
        return
    existing = options.get(key)
    if existing is not None and existing[0] == value:
        return  # parse_file(): an identical re-assignment keeps the existing entry (and its source)
    # parse_file(): a different later assignment replaces the earlier one ("Overwriting earlier
    # assignment"); a later "-key" replaces it with a value-less entry, so the key is not written at all.
    options.pop(key, None)
    options[key] = (value, source)


def _internal_key(key: str) -> str:
    """sysctl_normalize(): systemd's slash-separated form of a key."""
    first = re.search(r"[./]", key)
    if first and first.group() == ".":
        # "If the first separator is a dot, dots and slashes are interchanged" (sysctl.d(5)).
        key = key.translate(_SWAP_SEPARATORS)
    # path_simplify() drops empty and "." components; the leading slash is then removed.
    return "/".join(part for part in key.split("/") if part not in ("", "."))


def _lines(content: str) -> list[str]:
    lines = _EOL.split(content)
    return lines[:-1] if lines and lines[-1] == "" else lines


# Per-key kernel knowledge is data: sysctl_keys.yaml beside this file (range: the [min, max] of a
# proc_dointvec_minmax() key, its ctl_table's extra1/extra2; default: its value at boot before
# systemd-sysctl writes anything; source: where the kernel defines them).
KEYS_FILE = Path(__file__).with_name("sysctl_keys.yaml")
_KEYS = yaml.safe_load(KEYS_FILE.read_text(encoding="utf-8")) or {}
INT_RANGES = {key: tuple(entry["range"]) for key, entry in _KEYS.items() if "range" in entry}
# Other keys are read as plain proc_dointvec() ints (no min/max): the whole int range.
INT_RANGE_DEFAULT = (-2**31, 2**31 - 1)
KERNEL_DEFAULTS = {key: entry["default"] for key, entry in _KEYS.items() if "default" in entry}

_TMPBUFLEN = 22  # kernel/sysctl.c: the longest number proc_get_long() reads is TMPBUFLEN - 1 bytes
_PERM_TR = b" \t\n"  # proc_wspace_sep[]: what may follow a number
_KERNEL_SPACE = frozenset(b" \t\n\v\f\r\xa0")  # isspace() of lib/ctype.c (0xA0 is _S|_SP there)
_INT_MAX = 2**31 - 1


class KernelRejects(ValueError):
    """The kernel refuses a write to /proc/sys (EINVAL): the key keeps its previous value."""


def kernel_write_int(value: str, key: str, *, newline: bool = True) -> int:
    """The int the kernel stores when ``value`` is written to the single-int key ``key``, e.g. "10 # low" -> 10.

    Follows __do_proc_dointvec() + proc_get_long() + do_proc_dointvec_minmax_conv() of kernel/sysctl.c:
    leading isspace() bytes are skipped, an optional '-', then at least one digit read by strtoul base 0
    (``0x`` hex, leading-0 octal); the number must be shorter than TMPBUFLEN - 1 bytes and end at the
    end of the buffer or before ' ', '\\t' or '\\n'; the rest is ignored (one int is read). The result must
    fit an int and lie in INT_RANGES[key] (min/max of the key's ctl_table entry). systemd-sysctl writes the value followed by "\\n" (``newline``;
    write_string_file() without WRITE_STRING_FILE_AVOID_NEWLINE). Raises KernelRejects (EINVAL) with the
    reason. A key not in INT_RANGES is read as a plain proc_dointvec() int (the whole int range).
    """
    low, high = INT_RANGES.get(key, INT_RANGE_DEFAULT)
    data = value.encode("utf-8", "surrogateescape") + (b"\n" if newline else b"")
    pos = 0
    while pos < len(data) and data[pos] in _KERNEL_SPACE:  # proc_skip_spaces()
        pos += 1
    size = len(data) - pos
    if size == 0:
        raise KernelRejects("no number at all")
    tmp = data[pos:pos + _TMPBUFLEN - 1]  # proc_get_long() copies at most TMPBUFLEN - 1 bytes
    negative = tmp[:1] == b"-" and size > 1
    digits_at = 1 if negative else 0
    if not tmp[digits_at:digits_at + 1].isdigit():
        raise KernelRejects("it does not start with a digit")
    number, end = _strtoul_base0(tmp, digits_at)
    if number is None:
        raise KernelRejects("the number does not fit an unsigned long (ERANGE)")
    if end == _TMPBUFLEN - 1:
        raise KernelRejects(f"the number is {_TMPBUFLEN - 1} bytes or longer")
    if end < size and tmp[end:end + 1] not in (b" ", b"\t", b"\n"):
        raise KernelRejects(f"the number is followed by {chr(tmp[end])!r}, not a blank")
    if negative and number > _INT_MAX + 1 or not negative and number > _INT_MAX:
        raise KernelRejects("the number does not fit an int")
    result = -number if negative else number
    if not low <= result <= high:
        raise KernelRejects(f"{result} is outside {low}..{high}")
    return result


def _strtoul_base0(text: bytes, start: int) -> tuple[int | None, int]:
    """_parse_integer_fixup_radix() + _parse_integer() of lib/kstrtox.c: (value or None on overflow, end)."""
    base, pos = 10, start
    if text[pos:pos + 1] == b"0":
        base = 8
        if text[pos + 1:pos + 2] in (b"x", b"X") and text[pos + 2:pos + 3] and \
                text[pos + 2:pos + 3] in b"0123456789abcdefABCDEF":
            base, pos = 16, pos + 2
    alphabet = b"0123456789abcdef"[:base]
    number, overflow = 0, False
    while pos < len(text) and text[pos:pos + 1].lower() in alphabet and text[pos:pos + 1]:
        number = number * base + int(chr(text[pos]), 16)
        overflow = overflow or number > 2**64 - 1
        pos += 1
    return (None if overflow else number), pos
