"""Small parsers for host files and command outputs: stat lines, /proc/swaps, fstab, limits.

Example: ``parse_proc_swaps(text)["/swapfile"]`` -> ``SwapEntry(type="file", size_kib=4194300)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileStat:
    kind: str       # "regular file", "directory", "symbolic link", ...
    owner: str
    uid: int
    mode: str       # octal, 4 digits: "0600"
    size: int
    blocks: int     # 512-byte blocks allocated

    @property
    def is_regular(self) -> bool:
        return self.kind in ("regular file", "regular empty file")


def parse_stat(line: str) -> FileStat:
    """``regular file|root|0|600|4294967296|8388608`` (``stat -c %F|%U|%u|%a|%s|%b``)."""
    kind, owner, uid, mode, size, blocks = line.strip().split("|")
    return FileStat(kind, owner, int(uid), mode.zfill(4), int(size), int(blocks))


@dataclass(frozen=True, slots=True)
class SwapEntry:
    type: str
    size_kib: int


def parse_proc_swaps(text: str) -> dict[str, SwapEntry]:
    """``/proc/swaps`` -> {filename: entry}; octal escapes (``\\040``) decoded."""
    entries = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3:
            entries[_unescape(fields[0])] = SwapEntry(fields[1], int(fields[2]))
    return entries


@dataclass(frozen=True, slots=True)
class FstabEntry:
    spec: str
    file: str
    vfstype: str
    options: str
    line: int


def parse_fstab(text: str) -> tuple[list[FstabEntry], list[tuple[int, str]]]:
    """Active entries, and commented-out lines (kept as evidence of a disabled entry)."""
    active, commented = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            commented.append((number, line))
            continue
        fields = line.split()
        if len(fields) >= 3:
            active.append(FstabEntry(_unescape(fields[0]), _unescape(fields[1]), fields[2],
                                     fields[3] if len(fields) > 3 else "defaults", number))
    return active, commented


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def parse_proc_limits(text: str, name: str = "Max processes") -> tuple[int | str, int | str]:
    """``/proc/<pid>/limits`` -> (soft, hard) of one limit; "unlimited" stays a string."""
    for line in text.splitlines():
        if line.startswith(name):
            soft, hard = line[len(name):].split()[:2]
            return (soft if soft == "unlimited" else int(soft), hard if hard == "unlimited" else int(hard))
    raise ValueError(f"no {name!r} line in the limits")


def parse_key_values(text: str, sep: str = "=") -> dict[str, str]:
    """``KEY=value`` lines (``systemctl show``) or ``key value`` lines (``ssh -G``, sep=" ")."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if sep in line:
            key, value = line.split(sep, 1)
            out.setdefault(key.strip(), value.strip())
    return out
