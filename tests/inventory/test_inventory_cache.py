"""The inventory's hosts kept between runs (railiance_conformance/inventory_cache.py): the key changes with
every input ansible-core reads for them, nothing that may hold a secret or change on its own is kept, and a
kept answer equals ansible-core's own read of the same files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance import early_inventory, inventory_cache
from tests.inventory.vault_fixtures import vault_var
from tests.suite_runner import REPO


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A static inventory, a working directory and a home of its own (no ansible.cfg anywhere)."""
    for name in [k for k in os.environ if k.startswith("ANSIBLE_") and k not in inventory_cache.OWN_ENV]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("RAILIANCE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    root = tmp_path / "inv"
    (root / "group_vars").mkdir(parents=True)
    (root / "hosts.ini").write_text("[coulomb]\nalpha ansible_host=127.0.0.1 ansible_port=1 ansible_user=op\n")
    (root / "group_vars" / "coulomb.yml").write_text("swap_size_gb: 4\nnproc_hard: 1024\n")
    return tmp_path


def options(place: Path, **changed) -> SimpleNamespace:
    values = dict(ansible_inventory=str(place / "inv" / "hosts.ini"), hosts=None, connection=None, limit=None,
                  vault_password_file=[], vault_id=[])
    return SimpleNamespace(**{**values, **changed})


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# each changes one input ansible-core reads (or that decides what it reads): the key must change
CHANGES = {
    "the inventory's bytes": lambda p, m: _write(p / "inv/hosts.ini", "[coulomb]\nalpha ansible_host=127.0.0.2\n"),
    "a group_vars file": lambda p, m: _write(p / "inv/group_vars/coulomb.yml", "swap_size_gb: 8\nnproc_hard: 1024\n"),
    "a new group_vars file": lambda p, m: _write(p / "inv/group_vars/all.yml", "swap_swappiness: 10\n"),
    "a new group_vars directory file": lambda p, m: _write(p / "inv/group_vars/coulomb/extra.yml", "nproc_soft: 5\n"),
    "a new host_vars file": lambda p, m: _write(p / "inv/host_vars/alpha.yml", "swap_size_gb: 2\n"),
    "group_vars in the working directory": lambda p, m: _write(p / "cwd/group_vars/all.yml", "swap_size_gb: 1\n"),
    "host_vars in the working directory": lambda p, m: _write(p / "cwd/host_vars/alpha", "swap_size_gb: 1\n"),
    "ansible.cfg in the working directory": lambda p, m: _write(p / "cwd/ansible.cfg", "[defaults]\nremote_user=x\n"),
    "~/.ansible.cfg": lambda p, m: _write(p / "home/.ansible.cfg", "[defaults]\nremote_user=x\n"),
    "ANSIBLE_CONFIG": lambda p, m: (_write(p / "other.cfg", "[defaults]\n"), m.setenv("ANSIBLE_CONFIG", str(p / "other.cfg"))),
    "an ANSIBLE_* variable": lambda p, m: m.setenv("ANSIBLE_REMOTE_USER", "someone"),
    "any other variable": lambda p, m: m.setenv("LC_ALL", "C"),
    "the working directory": lambda p, m: (p.joinpath("cwd2").mkdir(), m.chdir(p / "cwd2")),
    "the working directory's mode": lambda p, m: (p / "cwd").chmod(0o777),
    "a vars plugin in ~/.ansible": lambda p, m: _write(p / "home/.ansible/plugins/vars/mine.py", "# a plugin\n"),
    "an inventory plugin in ANSIBLE_HOME": lambda p, m: (m.setenv("ANSIBLE_HOME", str(p / "ah")),
                                                         _write(p / "ah/plugins/inventory/mine.py", "#\n")),
}
OPTION_CHANGES = {"limit": "alpha", "hosts": "127.0.0.1:22", "connection": "ssh",
                  "ansible_inventory": None}  # None: the inventory given as a list below


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_input_is_a_new_key(place, monkeypatch, change):
    before = inventory_cache.input_key(options(place))
    assert before is not None
    CHANGES[change](place, monkeypatch)
    assert inventory_cache.input_key(options(place)) not in (before, None)


@pytest.mark.parametrize("name", sorted(OPTION_CHANGES))
def test_a_changed_option_is_a_new_key(place, name):
    value = OPTION_CHANGES[name] if name != "ansible_inventory" else [str(place / "inv" / "hosts.ini")]
    before = inventory_cache.input_key(options(place))
    assert inventory_cache.input_key(options(place, **{name: value})) not in (before, None)


def test_the_bundled_host_policy_schema_is_part_of_the_key(place, monkeypatch, tmp_path):
    before = inventory_cache.input_key(options(place))
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "controls.yaml").write_bytes((inventory_cache.DEFAULT_POLICY_DIR / "controls.yaml").read_bytes() + b"\n")
    monkeypatch.setattr(inventory_cache, "DEFAULT_POLICY_DIR", policies)
    assert inventory_cache.input_key(options(place)) not in (before, None)


NEVER = {
    "a vault-encrypted value": lambda p, m: _write(p / "inv/host_vars/alpha.yml", vault_var("nproc_soft", "987")),
    "a vault-encrypted file": lambda p, m: _write(p / "inv/group_vars/all.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n"),
    "a templated value": lambda p, m: _write(p / "inv/group_vars/all.yml", "swap_size_gb: \"{{ 2 * 2 }}\"\n"),
    "a lookup in the inventory": lambda p, m: _write(p / "inv/hosts.ini", "[c]\nalpha x={{ lookup('env','X') }}\n"),
    "an inventory script": lambda p, m: (p / "inv/hosts.ini").chmod(0o755),
    "an inventory plugin's configuration": lambda p, m: _write(p / "inv/hosts.ini", "plugin: constructed\n"),
    "ANSIBLE_VAULT_PASSWORD_FILE": lambda p, m: m.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(p / "pw")),
    "RAILIANCE_CACHE=0": lambda p, m: m.setenv("RAILIANCE_CACHE", "0"),
    "a missing inventory": lambda p, m: (p / "inv/hosts.ini").unlink(),
}


@pytest.mark.parametrize("case", sorted(NEVER))
def test_what_may_hold_a_secret_or_change_by_itself_has_no_key(place, monkeypatch, case):
    NEVER[case](place, monkeypatch)
    assert inventory_cache.input_key(options(place)) is None


@pytest.mark.parametrize("changed", [{"vault_password_file": ["pw"]}, {"vault_id": ["dev@pw"]},
                                     {"ansible_inventory": None}])
def test_vault_options_and_ansible_cfg_inventories_have_no_key(place, changed):
    assert inventory_cache.input_key(options(place, **changed)) is None


def test_a_read_is_kept_only_when_it_holds_no_secret_and_the_configuration_is_the_default(place, monkeypatch):
    targets = early_inventory.inventory_targets(options(place))
    assert inventory_cache.reusable(targets)
    hosts = (place / "inv/hosts.ini").read_text()
    _write(place / "inv/hosts.ini", hosts.replace("ansible_user=op", "ansible_user=op ansible_ssh_common_args="
                                                  "\"-o ProxyCommand='sshpass -p hunter2 ssh -W %h:%p j'\""))
    read = early_inventory.inventory_targets(options(place))
    assert "hunter2" in read[0].connection.ssh_args
    assert not inventory_cache.reusable(read)  # redaction masks it
    _write(place / "inv/hosts.ini", hosts)
    monkeypatch.setenv("ANSIBLE_VARS_ENABLED", "host_group_vars,ansible.builtin.host_group_vars")
    assert not inventory_cache.reusable(early_inventory.inventory_targets(options(place)))


_values = st.fixed_dictionaries({"swap_size_gb": st.integers(1, 64), "nproc_hard": st.integers(1, 10**6)},
                                optional={"swap_swappiness": st.integers(0, 100),
                                          "user_memory_max": st.sampled_from(["1500M", "2G", "512M"])})
_hosts = st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), st.integers(1, 65535),
                            st.sampled_from(["op", "tegwick", "root"])), min_size=1, max_size=3,
                  unique_by=lambda h: h[0])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hosts=_hosts, group=_values, host=_values)
def test_a_kept_read_equals_ansible_cores_read_and_a_change_misses(place, hosts, group, host):
    """Generated static inventories: what is kept is what ansible-core reads from the same files (values,
    their origins, the connection), and after a value changes the old entry is not used."""
    import yaml

    # a directory per example: ansible-core remembers which vars files a directory had, per process
    root = place / f"inv{len(list(place.glob('inv*')))}"
    lines = [f"{n} ansible_host=127.0.0.{i + 1} ansible_port={port} ansible_user={user}"
             for i, (n, port, user) in enumerate(hosts)]
    _write(root / "hosts.ini", "[coulomb]\n" + "\n".join(lines) + "\n")
    _write(root / "group_vars/coulomb.yml", yaml.safe_dump(group))
    _write(root / f"host_vars/{hosts[0][0]}.yml", yaml.safe_dump(host))
    option = options(place, ansible_inventory=str(root / "hosts.ini"))
    key = inventory_cache.input_key(option)
    read = early_inventory.inventory_targets(option)
    assert inventory_cache.reusable(read)
    inventory_cache.store(option, key, read)
    kept = inventory_cache.load(option, inventory_cache.input_key(option))
    assert kept == read == early_inventory.inventory_targets(option)
    assert [(dict(k.desired), dict(k.desired_sources), k.connection) for k in kept] == \
        [(dict(r.desired), dict(r.desired_sources), r.connection) for r in read]
    _write(root / f"host_vars/{hosts[0][0]}.yml", yaml.safe_dump({**host, "swap_size_gb": host["swap_size_gb"] + 1}))
    assert inventory_cache.load(option, inventory_cache.input_key(option)) is None
    assert early_inventory.read(option)[0].desired["swap_size_gb"] == host["swap_size_gb"] + 1


def test_a_file_changed_during_the_read_is_not_kept(place):
    option = options(place)
    key = inventory_cache.input_key(option)
    read = early_inventory.inventory_targets(option)
    _write(place / "inv/group_vars/coulomb.yml", "swap_size_gb: 16\nnproc_hard: 1024\n")
    inventory_cache.store(option, key, read)
    assert inventory_cache.load(option, key) is None


def test_a_second_run_starts_no_child_and_gets_the_same_hosts(place):
    """Through the plugin's path: the first read is the child's and is kept; the next starts no child."""
    code = ("import sys; from pathlib import Path; import tests.inventory.test_inventory_cache as t; "
            "t._second_read_starts_no_child(Path(sys.argv[1]))")
    result = subprocess.run([sys.executable, "-c", code, str(place)], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _second_read_starts_no_child(place: Path) -> None:
    try:
        assert early_inventory.speculate(options(place))
        assert early_inventory._pending.process is not None  # the first read: ansible-core in a child
        first = early_inventory.take(options(place))
        assert early_inventory.speculate(options(place))
        assert early_inventory._pending.process is None  # kept: no child, no ansible-core
        assert early_inventory.take(options(place)) == first
        assert "ansible" not in sys.modules
        assert [t.name for t in first] == ["alpha"] and first[0].desired["swap_size_gb"] == 4
    finally:
        early_inventory.discard()


@pytest.mark.testbed  # runs pytest features/ end to end (tests/tiers.py)
def test_findings_are_the_same_cold_warm_and_uncached(place):
    """The suite itself, three times on one static inventory (hosts on a closed port: every host control an
    error at once): reading it (and keeping it), reusing it, and with the cache off give the same findings."""
    from tests.inventory.test_early_inventory import stable

    entries = place / "cache" / "railiance-conformance"
    outputs = []
    for label, cache in (("cold", "1"), ("warm", "1"), ("off", "0")):
        command = [sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-m", "S1",
                   "--ansible-inventory", str(place / "inv" / "hosts.ini"), "--report-dir", str(place / label),
                   "--history", "none", "--connect-timeout", "3"]
        result = subprocess.run(command, cwd=REPO, env={**os.environ, "RAILIANCE_CACHE": cache},
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        outputs.append(result.stdout.replace(str(place / label), "R"))
        if label == "cold":
            assert list(entries.glob("inventory-*.pickle")), "the read was not kept"
    assert stable(place / "cold") == stable(place / "warm") == stable(place / "off")
    assert {f["target"] for f in stable(place / "warm")} == {"alpha"}


def test_runs_that_alternate_environments_each_keep_their_hosts(place, monkeypatch):
    """The key covers the whole environment: two environments taking turns (an operator's shell, a CI job) each
    find their own entry instead of replacing the other's, and no more than ``ENTRIES`` are kept."""
    first = inventory_cache.input_key(options(place))
    inventory_cache.store(options(place), first, ["hosts of the first environment"])
    monkeypatch.setenv("RAILIANCE_TEST_ENVIRONMENT", "the second")
    second = inventory_cache.input_key(options(place))
    assert second != first
    inventory_cache.store(options(place), second, ["hosts of the second environment"])
    assert inventory_cache.load(options(place), second) == ["hosts of the second environment"]
    monkeypatch.delenv("RAILIANCE_TEST_ENVIRONMENT")
    assert inventory_cache.load(options(place), first) == ["hosts of the first environment"]
    for n in range(inventory_cache.ENTRIES + 2):
        monkeypatch.setenv("RAILIANCE_TEST_ENVIRONMENT", str(n))
        inventory_cache.store(options(place), inventory_cache.input_key(options(place)), [n])
    kept = list((place / "cache").rglob(f"{inventory_cache._family(options(place))}-*.pickle"))
    assert len(kept) == inventory_cache.ENTRIES
