"""The user, port and ssh arguments the suite logs in with are the ones Ansible's ssh connection uses:
host variables over ANSIBLE_* environment variables over ansible.cfg.

Proved against ansible-core itself on generated inventories (hypothesis): ``ansible -m ping`` runs with
an ``ssh`` that only writes down the command line Ansible built for each host (ANSIBLE_SSH_EXECUTABLE),
and the suite's reading of the same inventory, environment and ansible.cfg must give the same user,
port and ssh options. ansible-core reads ansible.cfg and ANSIBLE_* once per process, so the suite's
side runs in a fresh interpreter too."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.suite_runner import REPO

ANSIBLE = str(Path(sys.executable).parent / "ansible")
# distinctive options, one per source, so each can be traced on ssh's command line
OPTION_OF = {"ssh_args": "ConnectionAttempts", "ssh_common_args": "ServerAliveCountMax",
             "ssh_extra_args": "ServerAliveInterval"}  # none of them one Ansible adds itself
OPTION = re.compile(r"^(ConnectionAttempts|ServerAliveCountMax|ServerAliveInterval)=\d+$")

FAKE_SSH = """#!/usr/bin/env python3
import json, os, sys
host = sys.argv[-2] if len(sys.argv) > 2 else "?"
with open(os.path.join(os.environ["RECORD_DIR"], host), "w") as f:
    json.dump(sys.argv[1:], f)
sys.exit(255)
"""

maybe_user = st.none() | st.sampled_from(["alice", "bob", "carol"])
maybe_port = st.none() | st.integers(1024, 65000)
maybe_args = st.none() | st.integers(1, 9)
source = st.fixed_dictionaries({"user": maybe_user, "port": maybe_port, "ssh_args": maybe_args,
                                "ssh_common_args": maybe_args, "ssh_extra_args": maybe_args})


def ansible_argv(inventory: Path, env: dict, record: Path, hosts: int) -> dict[str, list[str]]:
    """The ssh command line Ansible builds per host address, as its ssh executable received it."""
    record.mkdir()
    subprocess.run([ANSIBLE, "all", "-i", str(inventory), "-m", "ping", "-f", "10"], env={**env, "RECORD_DIR": str(record)},
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    seen = {p.name: json.loads(p.read_text()) for p in record.iterdir()}
    assert len(seen) == hosts, (sorted(seen), hosts)
    return seen


def from_argv(argv: list[str]) -> tuple[str | None, int | None, list[str]]:
    user = port = None
    options = []
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag != "-o":
            continue
        if value.startswith("User="):
            user = value[5:].strip('"')
        elif value.startswith("Port="):
            port = int(value[5:])
        elif OPTION.match(value):
            options.append(value)
    return user, port, options


def suite_connections(inventory: Path, env: dict) -> dict[str, dict]:
    code = ("import json, sys; from railiance_conformance.inventory import read_inventory; "
            "print(json.dumps({h.connection.address: [h.connection.user, h.connection.port, h.connection.ssh_args] "
            "for h in read_inventory(sys.argv[1], limit=None, keys=set())}))")
    out = subprocess.run([sys.executable, "-c", code, str(inventory)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def args_text(name: str, value: int) -> str:
    return f"-o {OPTION_OF[name]}={value}"


EVERY = dict(user="alice", port=2200, ssh_args=1, ssh_common_args=2, ssh_extra_args=3)
NONE = dict.fromkeys(EVERY)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hosts=st.lists(source, min_size=1, max_size=4), environment=source, config=source)
# every source set at once, and a host with no variables beside one with all (testinfra let the
# environment win over the host's variables and did not read ANSIBLE_SSH_ARGS)
@example(hosts=[EVERY, NONE], environment=dict(user="bob", port=2300, ssh_args=4, ssh_common_args=5, ssh_extra_args=6),
         config=dict(user="carol", port=2400, ssh_args=7, ssh_common_args=8, ssh_extra_args=9))
@example(hosts=[NONE], environment=NONE, config=dict(user="carol", port=2400, ssh_args=7, ssh_common_args=8,
                                                     ssh_extra_args=9))
def test_user_port_and_ssh_args_are_resolved_as_ansible_resolves_them(tmp_path_factory, hosts, environment, config):
    root = tmp_path_factory.mktemp("precedence")
    fake = root / "ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(0o755)
    lines = ["[railiance]"]
    for index, values in enumerate(hosts):
        fields = [f"h{index}", f"ansible_host=127.0.0.{index + 2}"]
        if values["user"]:
            fields.append(f"ansible_user={values['user']}")
        if values["port"]:
            fields.append(f"ansible_port={values['port']}")
        for name in OPTION_OF:
            if values[name] is not None:
                fields.append(f"ansible_{name}='{args_text(name, values[name])}'")
        lines.append(" ".join(fields))
    inventory = root / "hosts.ini"
    inventory.write_text("\n".join(lines) + "\n")
    cfg = ["[defaults]", "host_key_checking = False", "timeout = 5"]
    if config["user"]:
        cfg.append(f"remote_user = {config['user']}")
    if config["port"]:
        cfg.append(f"remote_port = {config['port']}")
    cfg.append("[ssh_connection]")
    cfg += [f"{name} = {args_text(name, config[name])}" for name in OPTION_OF if config[name] is not None]
    (root / "ansible.cfg").write_text("\n".join(cfg) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env |= {"ANSIBLE_CONFIG": str(root / "ansible.cfg"), "ANSIBLE_HOME": str(root / "home"),
            "ANSIBLE_SSH_EXECUTABLE": str(fake), "ANSIBLE_LOCAL_TEMP": str(root / "tmp")}
    if environment["user"]:
        env["ANSIBLE_REMOTE_USER"] = environment["user"]
    if environment["port"]:
        env["ANSIBLE_REMOTE_PORT"] = str(environment["port"])
    for name in OPTION_OF:
        if environment[name] is not None:
            env[f"ANSIBLE_{name.upper()}"] = args_text(name, environment[name])

    ansible = ansible_argv(inventory, env, root / "record", len(hosts))
    suite = suite_connections(inventory, env)
    for address, argv in ansible.items():
        user, port, ssh_args = suite[address]
        options = [a for a in ssh_args.split() if OPTION.match(a)]
        assert (user, port, options) == from_argv(argv), (address, argv, suite[address])
