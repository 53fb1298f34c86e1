"""host.slice.configured (the suite's drop-in merge) against systemd itself, on generated drop-in sets.

A booted nspawn host (real systemd 252) gets a generated set of drop-ins for user-1000.slice and
user-.slice across the unit directories (system.control, /etc, /run, /usr/lib, /usr/local/lib):
colliding names that mask lower directories, /dev/null masks, empty assignments that reset,
sizes with every suffix systemd knows and some it does not, percentages, invalid values and
sections it ignores. After ``systemctl daemon-reload`` the suite's own fact script runs (one SSH
command, as in production) and the configured view the resolver computes from the dumped files
must equal what ``systemctl show user-1000.slice`` reports, for MemoryMax and MemorySwapMax.
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

# the testbed binds this one read-only; generated files never take its path
BOUND = "/etc/systemd/system/user-1000.slice.d/50-resource-limits.conf"
DIRS = ["/etc/systemd/system.control/user-1000.slice.d", "/etc/systemd/system/user-1000.slice.d",
        "/run/systemd/system/user-1000.slice.d", "/usr/local/lib/systemd/system/user-1000.slice.d",
        "/usr/lib/systemd/system/user-1000.slice.d", "/etc/systemd/system/user-.slice.d",
        "/run/systemd/system/user-.slice.d", "/usr/lib/systemd/system/user-.slice.d",
        "/run/systemd/system.control/user-1000.slice.d"]
NAMES = ["10-a.conf", "50-resource-limits.conf", "60-b.conf", "99-z.conf", "README", ".hidden.conf"]
SIZES = ["1500M", "2G", "1G", "512M", "768K", "infinity", "", "1073741824", "50%", "12.5%", "1.5G", "2g", "0",
         "-1", " 3G ", "0x1000", "1T", "10E", "5‰", "1‱", "1G 512M", "100B", "4096"]
KEYS = ["MemoryMax", "MemorySwapMax", "MemoryMax", "MemorySwapMax", "memorymax", "MemoryHigh"]
SECTIONS = ["[Slice]", "[Slice]", "[Slice]", "[Unit]", "[slice]"]
LINE = st.one_of(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["=", " = ", "= "]), st.sampled_from(SIZES)).map("".join),
    st.sampled_from(["# a comment", "; another", "", "Description=x"]))
DROPIN = st.one_of(st.none(),  # None: a symlink to /dev/null (masks the name in lower directories)
                   st.tuples(st.sampled_from(SECTIONS), st.lists(LINE, max_size=4),
                             st.lists(LINE, max_size=2)).map(lambda t: "\n".join([t[0], *t[1], "[Slice]", *t[2]]) + "\n"))
SETS = st.dictionaries(st.tuples(st.sampled_from(DIRS), st.sampled_from(NAMES)).map("/".join)
                       .filter(lambda p: p != BOUND), DROPIN, max_size=6)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([replace(CONFORMANT, name="dropins", root_login=True)], tmp_path_factory.mktemp("dropins")) as bed:
        yield bed, bed.hosts[0], []


def _write_script(previous: list[str], files: dict[str, str | None]) -> str:
    lines = [f"rm -f {' '.join(shlex.quote(p) for p in previous)}" if previous else ":"]
    for path, content in files.items():
        directory = shlex.quote(path.rsplit("/", 1)[0])
        if content is None:
            lines.append(f"mkdir -p {directory} && ln -sfn /dev/null {shlex.quote(path)}")
        else:
            lines.append(f"mkdir -p {directory} && printf %s {shlex.quote(content)} > {shlex.quote(path)}")
    lines.append("systemctl daemon-reload")
    return "\n".join(lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=SETS)
def test_the_suites_drop_in_merge_equals_systemds(host, files):
    bed, nspawn, written = host
    params = {"unit": "user-1000.slice", "properties": {"MemoryMax": "1500M", "MemorySwapMax": "512M"}}
    configured_kind, effective_kind = check_kinds()["host.systemd.configured"], check_kinds()["host.systemd.effective"]
    boundary = "@@rcf-" + secrets.token_hex(8)
    script = _write_script(written, files) + "\n" + build_script(
        [*configured_kind.facts(params), *effective_kind.facts(params)], boundary)
    written[:] = list(files)
    done = subprocess.run(["ssh", "-F", str(bed.ssh_config), "-p", str(SSH_PORT), f"root@{nspawn.address}",
                           f"sh -c {shlex.quote(script)}"], capture_output=True, timeout=60)
    facts = HostFacts("dropins", parse_output(decode_remote(done.stdout), boundary))
    effective = effective_kind.evaluate(facts, params)
    configured = configured_kind.evaluate(facts, params)
    systemd = effective.observed
    ours = {k: ("infinity" if v == "infinity (unset)" else v) for k, v in configured.observed.items()}
    event("systemd reports a limit" if any(v != "infinity" for v in systemd.values()) else "both unlimited")
    assert ours == systemd, (files, dict(configured.evidence))
