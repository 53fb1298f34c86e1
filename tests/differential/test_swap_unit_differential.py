"""host.swap.fstab (fstab entry + systemd's unit directories) against systemd 252 itself, on generated input.

A booted nspawn host gets, per generated case, an /etc/fstab (a swap line for /swapfile with sw,
defaults, nofail, noauto, pri=, commented out, or none) and files named ``swapfile.swap`` in unit
directories (/etc/systemd/system, system.control, /run/systemd/system, transient, attached,
/usr/local/lib, /usr/lib): a symlink to /dev/null (``systemctl mask``), an empty file, or a unit
of its own. After ``systemctl daemon-reload`` the suite's own fact script runs (one SSH command,
as in production) and the control's "enabled at boot" must equal systemd's: ``systemctl show
swapfile.swap`` reports ``LoadState=loaded`` and ``swap.target`` Requires/Wants it.

systemd-fstab-generator skips swap entries inside a container ("Running in a container, ignoring
fstab swap entry"), so the host runs the *real* generator through a wrapper of the same name in
/etc/systemd/system-generators (which overrides /lib's) that starts it as PID 1 of a private PID
and mount namespace with ``container=`` empty and /run/host, /run/systemd/container hidden: the
generator then writes the swap unit exactly as on a machine. Nothing else about it is changed.
"""
from __future__ import annotations

import secrets
import shlex
import subprocess
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from railiance_conformance.probes.host_facts import HostFacts, decode_remote
from railiance_conformance.probes.host_script import build_script, parse_output
from railiance_conformance.vocabulary import check_kinds
from railiance_testbed.hosts import CONFORMANT
from railiance_testbed.nspawn import SSH_PORT, Testbed
from tests.conftest import nspawn_unavailable_reason

WRAPPER = """#!/bin/sh
# the real fstab generator, run as on a machine (it ignores swap entries inside a container)
: > /run/rcf-not-a-container
exec unshare --mount --pid --fork --mount-proc sh -c 'mount -t tmpfs none /run/host && mount --bind /run/rcf-not-a-container /run/systemd/container && exec env container= /lib/systemd/system-generators/systemd-fstab-generator "$@"' sh "$@"
"""
UNIT_DIRS = ["/etc/systemd/system", "/etc/systemd/system.control", "/run/systemd/system",
             "/run/systemd/system.control", "/run/systemd/transient", "/etc/systemd/system.attached",
             "/run/systemd/system.attached", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system"]
FSTAB_LINES = ["/swapfile none swap sw 0 0", "/swapfile none swap defaults,nofail 0 0", "/swapfile none swap sw,noauto 0 0",
               "#/swapfile none swap sw 0 0", "/swapfile  none  swap  pri=5", "/swapfile none swap noauto,auto 0 0", ""]
FILES = st.sampled_from(["null", "null", "empty", "unit"])
CASES = st.tuples(st.sampled_from(FSTAB_LINES), st.dictionaries(st.sampled_from(UNIT_DIRS), FILES, max_size=3))


def _ssh(bed, host, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", str(bed.ssh_config), "-p", str(SSH_PORT), f"root@{host.address}",
                           f"sh -c {shlex.quote(script)}"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([replace(CONFORMANT, name="swapunit", root_login=True)], tmp_path_factory.mktemp("swapunit")) as bed:
        nspawn = bed.hosts[0]
        setup = (f"mkdir -p /etc/systemd/system-generators && printf %s {shlex.quote(WRAPPER)} > "
                 "/etc/systemd/system-generators/systemd-fstab-generator && "
                 "chmod 755 /etc/systemd/system-generators/systemd-fstab-generator && "
                 "cp /etc/fstab /run/rcf-fstab && mount --bind /run/rcf-fstab /etc/fstab && systemctl daemon-reload && "
                 "systemctl show swapfile.swap -p LoadState --value")
        done = _ssh(bed, nspawn, setup)
        assert done.stdout.decode().strip() == "loaded", (done.stdout, done.stderr)  # the generator writes swap units
        yield bed, nspawn, []


def _write_script(previous: list[str], fstab_line: str, files: dict[str, str]) -> str:
    lines = [f"rm -f {' '.join(shlex.quote(p) for p in previous)}" if previous else ":",
             f"printf '%s\\n' {shlex.quote('proc /proc proc defaults 0 0')} {shlex.quote(fstab_line)} > /run/rcf-fstab"]
    for directory, kind in files.items():
        path = shlex.quote(f"{directory}/swapfile.swap")
        lines.append(f"mkdir -p {shlex.quote(directory)}")
        lines.append({"null": f"ln -sfn /dev/null {path}", "empty": f": > {path}",
                      "unit": f"printf '[Swap]\\nWhat=/swapfile\\n' > {path}"}[kind])
    lines.append("systemctl daemon-reload")
    return "\n".join(lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_enabled_at_boot_equals_systemds_view(host, case):
    bed, nspawn, written = host
    fstab_line, files = case
    params = {"path": "/swapfile"}
    kind = check_kinds()["host.fstab.swap"]
    boundary = "@@rcf-" + secrets.token_hex(8)
    show = ("{ systemctl show swapfile.swap -p LoadState; systemctl show swap.target -p Requires -p Wants; } "
            "| sed 's/^/@@systemd /'")  # before the fact script, which ends the shell
    script = _write_script(written, fstab_line, files) + "\n" + show + "\n" + build_script(kind.facts(params), boundary)
    written[:] = [f"{d}/swapfile.swap" for d in files]
    for _ in range(2):  # one retry: a busy machine can drop an SSH session
        done = _ssh(bed, nspawn, script)
        out = decode_remote(done.stdout)
        shown = dict(line[len("@@systemd "):].split("=", 1) for line in out.splitlines() if line.startswith("@@systemd "))
        suite_part = "\n".join(line for line in out.splitlines(keepends=False) if not line.startswith("@@systemd ")) + "\n"
        if "LoadState" in shown:
            break
    assert "LoadState" in shown, (done.returncode, out[-500:], done.stderr[-500:])
    systemd = shown["LoadState"] == "loaded" and "swapfile.swap" in (shown["Requires"] + " " + shown["Wants"]).split()
    outcome = kind.evaluate(HostFacts("swapunit", parse_output(suite_part, boundary)), params)
    ours = isinstance(outcome.observed, dict) and outcome.observed["enabled_at_boot"] is True
    event(f"systemd: LoadState={shown['LoadState']}, enabled={systemd}")
    assert ours == systemd, (fstab_line, files, shown, outcome)


PATHS = st.lists(st.text(st.sampled_from("abz09._-: \\é/#"), min_size=1, max_size=8), min_size=1, max_size=3).map(
    lambda parts: "/" + "/".join(parts))


@settings(max_examples=200, deadline=None)
@given(path=PATHS)
def test_the_swap_unit_name_equals_systemd_escape(path):
    """The unit the fstab generator writes for a swap path: unit_name_from_path vs ``systemd-escape --path``."""
    from railiance_conformance.resources.systemd_units import unit_name_from_path
    done = subprocess.run(["systemd-escape", "--path", "--suffix=swap", "--", path], capture_output=True, text=True)
    if done.returncode != 0:  # systemd refuses the path (e.g. "..", or too long): not a unit the generator writes
        return
    assert unit_name_from_path(path, "swap") == done.stdout.strip(), path
