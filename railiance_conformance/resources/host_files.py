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
    options: str  # "" when the line has no options field (libmount: NULL, i.e. the defaults)
    line: int


def parse_fstab(text: str) -> tuple[list[FstabEntry], list[tuple[int, str]]]:
    """Entries as libmount reads /etc/fstab, and commented-out lines (evidence of a disabled entry).

    Follows util-linux 2.38 libmount/src/tab_parse.c (mnt_table_parse_next, mnt_parse_table_line):
    a trailing "\\r" is dropped, leading blanks skipped, a line starting with '#' is a comment; fields are
    separated by spaces and tabs only, each ``\\ooo`` octal escape is decoded (unmangle()); source, target
    and type are required, options optional; freq and passno, if present, must be decimal numbers ending
    at a blank or the line's end, else the whole line is a parse error and ignored (as findmnt, mount -a,
    swapon -a and systemd-fstab-generator, which all use libmount, ignore it). Fields after passno are
    ignored. Lines are counted by "\\n".
    """
    active, commented = [], []
    for number, raw in enumerate(text.split("\n"), 1):
        line = (raw[:-1] if raw.endswith("\r") else raw).lstrip(" \t")  # one DOS "\r" is dropped
        if not line:
            continue
        if line.startswith("#"):
            commented.append((number, line))
            continue
        fields = [f for f in re.split(r"[ \t]+", line) if f]
        if len(fields) < 3 or not all(_c_number_field(f) for f in fields[4:6]):
            continue  # "parse error at line N -- ignored"
        active.append(FstabEntry(_unescape(fields[0]), _unescape(fields[1]), _unescape(fields[2]),
                                 _unescape(fields[3]) if len(fields) > 3 else "", number))
    return active, commented


def parse_mntent(text: str) -> tuple[list[FstabEntry], list[tuple[int, str]]]:
    """Entries as glibc's getmntent() reads /etc/fstab, which is what systemd v252's fstab-generator uses.

    glibc misc/mntent_r.c (__getmntent_r, decode_name): trailing spaces and tabs are cut, lines that are
    empty or start with '#' after leading blanks are skipped; the first four fields are separated by
    single spaces/tabs (runs skipped), missing ones are "", and only ``\\040``, ``\\011``, ``\\012``,
    ``\\134`` and ``\\\\`` are decoded; freq and passno are read with sscanf and never make a line invalid.
    So a line libmount rejects (``0 x``) still counts at boot, and a "\\r" stays part of the last field.
    """
    entries, commented = [], []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip(" \t")
        head = line.lstrip(" \t")
        if not head:
            continue
        if head.startswith("#"):
            commented.append((number, head))
            continue
        fields: list[str] = []
        rest: str | None = head
        for _ in range(4):
            if rest is None:
                fields.append("")
                continue
            match = re.search(r"[ \t]", rest)
            field, rest = (rest, None) if match is None else (rest[:match.start()], rest[match.end():].lstrip(" \t"))
            fields.append(_decode_name(field))
        entries.append(FstabEntry(fields[0], fields[1], fields[2], fields[3], number))
    return entries, commented


def _decode_name(field: str) -> str:
    return re.sub(r"\\(040|011|012|134|\\)", lambda m: {"040": " ", "011": "\t", "012": "\n"}.get(m[1], "\\"), field)


def _c_number_field(field: str) -> bool:
    """next_s32(): strtol(s, &end, 10) must read a number that ends the field."""
    return re.fullmatch(r"[\v\f\r\n]*[+-]?[0-9]+", field) is not None


def swap_at_boot(entry: FstabEntry) -> str | None:
    """None if systemd activates this swap entry at boot, else why not.

    systemd v252 src/fstab-generator/fstab-generator.c: parse_fstab() reads ``noauto``/``auto`` with
    fstab_test_yes_no_option() (the last of the two wins) and add_swap() links the swap unit into
    swap.target (``requires``, or ``wants`` with ``nofail``) only without noauto. ``nofail``, ``pri=``,
    ``discard``, ``sw``/``defaults`` and ``x-systemd.*`` options do not stop activation. util-linux
    ``swapon -a`` (sys-utils/swapon.c) also skips ``noauto`` entries.
    """
    if entry.vfstype != "swap":
        return f"type {entry.vfstype!r} is not swap"
    last = next((o for o in reversed(entry.options.split(",")) if o in ("noauto", "auto")), None)
    if last == "noauto":
        return ("option noauto: systemd-fstab-generator writes the swap unit but does not add it to "
                "swap.target, so it is not enabled at boot")
    path = swap_spec_path(entry.spec)  # LABEL=/UUID= become /dev/disk/by-*/ nodes (fstab_node_to_udev_node())
    if "x-systemd.makefs" in entry.options.split(",") and path is not None and not path.startswith("/dev/"):
        # add_swap() -> generator_hook_up_mkswap(): "Cannot format something that is not a device node"
        return ("option x-systemd.makefs on a path that is not a device node: systemd-fstab-generator fails "
                "on this entry and writes no swap unit")
    return None


def swap_spec_path(spec: str) -> str | None:
    """The path a swap entry's source names, path-simplified; None for LABEL=/UUID=/PARTUUID=/PARTLABEL= tags."""
    if re.match(r"(LABEL|UUID|PARTUUID|PARTLABEL|ID)=", spec):
        return None
    simplified = "/".join(p for p in spec.split("/") if p not in ("", "."))
    return ("/" if spec.startswith("/") else "") + simplified


def _unescape(field: str) -> str:
    """unmangle(): each backslash followed by three octal digits is that byte (\\040 is a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8) & 0xFF), field)


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
