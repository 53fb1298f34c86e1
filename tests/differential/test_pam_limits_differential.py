"""resources.pam_limits against Debian's real pam_limits.so in a real PAM session, on generated limits files.

A worker in a private mount namespace hides /etc/security behind a tmpfs and binds its own /etc/passwd and
/etc/group (users alice, bob, carol, root and their groups) over the machine's, so nothing of this machine is
read or changed. For each generated case (limits.conf plus limits.d drop-ins: users, @groups, %, uid/gid
ranges, '*', '-' lines, 'unlimited'/'infinity'/-1, quoted and garbage values, comments, odd case and
blanks) and each user, a forked child opens a PAM session through libpam (pam_start_confdir with a
service file holding only ``session required pam_limits.so``) and reports getrlimit() for nproc, core
and msgqueue. The worker first sets its own limits to values PID 1 does not have, so "pam_limits left it
alone" and "Debian reset it to PID 1's" are told apart. The model: resolve_limit() per item, unset
halves from /proc/1/limits (Debian patch 027), an exempting '<domain> -' line leaving the inherited
limits, setup_limits() lowering a soft limit above the hard one, and setrlimit() refusing to raise a
hard limit without CAP_SYS_RESOURCE (a container's root may lack it; Debian patch 032 keeps the session).
"""
from __future__ import annotations

import os
import resource

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.resources.host_files import parse_proc_limits
from railiance_conformance.resources.pam_limits import (
    LIMITS_CONF,
    LIMITS_D,
    UNLIMITED,
    order_limits_files,
    resolve_limit,
)
from tests.differential.namespace import NamespaceWorker, unavailable_reason

INF = 2**64 - 1
ITEMS = {"nproc": ("RLIMIT_NPROC", "Max processes", 1), "core": ("RLIMIT_CORE", "Max core file size", 1024),
         "msgqueue": ("RLIMIT_MSGQUEUE", "Max msgqueue size", 1)}
# What the worker sets on itself (soft, hard) before any session: soft values PID 1 does not have; the hard
# limits stay as they are (without CAP_SYS_RESOURCE they could not be raised again).
INHERITED = {item: (soft, resource.getrlimit(getattr(resource, ITEMS[item][0]))[1] % 2**64)  # -1 is RLIM_INFINITY
             for item, soft in (("nproc", 4321), ("core", 12345), ("msgqueue", 3456))}


def _can_raise_hard_limits() -> bool:
    """CAP_SYS_RESOURCE (bit 24) in the effective set: without it setrlimit() may not raise a hard limit."""
    with open("/proc/self/status") as f:
        cap_eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(cap_eff >> 24 & 1)
GROUPS = {"root": (0, []), "devs": (27, ["alice"]), "alice": (1000, []), "bob": (1001, []),
          "ops": (2000, ["carol", "alice"]), "carol": (70000, [])}
USERS = {"root": (0, 0), "alice": (1000, 1000), "bob": (1001, 27), "carol": (70000, 70000)}

WORKER = r'''
import ctypes, resource

def setup(config):
    global CONFDIR
    shadow("/etc/security")
    os.makedirs("/etc/security/limits.d")
    private = shadow(config["private"])
    for name in ("passwd", "group"):
        with open(f"{private}/{name}", "w") as f:
            f.write(config[name])
        mount("--bind", f"{private}/{name}", f"/etc/{name}")
    if os.path.exists("/dev/log"):
        mount("--bind", "/dev/null", "/dev/log")  # pam_syslog() of skipped lines goes nowhere
    CONFDIR = f"{private}/pam.d"
    os.makedirs(CONFDIR)
    with open(f"{CONFDIR}/railiance-limits", "w") as f:
        f.write("session required pam_limits.so\n")
    for name, (soft, hard) in config["inherited"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))

def session_limits(user, items):
    """Fork; the child opens a PAM session for ``user`` and reports its rlimits (or the PAM error)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            pam = ctypes.CDLL("libpam.so.0")
            conv_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
            class Conv(ctypes.Structure):
                _fields_ = [("conv", conv_type), ("appdata", ctypes.c_void_p)]
            conv = Conv(conv_type(lambda n, m, r, d: 19), None)  # PAM_CONV_ERR: nothing to ask
            handle = ctypes.c_void_p()
            rc = pam.pam_start_confdir(b"railiance-limits", user.encode(), ctypes.byref(conv),
                                       CONFDIR.encode(), ctypes.byref(handle))
            if rc == 0:
                rc = pam.pam_open_session(handle, 0)
            out = {"pam_rc": rc, "limits": {i: resource.getrlimit(getattr(resource, i)) for i in items}}
            os.write(write, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b"null")

def handle(case):
    clear("/etc/security")
    os.makedirs("/etc/security/limits.d")
    for path, content in case["files"]:
        with open(path, "w") as f:
            f.write(content)
    return {user: session_limits(user, case["items"]) for user in case["users"]}
'''


def _db() -> tuple[str, str]:
    passwd = "".join(f"{u}:x:{uid}:{gid}::/nonexistent:/usr/sbin/nologin\n" for u, (uid, gid) in USERS.items())
    group = "".join(f"{g}:x:{gid}:{','.join(members)}\n" for g, (gid, members) in GROUPS.items())
    return passwd, group


def _identity(user: str) -> dict:
    """resolve_limit()'s view of the user, as `id` would give it from the worker's passwd and group."""
    uid, gid = USERS[user]
    groups = [g for g, (g_id, members) in GROUPS.items() if g_id == gid or user in members]
    return {"user": user, "uid": uid, "groups": groups, "gid": gid, "gids": [GROUPS[g][0] for g in groups]}


def _pid1() -> dict[str, tuple[int, int]]:
    with open("/proc/1/limits") as f:
        text = f.read()
    out = {}
    for item, (_, name, _) in ITEMS.items():
        soft, hard = parse_proc_limits(text, name)
        out[item] = (INF if soft == "unlimited" else soft, INF if hard == "unlimited" else hard)
    return out


@pytest.fixture(scope="module")
def pam_session(tmp_path_factory):
    """Debian's pam_limits.so behind a private mount namespace: ``ask(case)`` -> {user: {pam_rc, limits}}."""
    reason = unavailable_reason()
    if reason is None and not any(os.path.exists(f"{d}/security/pam_limits.so")
                                  for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/security")):
        reason = "pam_limits.so (libpam-modules) is not installed"
    if reason:
        pytest.fail(f"differential test cannot run: {reason}")  # never a silent skip
    passwd, group = _db()
    config = {"private": str(tmp_path_factory.mktemp("pam-private")), "passwd": passwd, "group": group,
              "inherited": {ITEMS[i][0]: [soft, -1 if hard == INF else hard] for i, (soft, hard) in INHERITED.items()}}
    with NamespaceWorker(WORKER, config) as worker:
        yield worker


def model(files: list[tuple[str, str]], user: str, pid1: dict) -> dict[str, list[int]]:
    """The rlimits (bytes, not limits.conf units) the resolver says a session of ``user`` gets."""
    contents = dict(files)
    ordered = [(p, contents[p]) for p in order_limits_files(contents)]
    out = {}
    for item, (_, _, scale) in ITEMS.items():
        resolved = resolve_limit(ordered, item=item, **_identity(user))
        if resolved.exempt_source:
            out[item] = list(INHERITED[item])
            continue
        soft, hard = (pid1[item][i] if v is None else INF if v == UNLIMITED else v * scale
                      for i, v in enumerate((resolved.soft, resolved.hard)))
        if hard > INHERITED[item][1] and not _can_raise_hard_limits():
            out[item] = list(INHERITED[item])  # setrlimit(): EPERM, not fatal on Debian (patch 032)
            continue
        out[item] = [min(soft, hard), hard]  # setup_limits(): "rlim_cur > rlim_max" -> rlim_cur = rlim_max
    return out


def real(worker: NamespaceWorker, files: list[tuple[str, str]]) -> dict:
    return worker.ask({"files": files, "users": list(USERS), "items": [ITEMS[i][0] for i in ITEMS]})


def disagreements(worker: NamespaceWorker, files: list[tuple[str, str]]) -> dict:
    pid1, answer, found = _pid1(), real(worker, files), {}
    for user in USERS:
        got = answer[user]
        expected = model(files, user, pid1)
        observed = {i: [v % 2**64 for v in got["limits"][ITEMS[i][0]]] for i in ITEMS} if got["pam_rc"] == 0 else got
        if observed != expected:
            found[user] = {"model": expected, "pam_limits": observed}
    return found


# ---- generated input -------------------------------------------------------------------------------------
domain = st.sampled_from([
    "alice", "alice", "bob", "carol", "root", "Alice", "*", "*", "@devs", "@alice", "@ops", "@nogroup", "@root",
    "%", "%devs", "1000:", ":1000", "0:", ":0", "900:1000", "1001:2000", "1002:", "@27:", "@:27", "@:1000",
    "@1000:1001", "@:0", "@0:", "%:27", "%1000:", "@:", ":", "1000:x", "x:", "-5:", "1000:1000:1000",
])
ltype = st.sampled_from(["soft", "hard", "-", "soft", "hard", "-", "SOFT", "Hard", "hrad", "-x", "--"])
item = st.sampled_from(["nproc", "nproc", "core", "msgqueue", "NPROC", "Core", "nprocs", "maxlogins2"])
value = st.one_of(
    st.integers(1, 5000).map(str), st.integers(1, 5000).map(str),
    st.sampled_from(["unlimited", "UNLIMITED", "infinity", "-1", "-", "0", '"1024"', "'1024'", "lots", "100abc",
                     "-5", "+7", "0x10", "18446744073709551615", "18446744073709551616", "99999999999999999999999",
                     str(2**64 // 1024), str(2**64 // 1024 - 1)]))
line = st.sampled_from(["full"] * 8 + ["exempt", "three", "two", "one", "comment", "blank"]).flatmap(lambda kind: {
    "full": st.builds(lambda *f: " ".join(f), domain, ltype, item, value),
    "exempt": st.builds(lambda d, t: f"{d} {t}", domain, st.sampled_from(["-", "-", "-nproc", "soft"])),
    "three": st.builds(lambda *f: " ".join(f), domain, ltype, item),
    "two": st.builds(lambda *f: " ".join(f), domain, ltype),
    "one": domain,
    "comment": st.builds(lambda *f: "# " + " ".join(f), domain, ltype, item, value),
    "blank": st.sampled_from(["", "   ", "\t"]),
}[kind])
spacing = st.sampled_from([" ", " ", "\t", "  \t", "\r"])


def _layout(text: str, space: str, trailer: str) -> str:
    return text.replace(" ", space) + trailer


content = st.lists(st.builds(_layout, line, spacing, st.sampled_from(["", "", "  # note", " #x", "\t"])),
                   min_size=1, max_size=5).map(lambda lines: "\n".join(lines) + "\n")
dropin = st.tuples(st.sampled_from(["10-a.conf", "90-z.conf", "Z.conf", "a.conf", ".hidden.conf", "x.conf.bak",
                                    "README"]).map(lambda n: f"{LIMITS_D}/{n}"), content)
limits_files = st.builds(lambda conf, dropins: [(LIMITS_CONF, conf)] + dropins,
                         content, st.lists(dropin, max_size=3, unique_by=lambda f: f[0]))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=limits_files)
def test_resolver_equals_pam_limits(pam_session, files: list[tuple[str, str]]) -> None:
    assert disagreements(pam_session, files) == {}


# Named cases: the example and every disagreement the generated cases ever found.
NAMED = {
    "quoted value is skipped: the hard limit is unset":
        [(LIMITS_CONF, 'alice soft nproc 512\nalice hard nproc "1024"\n')],
    "user line beats a later * line": [(LIMITS_CONF, "alice hard nproc 10\n* hard nproc 99\n")],
    "'-' line exempts the user from every file": [(LIMITS_CONF, "alice hard nproc 5\n"),
                                                   (f"{LIMITS_D}/10.conf", "alice -\n* soft nproc 6\n")],
    "* and @group do not apply to root (Debian patch 027)":
        [(LIMITS_CONF, "* hard nproc 10\n@root hard nproc 11\n")],
    "soft above hard is lowered to hard": [(LIMITS_CONF, "alice soft nproc 900\nalice hard nproc 800\n")],
    "core is in KB": [(LIMITS_CONF, "alice - core 7\n")],
}


@pytest.mark.parametrize("files", NAMED.values(), ids=NAMED.keys())
def test_named_case(pam_session, files: list[tuple[str, str]]) -> None:
    assert disagreements(pam_session, files) == {}


def test_the_quoted_value_example_has_its_reason() -> None:
    resolved = resolve_limit(NAMED["quoted value is skipped: the hard limit is unset"],
                             **_identity("alice"))
    assert (resolved.soft, resolved.hard) == (512, None)
    assert [s.describe() for s in resolved.skipped] == [
        f"pam_limits skips {LIMITS_CONF}:2 'alice hard nproc \"1024\"' (wrong limit value '\"1024\"': not a number)"]
