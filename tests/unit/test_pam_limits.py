"""Precedence rules of pam_limits (Linux-PAM 1.5.2 + Debian 12 patches) as modelled by resources.pam_limits."""
from __future__ import annotations

import pytest

from railiance_conformance.resources.pam_limits import (
    LIMITS_CONF,
    UNLIMITED,
    ResolvedLimit,
    order_limits_files,
    resolve_limit,
)

D = "/etc/security/limits.d"
ALICE = {"user": "alice", "uid": 1000, "groups": ["alice", "devs"], "gid": 1000, "gids": [1000, 27]}
ROOT = {"user": "root", "uid": 0, "groups": ["root", "devs"], "gid": 0, "gids": [0, 27]}


def conf(*lines: str) -> list[tuple[str, str]]:
    """Everything in limits.conf, one line per argument."""
    return [(LIMITS_CONF, "\n".join(lines) + "\n")]


# (case id, files, who, expected (soft, hard, soft line, hard line) with lines as "path:lineno")
CASES = [
    ("user entry beats a later * entry",
     conf("alice hard nproc 10", "* hard nproc 99"), ALICE, (None, 10, None, f"{LIMITS_CONF}:1")),
    ("user entry beats an earlier * entry",
     conf("* hard nproc 99", "alice hard nproc 10"), ALICE, (None, 10, None, f"{LIMITS_CONF}:2")),
    ("later * entry beats an earlier * entry",
     conf("* soft nproc 1", "* soft nproc 2"), ALICE, (2, None, f"{LIMITS_CONF}:2", None)),
    ("later user entry beats an earlier user entry",
     conf("alice soft nproc 1", "alice soft nproc 2"), ALICE, (2, None, f"{LIMITS_CONF}:2", None)),
    ("@group beats a later *",
     conf("@devs hard nproc 5", "* hard nproc 6"), ALICE, (None, 5, None, f"{LIMITS_CONF}:1")),
    ("user beats an earlier @group",
     conf("alice hard nproc 4", "@devs hard nproc 5"), ALICE, (None, 4, None, f"{LIMITS_CONF}:1")),
    ("@group for a group the user is not in",
     conf("@ops hard nproc 5"), ALICE, (None, None, None, None)),
    ("later @group beats earlier @group",
     conf("@alice hard nproc 5", "@devs hard nproc 6"), ALICE, (None, 6, None, f"{LIMITS_CONF}:2")),
    ("'-' sets soft and hard",
     conf("alice - nproc 7"), ALICE, (7, 7, f"{LIMITS_CONF}:1", f"{LIMITS_CONF}:1")),
    ("soft and hard resolve independently",
     conf("* soft nproc 1", "alice hard nproc 2"), ALICE, (1, 2, f"{LIMITS_CONF}:1", f"{LIMITS_CONF}:2")),
    ("'-' whose soft half is blocked skips its hard half too (early return)",
     conf("alice soft nproc 10", "* - nproc 50"), ALICE, (10, None, f"{LIMITS_CONF}:1", None)),
    ("'-' whose hard half is blocked still sets soft",
     conf("alice hard nproc 10", "* - nproc 50"), ALICE, (50, 10, f"{LIMITS_CONF}:2", f"{LIMITS_CONF}:1")),
    ("* does not apply to uid 0 (Debian patch 027)",
     conf("* hard nproc 10"), ROOT, (None, None, None, None)),
    ("@group does not apply to uid 0 (Debian patch 027)",
     conf("@devs hard nproc 10"), ROOT, (None, None, None, None)),
    ("root is matched by its literal name",
     conf("root hard nproc 10"), ROOT, (None, 10, None, f"{LIMITS_CONF}:1")),
    ("uid range applies to root",
     conf("0:10 hard nproc 11"), ROOT, (None, 11, None, f"{LIMITS_CONF}:1")),
    ("for root an @gid range is read as a uid range",
     conf("@:0 hard nproc 12"), ROOT, (None, 12, None, f"{LIMITS_CONF}:1")),
    ("domain matching is case-sensitive",
     conf("Alice hard nproc 10"), ALICE, (None, None, None, None)),
    ("min: uid range",
     conf("1000: hard nproc 3"), ALICE, (None, 3, None, f"{LIMITS_CONF}:1")),
    ("min:max uid range",
     conf("900:1000 hard nproc 3"), ALICE, (None, 3, None, f"{LIMITS_CONF}:1")),
    ("uid range that excludes the user",
     conf("1001: hard nproc 3", "500:999 hard nproc 4"), ALICE, (None, None, None, None)),
    (":uid is an exact match",
     conf(":1000 hard nproc 3", ":999 hard nproc 4"), ALICE, (None, 3, None, f"{LIMITS_CONF}:1")),
    ("uid range ranks like a user name, above a later @group",
     conf("1000: hard nproc 3", "@devs hard nproc 4"), ALICE, (None, 3, None, f"{LIMITS_CONF}:1")),
    ("@min: gid range checks the primary gid",
     conf("@1000: hard nproc 3"), ALICE, (None, 3, None, f"{LIMITS_CONF}:1")),
    ("@min:max gid range ignores supplementary gids",
     conf("@20:30 hard nproc 3"), ALICE, (None, None, None, None)),
    ("@:gid exact match checks supplementary gids",
     conf("@:27 hard nproc 3"), ALICE, (None, 3, None, f"{LIMITS_CONF}:1")),
    ("gid range ranks as a group, below a later user entry",
     conf("@:27 hard nproc 3", "alice hard nproc 4"), ALICE, (None, 4, None, f"{LIMITS_CONF}:2")),
    ("% domains only affect maxlogins",
     conf("% hard nproc 3", "%devs hard nproc 4"), ALICE, (None, None, None, None)),
    ("other items do not interfere",
     conf("alice hard nofile 3", "* hard nproc 4"), ALICE, (None, 4, None, f"{LIMITS_CONF}:2")),
    ("limits.d at equal priority overrides limits.conf",
     [(LIMITS_CONF, "* hard nproc 1\n"), (f"{D}/90.conf", "* hard nproc 2\n")], ALICE,
     (None, 2, None, f"{D}/90.conf:1")),
    ("limits.conf user entry beats limits.d * entry",
     [(LIMITS_CONF, "alice hard nproc 1\n"), (f"{D}/90.conf", "* hard nproc 2\n")], ALICE,
     (None, 1, None, f"{LIMITS_CONF}:1")),
    ("comments and blank lines",
     conf("# alice hard nproc 1", "", "   alice\thard  nproc 2   # two", "  #alice hard nproc 3"), ALICE,
     (None, 2, None, f"{LIMITS_CONF}:3")),
    ("type, item and value are case-insensitive",
     conf("alice HARD NPROC UNLIMITED"), ALICE, (None, UNLIMITED, None, f"{LIMITS_CONF}:1")),
    ("extra fields are ignored",
     conf("alice hard nproc 5 trailing words"), ALICE, (None, 5, None, f"{LIMITS_CONF}:1")),
]


@pytest.mark.parametrize("files,who,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_precedence(files: list[tuple[str, str]], who: dict, expected: tuple) -> None:
    resolved = resolve_limit(files, **who)
    assert (resolved.soft, resolved.hard, resolved.soft_source, resolved.hard_source) == expected


@pytest.mark.parametrize("value,expected", [
    ("unlimited", UNLIMITED), ("infinity", UNLIMITED), ("-1", UNLIMITED), ("-", UNLIMITED),
    ("0", 0), ("4096", 4096), ("100abc", 100), ("18446744073709551615", UNLIMITED),
    ("99999999999999999999999", UNLIMITED), ("-2", 2**64 - 2),
])
def test_values(value: str, expected: int | str) -> None:
    assert resolve_limit(conf(f"alice hard nproc {value}"), **ALICE).hard == expected


@pytest.mark.parametrize("item,value,expected", [
    ("stack", "8192", 8192),  # KB, as written
    ("stack", str(2**64 // 1024), UNLIMITED),  # "* 1024" would overflow: pam_limits saturates
    ("cpu", str(2**64 // 60), UNLIMITED),
    ("nofile", "unlimited", UNLIMITED),
    ("nice", "-25", -20),  # clamped to [-20, 19]
    ("nice", "5", 5),
])
def test_item_units(item: str, value: str, expected: int | str) -> None:
    assert resolve_limit(conf(f"alice hard {item} {value}"), item=item, **ALICE).hard == expected


@pytest.mark.parametrize("exempt_line", ["alice -", "@devs -", "1000: -", ":1000 -", "@:27 -"])
def test_no_limit_line_discards_everything(exempt_line: str) -> None:
    files = [(LIMITS_CONF, "alice hard nproc 5\n"), (f"{D}/10.conf", f"{exempt_line}\n* soft nproc 6\n")]
    assert resolve_limit(files, **ALICE) == ResolvedLimit(None, None, None, None, f"{D}/10.conf:1")


@pytest.mark.parametrize("line", ["* -", "% -", "bob -", "@ops -", "1001: -"])
def test_no_limit_line_for_someone_else(line: str) -> None:
    assert resolve_limit(conf(line, "alice hard nproc 5"), **ALICE).hard == 5


def test_no_limit_group_line_applies_to_root() -> None:
    assert resolve_limit(conf("@devs -", "root hard nproc 5"), **ROOT).exempt_source == f"{LIMITS_CONF}:1"


@pytest.mark.parametrize("line,why,halves", [
    ("alice hard nproc lots", "wrong limit value 'lots': not a number", ("hard",)),
    ('alice hard nproc "1024"', "wrong limit value '\"1024\"': not a number", ("hard",)),
    ("alice hrad nproc 5", "unknown limit type 'hrad'", ("soft", "hard")),
    ("alice hard nprocs 5", "unknown limit item 'nprocs'", ("hard",)),
    ("alice hard nproc", "invalid line: 3 fields, pam_limits needs <domain> <type> <item> <value>", ("hard",)),
    ("alice hard", "invalid line: 2 fields, pam_limits needs <domain> <type> <item> <value>", ("hard",)),
    ("1000:x hard nproc 5", "invalid uid/gid range '1000:x'", ("hard",)),
    ("* soft nproc abc", "wrong limit value 'abc': not a number", ("soft",)),
    ("% hard nproc 5", "a '%' domain is valid for maxlogins only", ("hard",)),
    ("%devs - nproc 5", "a '%' domain is valid for maxlogins only", ("soft", "hard")),
])
def test_skipped_lines_that_may_be_meant_for_the_user_are_facts(line: str, why: str, halves: tuple) -> None:
    """pam_limits skips them (the limit stays as the other lines make it); the resolver says which and why."""
    resolved = resolve_limit(conf("* hard nproc 9", line), **ALICE)
    assert resolved.hard == 9
    assert [(s.source, s.text, s.why, s.halves) for s in resolved.skipped] == [
        (f"{LIMITS_CONF}:2", " ".join(line.split()), why, halves)]


@pytest.mark.parametrize("line", [
    "bob hard nproc lots", "alice hard nofile lots", "@ops hrad nproc 5", "junk", "@ops hard nproc", "bob -",
])
def test_skipped_lines_for_others_are_not_listed(line: str) -> None:
    resolved = resolve_limit(conf("* hard nproc 9", line), **ALICE)
    assert (resolved.hard, resolved.skipped) == (9, ())


def test_quoted_value_leaves_the_hard_limit_unset() -> None:
    """A quoted value: `tegwick hard nproc "1024"` is skipped, so no line sets the hard limit."""
    resolved = resolve_limit(conf("tegwick soft nproc 512", 'tegwick hard nproc "1024"'), user="tegwick", uid=1000,
                             groups=["tegwick"])
    assert (resolved.soft, resolved.hard, resolved.hard_source) == (512, None, None)
    assert resolved.skipped[0].describe() == (f"pam_limits skips {LIMITS_CONF}:2 'tegwick hard nproc \"1024\"' "
                                              "(wrong limit value '\"1024\"': not a number)")


def test_gid_range_needs_gid() -> None:
    with pytest.raises(ValueError, match="gid"):
        resolve_limit(conf("@100: hard nproc 5"), user="alice", uid=1000, groups=["alice"])


def test_unsupported_item() -> None:
    with pytest.raises(ValueError, match="maxlogins"):
        resolve_limit(conf("alice - maxlogins 2"), item="maxlogins", **ALICE)


def test_order_limits_files() -> None:
    paths = [f"{D}/b.conf", f"{D}/9-x.conf", f"{D}/10-x.conf", f"{D}/Z.conf", LIMITS_CONF,
             f"{D}/.hidden.conf", f"{D}/README", "/etc/security/other.conf"]
    assert order_limits_files(paths) == [LIMITS_CONF, f"{D}/10-x.conf", f"{D}/9-x.conf", f"{D}/Z.conf",
                                         f"{D}/b.conf"]
