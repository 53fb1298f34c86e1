"""The operators' inventory as they keep it, read by ansible-core: host patterns and ranges,
connection variables (host and group level, testinfra's mapping), ansible.cfg, and the vault.

ansible-core reads ansible.cfg and ANSIBLE_* once per process (at import), so every case that
depends on them runs in a fresh interpreter, as the suite itself does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from railiance_conformance.ansible_vault import VaultOptions
from railiance_conformance.inventory import hosts_from_inventory, read_inventory
from railiance_conformance.policy import PolicyError
from tests.inventory.vault_fixtures import password_file, vault_text, vault_var
from tests.suite_runner import REPO

KEYS = {"nproc_soft", "nproc_hard", "swap_size_gb"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def names(hosts) -> list[str]:
    return sorted(h.name for h in hosts)


# --- host patterns and ranges (Ansible's own expansion) ------------------------------------

def test_a_host_range_expands_as_ansible_expands_it(tmp_path):
    inventory = write(tmp_path / "hosts.ini", "[railiance]\ncoulombcore[01:02] ansible_host=127.0.0.9\n")
    assert names(read_inventory(str(inventory), limit=None, keys=KEYS)) == ["coulombcore01", "coulombcore02"]
    assert names(read_inventory(str(inventory), limit="railiance[1]", keys=KEYS)) == ["coulombcore02"]  # a subscript


def test_limit_with_an_exclusion_pattern(tmp_path):
    inventory = write(tmp_path / "hosts.ini", "[railiance]\ncoulombcore\nstatehub\nold1\n\n[legacy]\nold1\n")
    assert names(read_inventory(str(inventory), limit="railiance:!legacy", keys=KEYS)) == ["coulombcore", "statehub"]
    with pytest.raises(PolicyError, match="no hosts matched"):
        read_inventory(str(inventory), limit="legacy:!railiance", keys=KEYS)


# --- connection variables ------------------------------------------------------------------

def test_connection_variables_at_host_and_group_level(tmp_path):
    inventory = write(tmp_path / "inv" / "hosts.yml", """
all:
  children:
    behind_bastion:
      vars:
        ansible_user: ops
        ansible_ssh_common_args: '-o ProxyJump=jump@bastion.example.invalid:2200'
      hosts:
        coulombcore:
          ansible_host: 10.9.8.7
          ansible_port: 2222
          ansible_user: tegwick
          ansible_ssh_extra_args: '-o ServerAliveInterval=5'
        statehub:
          ansible_host: 10.9.8.8
          ansible_become: 'yes'
          ansible_become_user: admin
    direct:
      hosts:
        plain:
          ansible_host: 10.9.8.9
          ansible_become: 'no'
""")
    write(tmp_path / "inv" / "host_vars" / "coulombcore.yml", "ansible_ssh_private_key_file: ~/.ssh/id_ops\n")
    hosts = {h.name: h for h in read_inventory(str(inventory), limit=None, keys=KEYS)}
    core = hosts["coulombcore"].connection
    assert hosts["coulombcore"].url == "ssh://tegwick@10.9.8.7:2222"  # the host's ansible_user beats the group's
    assert (core.identity_file, core.jump_host) == ("~/.ssh/id_ops", "jump@bastion.example.invalid:2200")
    assert core.ssh_args == "-o ProxyJump=jump@bastion.example.invalid:2200 -o ServerAliveInterval=5"
    assert core.testinfra_kwargs() == {"ssh_identity_file": "~/.ssh/id_ops", "ssh_extra_args": core.ssh_args}
    hub = hosts["statehub"].connection
    assert hosts["statehub"].url == "ssh://ops@10.9.8.8"
    assert (hub.become, hub.become_user, hub.identity_file) == (True, "admin", None)
    assert hub.testinfra_kwargs()["sudo_user"] == "admin"
    plain = hosts["plain"].connection
    assert (plain.become, plain.ssh_args, plain.jump_host) == (False, "", None)  # 'no' is false, as in Ansible


def test_legacy_ssh_spellings_and_local_connection(tmp_path):
    inventory = write(tmp_path / "hosts.ini", "old ansible_ssh_host=10.1.1.1 ansible_ssh_user=tegwick "
                                              "ansible_ssh_port=2200\nself ansible_connection=local\n")
    hosts = {h.name: h for h in read_inventory(str(inventory), limit=None, keys=KEYS)}
    assert hosts["old"].url == "ssh://tegwick@10.1.1.1:2200"
    assert hosts["self"].url == "local://"


def test_a_connection_the_suite_cannot_use_is_named(tmp_path):
    inventory = write(tmp_path / "hosts.ini", "win ansible_connection=winrm\n")
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(inventory), limit=None, keys=KEYS)
    assert "ansible_connection (host win)" in str(caught.value) and "--limit" in str(caught.value)


def test_the_evidence_names_identity_user_port_and_jump_host_never_a_password(tmp_path):
    inventory = write(tmp_path / "hosts.ini",
                      "core ansible_host=10.2.2.2 ansible_port=2201 ansible_user=tegwick "
                      "ansible_ssh_private_key_file=/keys/id_ops ansible_ssh_pass=SENTINEL-pw-93c1 "
                      "ansible_ssh_common_args='-J jump@10.2.2.1'\n")
    [host] = hosts_from_inventory(str(inventory), {}, limit=None,
                                  policy_source="features/")
    evidence = host.connection_evidence()
    assert {k: evidence[k] for k in ("backend", "address", "user", "port", "identity_file", "jump_host")} == {
        "backend": "ssh", "address": "10.2.2.2", "user": "tegwick", "port": 2201, "identity_file": "/keys/id_ops",
        "jump_host": "jump@10.2.2.1"}
    assert host.connection_evidence("/explicit/key")["identity_file"] == "/explicit/key"  # the suite option wins
    assert "SENTINEL-pw-93c1" not in repr(host) + json.dumps(evidence)


# --- the vault -----------------------------------------------------------------------------

@pytest.fixture
def vaulted(tmp_path) -> Path:
    """group_vars/all.yml: nproc_soft inline-vaulted, nproc_hard a template of a vaulted var."""
    inventory = write(tmp_path / "inv" / "hosts.ini", "[coulomb]\ncoulombcore ansible_host=127.0.0.9\n")
    write(tmp_path / "inv" / "group_vars" / "all.yml",
          vault_var("nproc_soft", "987") + 'nproc_hard: "{{ vault_nproc_hard }}"\n'
          + vault_var("vault_nproc_hard", "1024") + vault_var("unused_secret", "SENTINEL-unused-41f2"))
    return inventory


def test_vaulted_values_decrypt_with_the_password_file(vaulted, tmp_path):
    [host] = read_inventory(str(vaulted), limit=None, keys=KEYS,
                            vault=VaultOptions(password_files=(str(password_file(tmp_path)),)))
    assert (host.vars["nproc_soft"], host.vars["nproc_hard"]) == (987, 1024)  # text read as the integer it stands for
    assert host.secret_keys == {"nproc_soft", "nproc_hard"}
    assert host.var_sources["nproc_soft"].startswith(str(vaulted.parent / "group_vars" / "all.yml") + ":1:")
    assert "SENTINEL-unused" not in repr(host)


def test_a_vault_id_with_a_label_works_too(vaulted, tmp_path):
    [host] = read_inventory(str(vaulted), limit=None, keys=KEYS,
                            vault=VaultOptions(vault_ids=(f"prod@{password_file(tmp_path)}",)))
    assert host.vars["nproc_soft"] == 987


def test_without_a_password_a_needed_vaulted_variable_is_named_with_the_option(vaulted):
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(vaulted), limit=None, keys={"nproc_soft"})
    message = str(caught.value)
    assert message.startswith(f"{vaulted.parent / 'group_vars' / 'all.yml'}:1:")
    assert "nproc_soft (host coulombcore): is vault-encrypted and no vault password was given" in message
    assert "--vault-password-file" in message and "ANSIBLE_VAULT_PASSWORD_FILE" in message


def test_a_template_of_a_vaulted_variable_names_both(vaulted):
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(vaulted), limit=None, keys={"nproc_hard"})
    message = str(caught.value)
    assert "nproc_hard (host coulombcore): uses the vault-encrypted variable vault_nproc_hard (" in message
    assert "--vault-password-file" in message


def test_a_wrong_password_is_named(vaulted, tmp_path):
    wrong = password_file(tmp_path, "not it", name="wrong-pass")
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(vaulted), limit=None, keys=KEYS, vault=VaultOptions(password_files=(str(wrong),)))
    assert f"the vault password given ({wrong}) does not decrypt it" in str(caught.value)


def test_a_missing_password_file_is_named(vaulted, tmp_path):
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(vaulted), limit=None, keys=KEYS,
                       vault=VaultOptions(password_files=(str(tmp_path / "nope"),)))
    assert str(caught.value).startswith("--vault-password-file: cannot read the vault password")


def test_vaulted_variables_the_suite_does_not_use_need_no_password(tmp_path):
    inventory = write(tmp_path / "inv" / "hosts.ini", "coulombcore ansible_host=127.0.0.9\n")
    write(tmp_path / "inv" / "group_vars" / "all.yml", "nproc_soft: 600\n" + vault_var("db_password", "x"))
    [host] = read_inventory(str(inventory), limit=None, keys=KEYS)
    assert host.vars == {"nproc_soft": 600} and host.secret_keys == frozenset()


def test_an_encrypted_vars_file_without_a_password_is_named(tmp_path):
    inventory = write(tmp_path / "inv" / "hosts.ini", "coulombcore ansible_host=127.0.0.9\n")
    secret_file = write(tmp_path / "inv" / "host_vars" / "coulombcore.yml", vault_text("nproc_soft: 987\n"))
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(inventory), limit=None, keys=KEYS)
    assert str(caught.value).startswith(f"{secret_file}: vault-encrypted vars file and no vault password was given")
    [host] = read_inventory(str(inventory), limit=None, keys=KEYS,
                            vault=VaultOptions(password_files=(str(password_file(tmp_path)),)))
    assert host.vars == {"nproc_soft": 987} and host.secret_keys == {"nproc_soft"}


def test_an_invalid_vaulted_value_is_rejected_without_printing_it(tmp_path):
    inventory = write(tmp_path / "inv" / "hosts.ini", "coulombcore ansible_host=127.0.0.9\n")
    write(tmp_path / "inv" / "group_vars" / "all.yml", vault_var("nproc_hard", "SENTINEL-lots-7d1e"))
    with pytest.raises(PolicyError) as caught:
        hosts_from_inventory(str(inventory), {}, limit=None,
                             policy_source="features/",
                             vault=VaultOptions(password_files=(str(password_file(tmp_path)),)))
    assert "nproc_hard (host coulombcore)" in str(caught.value) and "'***'" in str(caught.value)
    assert "SENTINEL-lots" not in str(caught.value)


def test_a_vaulted_connection_variable_is_masked_in_the_evidence(tmp_path):
    inventory = write(tmp_path / "inv" / "hosts.ini", "coulombcore ansible_host=127.0.0.9\n")
    write(tmp_path / "inv" / "host_vars" / "coulombcore.yml", vault_var("ansible_user", "SENTINEL-user-5a"))
    [host] = hosts_from_inventory(str(inventory), {}, limit=None,
                                  policy_source="features/",
                                  vault=VaultOptions(password_files=(str(password_file(tmp_path)),)))
    assert host.url == "ssh://SENTINEL-user-5a@127.0.0.9"  # used to log in ...
    assert host.connection_evidence()["user"] == "***"      # ... never reported


# --- ansible.cfg and the environment (a fresh interpreter per case) ------------------------

READER = """
import dataclasses, json, sys
from railiance_conformance.ansible_config import configured_inventory
from railiance_conformance.inventory import read_inventory
from railiance_conformance.policy import PolicyError
source = sys.argv[1] if len(sys.argv) > 1 else configured_inventory()
try:
    hosts = read_inventory(source, limit=None, keys={"nproc_soft"})
except PolicyError as exc:
    print(json.dumps({"error": str(exc)})); sys.exit(0)
print(json.dumps({"source": source, "hosts": {h.name: {"url": h.url, "vars": h.vars,
      "connection": dataclasses.asdict(h.connection)} for h in hosts}}, default=sorted))
"""


def read_elsewhere(cwd: Path, *args: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    clean["HOME"] = str(cwd / "home")
    (cwd / "home").mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", READER, *args], cwd=cwd, capture_output=True, text=True,
                          env={**clean, "PYTHONPATH": str(REPO), **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(tmp_path) -> Path:
    """An operators' ansible/ directory: ansible.cfg beside inventory/ and a key."""
    root = tmp_path / "ansible"
    write(root / "inventory" / "hosts.ini", "[coulomb]\ncoulombcore ansible_host=127.0.0.9\n"
                                            "statehub ansible_host=127.0.0.8 ansible_user=hub\n")
    write(root / "ansible.cfg", "[defaults]\ninventory = inventory/hosts.ini\nremote_user = tegwick  ; the operator\n"
                                "private_key_file = keys/id_ops\n\n[ssh_connection]\n"
                                "ssh_args = -o ProxyJump=jump@127.0.0.7:2222\n")
    return root


def test_ansible_cfg_from_ANSIBLE_CONFIG(project, tmp_path):
    found = read_elsewhere(tmp_path, ANSIBLE_CONFIG=str(project / "ansible.cfg"))
    assert found["source"] == [str(project / "inventory" / "hosts.ini")]  # relative to ansible.cfg, as Ansible does
    core, hub = found["hosts"]["coulombcore"], found["hosts"]["statehub"]
    assert core["url"] == "ssh://tegwick@127.0.0.9" and hub["url"] == "ssh://hub@127.0.0.8"  # a host var wins
    assert core["connection"]["identity_file"] == str(project / "keys" / "id_ops")
    assert core["connection"]["ssh_args"] == "-o ProxyJump=jump@127.0.0.7:2222"


def test_ansible_cfg_in_the_working_directory(project):
    found = read_elsewhere(project)
    assert found["hosts"]["coulombcore"]["url"] == "ssh://tegwick@127.0.0.9"
    assert found["hosts"]["coulombcore"]["connection"]["identity_file"] == str(project / "keys" / "id_ops")


def test_a_host_var_key_beats_ansible_cfg(project):
    write(project / "inventory" / "host_vars" / "statehub.yml", "ansible_ssh_private_key_file: /keys/hub\n")
    found = read_elsewhere(project)
    assert found["hosts"]["statehub"]["connection"]["identity_file"] == "/keys/hub"


def test_ANSIBLE_VAULT_PASSWORD_FILE_is_honoured(vaulted, tmp_path):
    found = read_elsewhere(tmp_path, str(vaulted), ANSIBLE_VAULT_PASSWORD_FILE=str(password_file(tmp_path)))
    assert found["hosts"]["coulombcore"]["vars"] == {"nproc_soft": 987}
    assert "error" in read_elsewhere(tmp_path, str(vaulted))


def test_no_ansible_cfg_no_configured_inventory(tmp_path):
    assert read_elsewhere(tmp_path, str(write(tmp_path / "h.ini", "x ansible_host=127.0.0.9\n")))["hosts"]
    done = subprocess.run([sys.executable, "-c", "import sys; from railiance_conformance.ansible_config import "
                           "configured_inventory; print(configured_inventory()); print('ansible' in sys.modules)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
                               "HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)})
    assert done.stdout.split() == ["None", "False"] or Path("/etc/ansible/ansible.cfg").exists()
