"""resources.sysctl (resolve_sysctl + kernel_write_int) against systemd-sysctl and the kernel, on generated input.

Each generated case is a set of sysctl.d files across the four directories (colliding names, repeated keys,
``-key``, comments, odd whitespace, CR/LF, /dev/null masks, hex/octal/garbage/out-of-range values) for
net.ipv4.ip_default_ttl: a per-network-namespace key with the same handler as vm.swappiness
(proc_dointvec_minmax, range 1..255). In one private mount + network namespace, for each case: the
directories are tmpfs, the key is set to the case's "previous" value, ``systemd-sysctl --prefix`` runs and
/proc/sys is read back. The model: resolve_sysctl() picks the value, kernel_write_int() reads it, a
rejected value leaves the previous one. No machine-wide key is ever written (the worker refuses to run in
PID 1's network namespace, and --prefix limits systemd-sysctl to the one per-namespace key).
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.resources.sysctl import KernelRejects, kernel_write_int, resolve_sysctl
from tests.differential.namespace import NamespaceWorker, unavailable_reason

KEY = "net.ipv4.ip_default_ttl"
SYSTEMD_SYSCTL = next((p for p in ("/lib/systemd/systemd-sysctl", "/usr/lib/systemd/systemd-sysctl")
                       if os.path.exists(p)), None)
# /lib/sysctl.d is only a directory of its own on split-usr systems; on merged /usr it is /usr/lib/sysctl.d.
DIRS = ["/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d"] + \
    (["/lib/sysctl.d"] if os.path.realpath("/lib/sysctl.d") != "/usr/lib/sysctl.d" else [])

WORKER = r'''
KNOB = "/proc/sys/net/ipv4/ip_default_ttl"
ENV = dict(os.environ, SYSTEMD_LOG_TARGET="console", SYSTEMD_LOG_LEVEL="err")

def setup(config):
    global DIRS, TOOL
    DIRS, TOOL = [shadow(d) for d in config["dirs"]], config["tool"]

def handle(case):
    for d in DIRS:
        clear(d)
    for path, content in case["files"]:
        if content is None:
            os.symlink("/dev/null", path)
        else:
            with open(path, "wb") as f:
                f.write(content.encode("utf-8", "surrogateescape"))
    with open(KNOB, "w") as f:
        f.write(str(case["previous"]))
    done = subprocess.run([TOOL, "--prefix", "net.ipv4.ip_default_ttl"], env=ENV, capture_output=True, text=True)
    with open(KNOB) as f:
        return {"value": int(f.read()), "rc": done.returncode, "log": done.stderr[-500:]}
'''

# ---- generated input -------------------------------------------------------------------------------------
key_spelling = st.sampled_from([
    KEY, KEY, KEY, KEY, KEY, "net/ipv4/ip_default_ttl", "net/ipv4/ip_default_ttl", "/net/ipv4/ip_default_ttl", "net.ipv4.ip_default_ttl.", "net//ipv4/./ip_default_ttl",
    "net.ipv4/ip_default_ttl", "NET.ipv4.ip_default_ttl", "net.ipv4.ip_default_tt", "net.ipv4.ip_default_ttl_x",
])
blank = st.sampled_from(["", " ", "\t", "  \t "])
numeral = st.builds(
    lambda n, style: {"dec": str(n), "hex": ("-" if n < 0 else "") + f"0x{abs(n):x}",
                      "HEX": ("-" if n < 0 else "") + f"0X{abs(n):X}", "oct": ("-" if n < 0 else "") + f"0{abs(n):o}",
                      "zeros": ("-" if n < 0 else "") + "0000" + str(abs(n))}[style],
    st.one_of(st.integers(0, 300), st.integers(0, 300), st.integers(-300, 600), st.integers(-2**65, 2**65)),
    st.sampled_from(["dec", "dec", "hex", "HEX", "oct", "zeros"]))
value = st.one_of(
    st.builds(lambda n: str(n), st.integers(1, 255)),
    st.builds(lambda pre, n, post: pre + n + post,
              st.sampled_from(["", "", "", "", "", " ", "\v", "\f", "+", "-", "0", "- ", "x"]), numeral,
              st.sampled_from(["", "", "", "", "", "", " # keep low", " # keep low", "\t20", " 7", "abc", "8", "9", ";x", "=5", "\f", "\v1",
                               ".5", " \t", "x"])),
    st.text(alphabet=" \t\v\f0123456789xXabcfg#-+;=.", max_size=24),
    st.sampled_from(["0x", "08", "0x1g", "-", "", "0" * 20 + "7", "0" * 19 + "64", "1" * 21, "18446744073709551616",
                     "18446744073709551615", "-2147483648", "2147483647", "4294967360", "00", "-0"]))
assignment = st.builds(lambda lead, dash, key, b1, b2, v, trail: f"{lead}{dash}{key}{b1}={b2}{v}{trail}",
                       blank, st.sampled_from(["", "", "-", "- ", " -"]), key_spelling, blank, blank, value, blank)
line = st.sampled_from(["assign"] * 6 + ["negative", "comment", "blank", "bare", "nokey"]).flatmap(lambda kind: {
    "assign": assignment,
    "negative": st.builds(lambda lead, key: f"{lead}-{key}", blank, key_spelling),  # "-key": negative entry
    "comment": st.builds(lambda c, a: c + a, st.sampled_from(["#", ";", " # ", "\t;"]), assignment),
    "blank": blank, "bare": key_spelling, "nokey": st.just("=5")}[kind])
eol = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])
content = st.builds(lambda lines, ends, last: "".join(l + e for l, e in zip(lines, ends, strict=False)) + last,
                    st.lists(line, min_size=1, max_size=6), st.lists(eol, min_size=6, max_size=6),
                    st.sampled_from(["", "", "net.ipv4.ip_default_ttl = 9"]))
name = st.sampled_from(["10-a.conf", "10-a.conf", "50-x.conf", "50-x.conf", "50-x.conf", "99-z.conf", "99-z.conf",
                        "99-sysctl.conf", "Z.conf",
                        ".hidden.conf", "50-x.conf.dpkg-old", "README"])
masked_or = st.sampled_from([False] * 6 + [True]).flatmap(lambda masked: st.none() if masked else content)
one_file = st.tuples(st.sampled_from(DIRS), name, masked_or)
case = st.fixed_dictionaries({
    "files": st.lists(one_file, min_size=1, max_size=5, unique_by=lambda f: (f[0], f[1])),
    "previous": st.integers(1, 255),
})


def model(files: list[tuple[str, str, str | None]], previous: int) -> int:
    """What the resolver says /proc/sys/net/ipv4/ip_default_ttl holds after systemd-sysctl ran."""
    contents = {f"{d}/{n}": c or "" for d, n, c in files}
    setting = resolve_sysctl(contents).get(KEY)
    if setting is None:
        return previous
    try:
        return kernel_write_int(setting.value, KEY)
    except KernelRejects:
        return previous


@pytest.fixture(scope="module")
def systemd_sysctl():
    """systemd-sysctl in a private mount + network namespace: ``ask(case)`` -> {"value": ..., "rc": ...}."""
    reason = unavailable_reason() or (None if SYSTEMD_SYSCTL else "systemd-sysctl is not installed")
    if reason:
        pytest.fail(f"differential test cannot run: {reason}")  # never a silent skip
    with NamespaceWorker(WORKER, {"dirs": DIRS, "tool": SYSTEMD_SYSCTL}, net=True) as worker:
        yield worker


def real(worker: NamespaceWorker, files: list, previous: int) -> dict:
    return worker.ask({"files": [[f"{d}/{n}", c] for d, n, c in files], "previous": previous})


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=case)
def test_resolver_equals_systemd_sysctl_and_the_kernel(systemd_sysctl, case: dict) -> None:
    answer = real(systemd_sysctl, case["files"], case["previous"])
    assert model(case["files"], case["previous"]) == answer["value"], answer["log"]


# Named cases: the example and every disagreement the generated cases ever found.
NAMED = {
    "trailing comment is handed to the kernel, which stores the number":
        ([(DIRS[0], "99-x.conf", f"{KEY} = 10 # keep low\n")], 64, 10),
    "hex value": ([(DIRS[0], "99-x.conf", f"{KEY} = 0x20\n")], 64, 32),
    "leading-0 octal value": ([(DIRS[0], "99-x.conf", f"{KEY} = 010\n")], 64, 8),
    "8 is no octal digit: rejected, previous value kept": ([(DIRS[0], "99-x.conf", f"{KEY} = 08\n")], 77, 77),
    "out of range: rejected, previous value kept": ([(DIRS[0], "99-x.conf", f"{KEY} = 256\n")], 77, 77),
    "trailing garbage: rejected": ([(DIRS[0], "99-x.conf", f"{KEY} = 10abc\n")], 77, 77),
    "second number ignored": ([(DIRS[0], "99-x.conf", f"{KEY} = 10\t20\n")], 77, 10),
    "21 digits are too long even with leading zeros": ([(DIRS[0], "99-x.conf", f"{KEY} = {'0' * 19}64\n")], 77, 77),
    "vertical tab before the number is skipped by the kernel": ([(DIRS[0], "99-x.conf", f"{KEY} = \v12\n")], 77, 12),
    "'- key' with a blank after the dash":
        ([(DIRS[0], "10-a.conf", f"- {KEY} = 12\n")], 77, 12),
}


@pytest.mark.parametrize("files,previous,expected", NAMED.values(), ids=NAMED.keys())
def test_named_case(systemd_sysctl, files: list, previous: int, expected: int) -> None:
    assert model(files, previous) == expected
    assert real(systemd_sysctl, files, previous)["value"] == expected
