"""Inventories as ansible-core hands them over: a dynamic inventory's tagged host names, a broken
ansible.cfg. ansible-core reads ansible.cfg at import, so those cases run in a fresh interpreter."""
from __future__ import annotations

import subprocess
import sys

import yaml

from railiance_conformance.inventory import read_inventory
from tests.suite_runner import REPO


def test_a_dynamic_inventorys_host_names_are_plain_strings(tmp_path):
    script = tmp_path / "inventory.sh"
    script.write_text("#!/bin/sh\ncat <<'J'\n" + '{"coulomb": {"hosts": ["alpha"]}, "_meta": {"hostvars": '
                      '{"alpha": {"ansible_host": "127.0.0.1", "ansible_port": 1, "swap_size_gb": 4}}}}\nJ\n')
    script.chmod(0o755)
    [host] = read_inventory(str(script), limit=None, keys={"swap_size_gb"})
    assert type(host.name) is str and host.name == "alpha"
    assert yaml.safe_dump([host.name]) == "- alpha\n"  # the PolicyReport's dumper took ansible's tagged str for an object


def test_a_broken_ansible_cfg_is_bad_input_naming_it(tmp_path):
    (tmp_path / "ansible.cfg").write_text("[defaults\ninventory = hosts.ini\n")
    code = ("from railiance_conformance.ansible_config import configured_inventory\n"
            "from railiance_conformance.policy import PolicyError\n"
            "try:\n    configured_inventory()\nexcept PolicyError as exc:\n    print('POLICY', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    assert out.stdout.startswith(f"POLICY {tmp_path / 'ansible.cfg'}: ansible-core cannot read it"), out.stdout + out.stderr


def test_a_port_that_is_not_a_number_is_bad_input_naming_its_line(tmp_path):
    import pytest

    from railiance_conformance.policy import PolicyError

    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[coulomb]\nalpha ansible_host=127.0.0.1 ansible_port=twentytwo\n")
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(inventory), limit=None, keys=set())
    assert str(caught.value).startswith(f"{inventory}:2:")
    assert "ansible_port (host alpha): not a port number" in str(caught.value) and "twentytwo" in str(caught.value)


def test_a_vaulted_port_that_is_not_a_number_is_not_printed(tmp_path):
    import pytest

    from railiance_conformance.ansible_vault import VaultOptions
    from railiance_conformance.policy import PolicyError
    from tests.inventory.vault_fixtures import password_file, vault_var

    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "alpha.yml").write_text(vault_var("ansible_port", "SENTINEL-port-7f3a"))
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[coulomb]\nalpha ansible_host=127.0.0.1\n")
    with pytest.raises(PolicyError) as caught:
        read_inventory(str(inventory), limit=None, keys=set(),
                       vault=VaultOptions(password_files=(str(password_file(tmp_path)),)))
    assert "ansible_port (host alpha): not a port number" in str(caught.value)
    assert "SENTINEL" not in str(caught.value)
