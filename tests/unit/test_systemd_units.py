"""Unit search path, drop-in precedence and MemoryMax= parsing (systemd v252, Debian 12)."""
from __future__ import annotations

import pytest

from railiance_conformance.resources.systemd_units import (
    SYSTEM_UNIT_DIRS,
    UnitMaskedError,
    UnitSetting,
    dropin_dirs,
    parse_size,
    resolve_unit_properties,
)

GIB = 1024**3
ETC, USR, LIB = "/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"
CONTROL, RUN, TRANSIENT = "/etc/systemd/system.control", "/run/systemd/system", "/run/systemd/transient"


@pytest.mark.parametrize("text,expected", [
    ("1500M", 1572864000), ("512M", 536870912), ("1.5G", 1610612736), ("1G", GIB), ("2T", 2 * 1024**4),
    ("1P", 1024**5), ("1E", 1024**6), ("1K", 1024), ("4096", 4096), ("4096B", 4096), ("0", 0),
    ("1G 512M", GIB + 512 * 1024**2), ("1G512M", GIB + 512 * 1024**2), ("10.M", 10 * 1024**2),
    ("1.25K", 1280), ("0.5", 0), ("+5M", 5 * 1024**2), ("infinity", "infinity"),
])
def test_parse_size(text: str, expected: int | str) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", [
    "", "abc", "1.5GB", "5 MB", "512M1G", "1M1M", "-5M", "1m", "1Gi", "Infinity", "16E", ".5G", "150%", "1.234%",
    "5.5‱", "max",
])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text, mem_total=8 * GIB)


# physical_memory_scale(): whole pages of 8 GiB (2097152 pages) * permyriad // 10000, rounded down to pages
@pytest.mark.parametrize("text,expected", [
    ("100%", 8 * GIB), ("0%", 0), ("25%", 2 * GIB), ("50.5%", 1059061 * 4096), ("0.5%", 10485 * 4096),
    ("5‰", 10485 * 4096), ("1‱", 209 * 4096), ("10.5‰", 22020 * 4096), ("0x10%", 335544 * 4096),
    ("010%", 167772 * 4096),  # safe_atoi() uses strtol() base 0: a leading 0 means octal
])
def test_parse_size_relative_to_physical_memory(text: str, expected: int) -> None:
    assert parse_size(text, mem_total=8 * GIB) == expected


def test_parse_size_percentage_needs_mem_total() -> None:
    with pytest.raises(ValueError, match="mem_total"):
        parse_size("50%")


@pytest.mark.parametrize("value,expected", [
    (1572864000, "1500M"), (536870912, "512M"), (GIB, "1G"), (1610612736, "1536M"), (1000, "1000"),
    (0, "0"), (1024**6, "1E"), ("infinity", "infinity"),
])
def test_parse_size_reads_systemd_suffixes(value: int | str, expected: str) -> None:
    assert parse_size(expected) == value


def test_system_unit_dirs_order() -> None:
    order = [CONTROL, "/run/systemd/system.control", TRANSIENT, ETC, RUN, "/usr/local/lib/systemd/system", LIB, USR]
    assert [d for d in SYSTEM_UNIT_DIRS if d in order] == order


def test_dropin_dirs_for_user_slice() -> None:
    dirs = dropin_dirs("user-1000.slice")
    assert dirs[:2] == [f"{CONTROL}/user-1000.slice.d", f"{CONTROL}/user-.slice.d"]
    for base in SYSTEM_UNIT_DIRS:
        assert {f"{base}/user-1000.slice.d", f"{base}/user-.slice.d", f"{base}/slice.d"} <= set(dirs)
    # in each directory the specific name comes before its prefix; every "slice.d" comes after all names
    assert dirs.index(f"{ETC}/user-1000.slice.d") + 1 == dirs.index(f"{ETC}/user-.slice.d")
    assert dirs[-len(SYSTEM_UNIT_DIRS):] == [f"{base}/slice.d" for base in SYSTEM_UNIT_DIRS]


@pytest.mark.parametrize("unit,expected", [
    ("foo-bar-baz.service", ["foo-bar-baz.service.d", "foo-bar-.service.d", "foo-.service.d", "service.d"]),
    ("getty@tty1.service", ["getty@tty1.service.d", "getty@.service.d", "service.d"]),
    ("foo-bar@x.service", ["foo-bar@x.service.d", "foo-bar@.service.d", "foo-.service.d", "foo-@x.service.d",
                           "foo-@.service.d", "service.d"]),
    ("-.slice", ["-.slice.d", "slice.d"]),
    ("user.slice", ["user.slice.d", "slice.d"]),
])
def test_dropin_dirs_names(unit: str, expected: list[str]) -> None:
    assert [d.rsplit("/", 1)[1] for d in dropin_dirs(unit) if d.startswith(f"{ETC}/")] == expected


def resolve(files: dict[str, str], unit: str = "user-1000.slice", prop: str = "MemoryMax",
            section: str = "Slice") -> UnitSetting | None:
    return resolve_unit_properties(files, unit=unit, section=section, properties=[prop])[prop]


def slice_(value: str) -> str:
    return f"[Slice]\nMemoryMax={value}\n"


# (case id, files, expected value or None, expected source or None)
CASES = [
    ("drop-in overrides the fragment",
     {f"{TRANSIENT}/user-1000.slice": slice_("1G"), f"{ETC}/user-1000.slice.d/10.conf": slice_("2G")},
     "2G", f"{ETC}/user-1000.slice.d/10.conf:2"),
    ("drop-ins apply by file name regardless of directory: /usr/lib 99 beats /etc 10",
     {f"{ETC}/user-1000.slice.d/10-a.conf": slice_("1G"), f"{USR}/user-1000.slice.d/99-b.conf": slice_("2G")},
     "2G", f"{USR}/user-1000.slice.d/99-b.conf:2"),
    ("same-named drop-in in /etc masks /usr/lib",
     {f"{ETC}/user-1000.slice.d/50.conf": slice_("1G"), f"{USR}/user-1000.slice.d/50.conf": slice_("2G")},
     "1G", f"{ETC}/user-1000.slice.d/50.conf:2"),
    ("systemctl set-property (system.control) masks a same-named /etc drop-in",
     {f"{CONTROL}/user-1000.slice.d/50-MemoryMax.conf": slice_("1G"),
      f"{ETC}/user-1000.slice.d/50-MemoryMax.conf": slice_("2G")},
     "1G", f"{CONTROL}/user-1000.slice.d/50-MemoryMax.conf:2"),
    ("/dev/null drop-in masks the same name lower down",
     {f"{ETC}/user-.slice.d/50.conf": "", f"{USR}/user-.slice.d/50.conf": slice_("2G")},
     None, None),
    ("same directory: specific name beats the prefix for the same file name",
     {f"{ETC}/user-1000.slice.d/50.conf": slice_("1G"), f"{ETC}/user-.slice.d/50.conf": slice_("2G")},
     "1G", f"{ETC}/user-1000.slice.d/50.conf:2"),
    ("same file name: a prefix drop-in in /etc beats a specific one in /usr/lib",
     {f"{ETC}/user-.slice.d/50.conf": slice_("1G"), f"{USR}/user-1000.slice.d/50.conf": slice_("2G")},
     "1G", f"{ETC}/user-.slice.d/50.conf:2"),
    ("prefix drop-in with a later name wins over a specific one",
     {f"{ETC}/user-1000.slice.d/10.conf": slice_("1G"), f"{USR}/user-.slice.d/90.conf": slice_("2G")},
     "2G", f"{USR}/user-.slice.d/90.conf:2"),
    ("same file name: top-level slice.d in /etc loses to a named drop-in in /usr/lib",
     {f"{ETC}/slice.d/50.conf": slice_("1G"), f"{USR}/user-.slice.d/50.conf": slice_("2G")},
     "2G", f"{USR}/user-.slice.d/50.conf:2"),
    ("top-level slice.d applies when its name sorts last",
     {f"{USR}/user-.slice.d/10.conf": slice_("1G"), f"{ETC}/slice.d/90.conf": slice_("3G")},
     "3G", f"{ETC}/slice.d/90.conf:2"),
    ("empty assignment resets",
     {f"{USR}/user-.slice.d/10.conf": slice_("1G"), f"{ETC}/user-1000.slice.d/20.conf": slice_("")},
     None, None),
    ("assignment after a reset",
     {f"{ETC}/user-1000.slice.d/20.conf": "[Slice]\nMemoryMax=\nMemoryMax=3G\n"},
     "3G", f"{ETC}/user-1000.slice.d/20.conf:3"),
    ("invalid value is ignored and the earlier value kept",
     {f"{USR}/user-.slice.d/10.conf": slice_("1G"), f"{ETC}/user-1000.slice.d/20.conf": slice_("lots")},
     "1G", f"{USR}/user-.slice.d/10.conf:2"),
    ("MemoryMax=0 is out of range and ignored",
     {f"{USR}/user-.slice.d/10.conf": slice_("1G"), f"{ETC}/user-1000.slice.d/20.conf": slice_("0")},
     "1G", f"{USR}/user-.slice.d/10.conf:2"),
    ("later assignment in the same file wins",
     {f"{ETC}/user-1000.slice.d/10.conf": "[Slice]\nMemoryMax=1G\nMemoryMax=2G\n"},
     "2G", f"{ETC}/user-1000.slice.d/10.conf:3"),
    ("other sections and comments are ignored",
     {f"{ETC}/user-1000.slice.d/10.conf":
      "[Unit]\nMemoryMax=9G\n[Slice]\n# MemoryMax=8G\n; MemoryMax=7G\nMemoryMax = 1G \n[Install]\nMemoryMax=6G\n"},
     "1G", f"{ETC}/user-1000.slice.d/10.conf:6"),
    ("assignment before any section is ignored",
     {f"{ETC}/user-1000.slice.d/10.conf": "MemoryMax=9G\n[Slice]\n"}, None, None),
    ("backslash continues a line; comment lines inside are dropped",
     {f"{ETC}/user-1000.slice.d/10.conf": "[Slice]\nMemoryMax=1G\\\n# comment\n 512M\n"},
     "1G  512M", f"{ETC}/user-1000.slice.d/10.conf:2"),
    ("an escaped backslash does not continue",
     {f"{ETC}/user-1000.slice.d/10.conf": "[Slice]\nDescription=a\\\\\nMemoryMax=1G\n"},
     "1G", f"{ETC}/user-1000.slice.d/10.conf:3"),
    ("hidden and non-.conf drop-ins are not read",
     {f"{ETC}/user-1000.slice.d/.99.conf": slice_("9G"), f"{ETC}/user-1000.slice.d/99.conf.bak": slice_("8G"),
      f"{ETC}/user-1000.slice.d/10.conf": slice_("1G")},
     "1G", f"{ETC}/user-1000.slice.d/10.conf:2"),
    ("files of other units are ignored",
     {f"{ETC}/user-1001.slice.d/10.conf": slice_("9G"), f"{ETC}/user.slice.d/10.conf": slice_("8G")},
     None, None),
]


@pytest.mark.parametrize("files,value,source", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_resolve_unit_properties(files: dict[str, str], value: str | None, source: str | None) -> None:
    expected = None if value is None else UnitSetting(value, source)
    assert resolve(files) == expected


def test_memory_swap_max_zero_is_valid() -> None:
    files = {f"{ETC}/user-1000.slice.d/10.conf": "[Slice]\nMemorySwapMax=0\n"}
    assert resolve(files, prop="MemorySwapMax") == UnitSetting("0", f"{ETC}/user-1000.slice.d/10.conf:2")


def test_unrequested_properties_are_none() -> None:
    result = resolve_unit_properties({f"{ETC}/user-1000.slice.d/10.conf": slice_("1G")}, unit="user-1000.slice",
                                     section="Slice", properties=["MemoryMax", "TasksMax"])
    assert result["TasksMax"] is None and result["MemoryMax"] is not None


def test_fragment_search_order() -> None:
    files = {f"{LIB}/foo.service": "[Service]\nMemoryMax=1G\n", f"{ETC}/foo.service": "[Service]\nMemoryMax=2G\n"}
    assert resolve(files, "foo.service", section="Service").value == "2G"


def test_instance_name_beats_template_in_a_higher_directory() -> None:
    files = {f"{ETC}/getty@.service": "[Service]\nMemoryMax=1G\n", f"{USR}/getty@tty1.service": "[Service]\n"}
    assert resolve(files, "getty@tty1.service", section="Service") is None


def test_template_is_the_fragment_of_an_instance() -> None:
    files = {f"{USR}/getty@.service": "[Service]\nMemoryMax=1G\n"}
    assert resolve(files, "getty@tty1.service", section="Service") == UnitSetting("1G", f"{USR}/getty@.service:2")


def test_masked_fragment() -> None:
    with pytest.raises(UnitMaskedError, match=f"{ETC}/foo.service"):
        resolve({f"{ETC}/foo.service": "", f"{USR}/foo.service": "[Service]\n"}, "foo.service", section="Service")


def test_service_without_fragment_is_not_found() -> None:
    with pytest.raises(ValueError, match="not-found"):
        resolve({f"{ETC}/foo.service.d/10.conf": "[Service]\nMemoryMax=1G\n"}, "foo.service", section="Service")


def test_invalid_section_header() -> None:
    with pytest.raises(ValueError, match=f"{ETC}/user-1000.slice.d/10.conf:1"):
        resolve({f"{ETC}/user-1000.slice.d/10.conf": "[Slice\nMemoryMax=1G\n"})
