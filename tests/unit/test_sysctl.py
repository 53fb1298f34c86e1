"""Precedence rules of systemd-sysctl (systemd v252, Debian 12) as modelled by resources.sysctl."""
from __future__ import annotations

import pytest

from railiance_conformance.resources.sysctl import (
    SYSCTL_DIRS,
    KernelRejects,
    SysctlSetting,
    kernel_write_int,
    normalize_sysctl_key,
    resolve_sysctl,
)

ETC, RUN, LOCAL, USR, LIB = SYSCTL_DIRS


def test_dirs_are_in_priority_order() -> None:
    assert SYSCTL_DIRS == ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d",
                           "/usr/lib/sysctl.d", "/lib/sysctl.d")


# (case id, files, key, expected value or None, expected source or None)
CASES = [
    ("later file name wins regardless of directory",
     {f"{ETC}/10-a.conf": "vm.swappiness = 10\n", f"{USR}/99-b.conf": "vm.swappiness = 60\n"},
     "vm.swappiness", "60", f"{USR}/99-b.conf:1"),
    ("same name in /etc masks /usr/lib",
     {f"{ETC}/50-x.conf": "vm.swappiness = 1\n", f"{USR}/50-x.conf": "vm.swappiness = 2\nkernel.x = 3\n"},
     "vm.swappiness", "1", f"{ETC}/50-x.conf:1"),
    ("masked lower file contributes no other keys either",
     {f"{ETC}/50-x.conf": "vm.swappiness = 1\n", f"{USR}/50-x.conf": "vm.swappiness = 2\nkernel.x = 3\n"},
     "kernel.x", None, None),
    ("/dev/null symlink (empty) in /etc masks",
     {f"{ETC}/50-default.conf": "", f"{USR}/50-default.conf": "kernel.sysrq = 16\n"},
     "kernel.sysrq", None, None),
    ("/run masks /usr/local/lib",
     {f"{RUN}/20-x.conf": "net.core.somaxconn = 1\n", f"{LOCAL}/20-x.conf": "net.core.somaxconn = 2\n"},
     "net.core.somaxconn", "1", f"{RUN}/20-x.conf:1"),
    ("/etc masks /run",
     {f"{ETC}/20-x.conf": "net.core.somaxconn = 1\n", f"{RUN}/20-x.conf": "net.core.somaxconn = 2\n"},
     "net.core.somaxconn", "1", f"{ETC}/20-x.conf:1"),
    ("/usr/lib masks /lib (split-usr)",
     {f"{USR}/20-x.conf": "kernel.a = 1\n", f"{LIB}/20-x.conf": "kernel.a = 2\n"},
     "kernel.a", "1", f"{USR}/20-x.conf:1"),
    ("Debian 99-sysctl.conf sorts before 99-z.conf (strcmp on the name)",
     {f"{ETC}/99-sysctl.conf": "kernel.a = 1\n", f"{USR}/99-z.conf": "kernel.a = 2\n"},
     "kernel.a", "2", f"{USR}/99-z.conf:1"),
    ("names compare bytewise: upper case sorts before lower case",
     {f"{ETC}/a.conf": "kernel.a = lower\n", f"{USR}/Z.conf": "kernel.a = upper\n"},
     "kernel.a", "lower", f"{ETC}/a.conf:1"),
    ("later line in the same file wins",
     {f"{ETC}/10.conf": "kernel.a = 1\nkernel.a = 2\n"},
     "kernel.a", "2", f"{ETC}/10.conf:2"),
    ("identical re-assignment keeps the first source",
     {f"{ETC}/10.conf": "kernel.a = 1\n", f"{ETC}/20.conf": "kernel.a = 1\n"},
     "kernel.a", "1", f"{ETC}/10.conf:1"),
    ("slash form equals dot form",
     {f"{ETC}/10.conf": "vm.swappiness = 1\n", f"{ETC}/20.conf": "vm/swappiness = 2\n"},
     "vm.swappiness", "2", f"{ETC}/20.conf:1"),
    ("ignore-errors prefix is stripped from the key",
     {f"{ETC}/10.conf": "vm.swappiness = 1\n", f"{ETC}/20.conf": "  -vm.swappiness=3  \n"},
     "vm.swappiness", "3", f"{ETC}/20.conf:1"),
    ("'- key' with a space after the dash",
     {f"{ETC}/10.conf": "- kernel.a = 4\n"},
     "kernel.a", "4", f"{ETC}/10.conf:1"),
    ("negative entry after an assignment unsets the key",
     {f"{ETC}/10.conf": "kernel.a = 1\n", f"{ETC}/20.conf": "-kernel.a\n"},
     "kernel.a", None, None),
    ("assignment after a negative entry sets it again",
     {f"{ETC}/10.conf": "-kernel.a\n", f"{ETC}/20.conf": "kernel.a = 5\n"},
     "kernel.a", "5", f"{ETC}/20.conf:1"),
    ("comments and blank lines",
     {f"{ETC}/10.conf": "# kernel.a = 1\n\n   ; kernel.a = 2\nkernel.a = 3\n"},
     "kernel.a", "3", f"{ETC}/10.conf:4"),
    ("a trailing # is part of the value",
     {f"{ETC}/10.conf": "kernel.a = 3 # three\n"},
     "kernel.a", "3 # three", f"{ETC}/10.conf:1"),
    ("lines that are not assignments are ignored",
     {f"{ETC}/10.conf": "kernel.a\nkernel.b = 2\n"},
     "kernel.b", "2", f"{ETC}/10.conf:2"),
    ("CRLF line endings",
     {f"{ETC}/10.conf": "kernel.a = 1\r\nkernel.b = 2\r\n"},
     "kernel.b", "2", f"{ETC}/10.conf:2"),
    ("value keeps inner whitespace",
     {f"{ETC}/10.conf": "net.ipv4.ip_local_port_range = 1024 \t 65000\n"},
     "net.ipv4.ip_local_port_range", "1024 \t 65000", f"{ETC}/10.conf:1"),
    ("hidden files are not read",
     {f"{ETC}/.99-x.conf": "kernel.a = 9\n", f"{USR}/10-x.conf": "kernel.a = 1\n"},
     "kernel.a", "1", f"{USR}/10-x.conf:1"),
    ("non-.conf files are not read",
     {f"{ETC}/99-x.conf.dpkg-old": "kernel.a = 9\n", f"{USR}/10-x.conf": "kernel.a = 1\n"},
     "kernel.a", "1", f"{USR}/10-x.conf:1"),
]


@pytest.mark.parametrize("files,key,value,source", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_resolve_sysctl(files: dict[str, str], key: str, value: str | None, source: str | None) -> None:
    settings = resolve_sysctl(files)
    if value is None:
        assert key not in settings
    else:
        assert settings[key] == SysctlSetting(key, value, source)


def test_interface_names_with_dots_round_trip() -> None:
    files = {f"{ETC}/10.conf": "net/ipv4/conf/eth0.100/forwarding = 1\n",
             f"{ETC}/20.conf": "net.ipv4.conf.eth0/100.rp_filter = 2\n"}
    settings = resolve_sysctl(files)
    assert settings["net.ipv4.conf.eth0/100.forwarding"].value == "1"
    assert settings["net.ipv4.conf.eth0/100.rp_filter"].value == "2"


def test_glob_keys_are_ignored_but_do_not_hide_explicit_keys() -> None:
    files = {f"{USR}/50-default.conf": "net.ipv4.conf.default.rp_filter = 2\n"
                                       "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n"}
    settings = resolve_sysctl(files)
    assert set(settings) == {"net.ipv4.conf.default.rp_filter"}


def test_path_outside_sysctl_dirs_is_rejected() -> None:
    with pytest.raises(ValueError, match="/etc/sysctl.conf"):
        resolve_sysctl({"/etc/sysctl.conf": "kernel.a = 1\n"})


@pytest.mark.parametrize("raw,expected", [
    ("vm/swappiness", "vm.swappiness"),
    ("  vm.swappiness ", "vm.swappiness"),
    ("//kernel//./sysrq", "kernel.sysrq"),
    ("net/ipv4/conf/eth0.100/forwarding", "net.ipv4.conf.eth0/100.forwarding"),
    ("net.ipv4.conf.eth0/100.forwarding", "net.ipv4.conf.eth0/100.forwarding"),
])
def test_normalize_sysctl_key(raw: str, expected: str) -> None:
    assert normalize_sysctl_key(raw) == expected


@pytest.mark.parametrize("value,expected", [
    ("10 # keep low", 10), ("10", 10), ("  10", 10), ("\v\f10", 10), ("0x1F", 31), ("0X1f", 31), ("010", 8),
    ("0", 0), ("-0", 0), ("10\t20", 10), ("10 20", 10), ("0" * 19 + "1", 1), ("200", 200),
])
def test_kernel_write_int(value: str, expected: int) -> None:
    """kernel/sysctl.c proc_dointvec_minmax() as systemd-sysctl drives it (value + "\\n")."""
    assert kernel_write_int(value, "vm.swappiness") == expected


@pytest.mark.parametrize("value", [
    "", " ", "+5", "- 5", "-1", "201", "08", "0x", "0xg", "10abc", "10#x", "10;", "10=", "10.5", "1e2",
    "0" * 20 + "1", "4294967306", "18446744073709551626", "ten",
])
def test_kernel_write_int_rejects(value: str) -> None:
    with pytest.raises(KernelRejects):
        kernel_write_int(value, "vm.swappiness")


def test_kernel_write_int_without_the_newline() -> None:
    """A 21-byte number is rejected only if nothing follows it inside the 21-byte window."""
    assert kernel_write_int("5", "vm.swappiness", newline=False) == 5
    with pytest.raises(KernelRejects):
        kernel_write_int("0" * 21, "vm.swappiness", newline=False)
