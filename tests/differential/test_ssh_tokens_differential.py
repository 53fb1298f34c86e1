"""ssh_tokens.expand_identity_file against the identity files ssh itself loads, on generated configs.

Each generated ``Host gitea-local`` block has HostName, User, Port, sometimes HostKeyAlias, and 1-3
IdentityFile values built from ssh_config(5)'s TOKENS (``%d %u %h %r %p %n %i %k %l %L %C %%``),
``${VAR}`` environment references and a leading ``~``. The suite's reading — ``ssh -G``'s
(unexpanded) identityfile lines, expanded by the resolver with -G's hostname/user/port — must
equal the files ``ssh -v`` reports as "identity file X type N" when it loads them. ssh connects to a
local listener that closes at once (the identities are loaded right after the TCP connect, before
the banner), so nothing logs in. ``HOME`` is set apart from the passwd home, which ``%d`` and ``~``
use.
"""
from __future__ import annotations

import os
import pwd
import re
import socket
import subprocess
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.resources import ssh_tokens
from railiance_conformance.resources.host_files import parse_key_values

PIECES = ["%d", "%u", "%h", "%r", "%p", "%n", "%i", "%k", "%l", "%L", "%C", "%%", "${HOME}", "${USER}", "${RCF_KEYS}",
          "/.ssh/", "/", "id_", "ed25519", "-", "_", "gitea", "."]
VALUE = st.tuples(st.booleans(), st.lists(st.sampled_from(PIECES), min_size=1, max_size=6)).map(
    lambda t: ("~/" if t[0] else "") + "".join(t[1]))
CASES = st.fixed_dictionaries({
    "hostname": st.sampled_from(["127.0.0.1", "localhost"]),
    "user": st.sampled_from(["git", "tegwick", "root"]),
    "alias": st.sampled_from([None, "gitea-key-alias"]),
    "files": st.lists(VALUE.filter(lambda v: " " not in v and not v.startswith("#")), min_size=1, max_size=3),
})


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.5)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_expansion_equals_the_files_ssh_loads(listener, case, tmp_path_factory):
    config = tmp_path_factory.mktemp("ssh") / "config"
    lines = ["Host gitea-local", f"  HostName {case['hostname']}", f"  Port {listener}", f"  User {case['user']}"]
    if case["alias"]:
        lines.append(f"  HostKeyAlias {case['alias']}")
    lines += [f"  IdentityFile {value}" for value in case["files"]]
    config.write_text("\n".join(lines) + "\n")
    me = pwd.getpwuid(os.getuid())
    env = {"PATH": os.environ["PATH"], "HOME": "/tmp/rcf-not-the-passwd-home", "USER": me.pw_name,
           "RCF_KEYS": "/srv/keys"}
    common = ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5"]
    shown = subprocess.run([*common, "-G", "gitea-local"], capture_output=True, text=True, env=env, timeout=20)
    verbose = subprocess.run([*common, "-v", "-T", "gitea-local"], capture_output=True, text=True, env=env,
                             timeout=20, stdin=subprocess.DEVNULL)
    loaded = [m[1] for m in re.finditer(r"^debug1: identity file (.*) type -?\d+$", verbose.stderr, re.MULTILINE)
              if not m[1].endswith("-cert")]
    resolved = parse_key_values(shown.stdout, sep=" ")
    context = ssh_tokens.SshContext(
        local_user=me.pw_name, uid=me.pw_uid, home=me.pw_dir, hostname=resolved["hostname"],
        remote_user=resolved["user"], port=resolved["port"], host_arg="gitea-local",
        local_hostname=socket.gethostname(), host_key_alias=resolved.get("hostkeyalias", ""), environment=env)
    written = [line.split(" ", 1)[1] for line in shown.stdout.splitlines() if line.startswith("identityfile ")]
    ours = [ssh_tokens.expand_identity_file(value, context) for value in written]
    assert ours == loaded, (config.read_text(), verbose.stderr[-1500:])
