"""The ssh command line the probe runs for an inventory host: the inventory's key and ssh args
(testinfra's Ansible mapping), the suite's safety options first, an explicit option winning."""
from __future__ import annotations

import shlex
from pathlib import Path

from railiance_conformance.inventory import hosts_from_inventory
from railiance_conformance.probes.host_facts import HostFactStore, SshOptions


def ssh_argv(tmp_path: Path, options: SshOptions, inventory_line: str) -> list[str]:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(inventory_line + "\n")
    [target] = hosts_from_inventory(str(inventory), {}, limit=None,
                                    policy_source="features/")
    store = HostFactStore(options, tmp_path)
    try:
        backend = store._backend(target).backend
        cmd, args = backend._build_ssh_command("true")
        return shlex.split(backend.quote(" ".join(cmd), *args))
    finally:
        store.close()


def test_the_inventory_key_and_jump_host_reach_ssh_after_the_pinned_options(tmp_path):
    argv = ssh_argv(tmp_path, SshOptions(known_hosts="/kh/known hosts"),
                    "core ansible_host=10.3.3.3 ansible_port=2202 ansible_user=tegwick "
                    "ansible_ssh_private_key_file=/keys/id_ops "
                    "ansible_ssh_common_args='-o ProxyJump=jump@10.3.3.1 -o StrictHostKeyChecking=no "
                    "-o ControlMaster=auto -o ControlPersist=60s'")
    assert argv[0] == "ssh"
    assert argv[argv.index("-i") + 1] == "/keys/id_ops"
    assert argv.index("StrictHostKeyChecking=yes") < argv.index("StrictHostKeyChecking=no")  # ssh: first wins
    assert argv.index("BatchMode=yes") < argv.index("ProxyJump=jump@10.3.3.1")
    assert argv.index("ControlMaster=no") < argv.index("ControlPersist=60s")
    assert "UserKnownHostsFile=/kh/known hosts" in argv
    assert ("User=tegwick" in argv, "Port=2202" in argv, argv[-2]) == (True, True, "10.3.3.3")


def test_an_explicit_identity_file_wins_over_the_inventory(tmp_path):
    argv = ssh_argv(tmp_path, SshOptions(identity_file="/explicit/key"),
                    "core ansible_host=10.3.3.3 ansible_ssh_private_key_file=/keys/id_ops")
    assert argv[argv.index("-i") + 1] == "/explicit/key" and "/keys/id_ops" not in argv


def test_a_host_without_connection_variables_keeps_the_plain_command(tmp_path):
    argv = ssh_argv(tmp_path, SshOptions(), "core ansible_host=10.3.3.3")
    assert "-i" not in argv and not any(a.startswith("BatchMode") for a in argv)  # the ssh_config pins it


def test_the_fast_key_exchange_comes_first_and_keeps_openssh_s_others(tmp_path):
    """ssh itself (``ssh -G``) reads the generated config: ECDH on P-256 first (OpenSSL's code, the
    cheapest for both sides), then curve25519; OpenSSH's other defaults stay behind them, and
    ``openssh-default`` keeps OpenSSH's own order."""
    import subprocess

    def kex(options: SshOptions) -> list[str]:
        config = options.write_config(tmp_path)
        shown = subprocess.run(["ssh", "-G", "-F", str(config), "core.example"], capture_output=True,
                               text=True, check=True).stdout
        return next(line.split()[1] for line in shown.splitlines() if line.startswith("kexalgorithms ")).split(",")

    fast, default = kex(SshOptions()), kex(SshOptions(kex="openssh-default"))
    assert fast[:3] == ["ecdh-sha2-nistp256", "curve25519-sha256", "curve25519-sha256@libssh.org"]
    assert sorted(fast) == sorted(default) and default[0] != "ecdh-sha2-nistp256"
