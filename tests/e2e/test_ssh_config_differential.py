"""host.gitea_ssh.config against the operator's own ssh, on generated ssh configs.

The suite logs in as **root** and resolves ``gitea-local`` through its fact script; the reference
is ``ssh -G gitea-local`` run by the operator in their own login. Configs are generated with
hypothesis: Host and Match blocks (``localuser``, ``originalhost``, negation, wildcards), keyword
case and ``=`` separators, relative and ``~`` Includes at any position (an Include inside a block
applies only when the block matches), several IdentityFiles. Both views must agree on HostName,
User, Port and the IdentityFile list for every generated case.
"""
from __future__ import annotations

import os
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

HOME = "/home/tegwick"

SELECTORS = ["Host gitea-local", "Host gitea-*", "Host *", "Host other gitea-local", "Host !gitea-local *",
             "host GITEA-LOCAL", "Host=gitea-local", "Match host gitea-local", "Match originalhost gitea-*",
             "Match localuser tegwick", "Match localuser root", "Match all", "Match user git host gitea-local"]
OPTIONS = st.sampled_from([
    "HostName localhost", "Hostname gitea.example.invalid", "HOSTNAME=127.0.0.1", "Port 30022", "port 2222",
    "Port=22", "User git", "user tegwick", "IdentityFile ~/.ssh/id_ed25519_gitea", "IdentityFile ~/.ssh/other",
    'IdentityFile "~/.ssh/quoted key"', "Include ~/.ssh/config.d/*", "Include config.d/*",
])
BLOCK = st.tuples(st.sampled_from(SELECTORS), st.lists(OPTIONS, min_size=1, max_size=4))
CONFIGS = st.tuples(st.lists(BLOCK, min_size=1, max_size=4), st.lists(BLOCK, min_size=0, max_size=3),
                    st.lists(OPTIONS, max_size=2))


def _render(blocks, top=()) -> str:
    lines = list(top)
    for selector, options in blocks:
        lines.append(selector)
        lines += [f"    {o}" for o in options]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([replace(CONFORMANT, name="sshdiff", root_login=True)], tmp_path_factory.mktemp("sshdiff")) as bed:
        yield bed, bed.hosts[0]


def _ssh(bed, host, user: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", str(bed.ssh_config), "-p", str(SSH_PORT), f"{user}@{host.address}", command],
                          capture_output=True, timeout=30)


KIND = check_kinds()["host.ssh_config"]


def _desired(user: str = "tegwick") -> dict:
    return {"user": user, "alias": "gitea-local", "hostname": "localhost", "ssh_user": "git",
            "identity_file": "~/.ssh/id_ed25519_gitea", "port": 30022}


def _operator_view(bed, host) -> dict | str:
    done = _ssh(bed, host, "tegwick", "ssh -G gitea-local")
    if done.returncode != 0:
        return f"error: {done.stderr.decode().strip().splitlines()[-1]}"
    values: dict = {"identityfile": []}
    for line in done.stdout.decode().splitlines():
        key, _, value = line.partition(" ")
        if key == "identityfile":
            values["identityfile"].append(HOME + value[1:] if value.startswith("~/") else value)
        elif key in ("hostname", "user", "port"):
            values[key] = int(value) if key == "port" else value
    return values


def _suite_view(bed, host, desired) -> dict | str:
    boundary = "@@rcf-" + secrets.token_hex(8)
    script = build_script(KIND.facts(desired), boundary)
    done = _ssh(bed, host, "root", f"sh -c {shlex.quote(script)}")
    facts = HostFacts("sshdiff", parse_output(decode_remote(done.stdout), boundary))
    section = facts.sections["ssh.G tegwick gitea-local"]
    if section.rc != 0:
        return f"error: {section.out.strip().splitlines()[-1]}"
    outcome = KIND.evaluate(facts, desired)
    return outcome.observed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=CONFIGS)
def test_the_suite_as_root_resolves_the_operators_ssh_config_as_the_operators_ssh(host, config):
    bed, nspawn = host
    desired = _desired()
    main, included, top = config
    ssh_dir = nspawn.workdir / "layer" / "home" / ".ssh"
    (ssh_dir / "config.d").mkdir(exist_ok=True)
    for path, text in ((ssh_dir / "config", _render(main, top)), (ssh_dir / "config.d" / "10-gitea", _render(included))):
        path.write_text(text)
        os.chmod(path, 0o600)
        os.chown(path, CONFORMANT.uid, CONFORMANT.uid)
    os.chown(ssh_dir / "config.d", CONFORMANT.uid, CONFORMANT.uid)
    reference, observed = _operator_view(bed, nspawn), _suite_view(bed, nspawn, desired)
    if isinstance(reference, str):  # the operator's ssh rejects the config: the suite cannot resolve it either
        assert isinstance(observed, str) and observed.startswith("error"), (reference, observed)
        event("the operator's ssh rejects the config")
        return
    if reference["hostname"] == "gitea-local":  # no block gives the alias a HostName
        assert isinstance(observed, str) and "no Host gitea-local block" in observed, (reference, observed)
        event("no block for the alias")
        return
    event("resolved: compared field by field")
    wanted = HOME + desired["identity_file"][1:]
    identity = wanted if wanted in reference["identityfile"] else ", ".join(reference["identityfile"])
    assert observed == {"host_block": "gitea-local", "hostname": reference["hostname"], "user": reference["user"],
                        "identityfile": identity, "port": reference["port"]}, (main, included, top)


def test_logged_in_as_neither_the_operator_nor_root_is_an_error_that_says_so(host):
    bed, nspawn = host
    boundary = "@@rcf-" + secrets.token_hex(8)
    done = _ssh(bed, nspawn, "tegwick", f"sh -c {shlex.quote(build_script(KIND.facts(_desired('daemon')), boundary))}")
    section = parse_output(decode_remote(done.stdout), boundary)["ssh.G daemon gitea-local"]
    assert section.rc == 5 and "neither daemon nor root" in section.out
