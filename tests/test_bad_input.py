"""Bad policy or inventory: a clear error naming the file and field, before any probe runs."""
from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from railiance_conformance.policy import DEFAULT_POLICY_DIR
from tests.suite_runner import copy_features, run_features, run_suite


@pytest.fixture
def listener():
    """A TCP port that counts connection attempts: the suite must not make any."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"ssh://tegwick@127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def policy_dir(tmp_path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    return target


def _usage_error(run) -> str:
    assert run.returncode == 4, (run.returncode, run.stdout, run.stderr)
    return run.stderr


def _edit(features: Path, relative: str, old: str, new: str) -> Path:
    path = features / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def _line(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_sentence_no_check_kind_states_names_file_and_line(listener, tmp_path):
    url, accepted = listener
    features = copy_features(tmp_path)
    path = _edit(features, "S1/T01-swapfile.feature", "a regular file of 4 GiB", "a regular file of four GiB")
    message = _usage_error(run_features(features, "--hosts", url, report_dir=tmp_path / "r"))
    assert f"features/S1/T01-swapfile.feature:{_line(path, 'four GiB')}: Then: no check kind states" in message
    assert accepted == []
    assert not (tmp_path / "r").exists()


def test_an_identity_file_others_can_read_is_a_usage_error_before_any_probe(listener, tmp_path):
    """ssh ignores such a key ('UNPROTECTED PRIVATE KEY FILE') and every host then says only
    'Permission denied (publickey)': the cause is named before any host is contacted."""
    url, accepted = listener
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o644)
    message = _usage_error(run_suite("-m", "S1", "--hosts", url, "--ssh-identity-file", str(key),
                                     report_dir=tmp_path / "r"))
    assert f"--ssh-identity-file: {key}: mode 0644: ssh ignores a private key that others can access" in message
    assert f"chmod 600 {key}" in message
    assert accepted == [] and not (tmp_path / "r").exists()


def test_a_known_hosts_that_is_a_directory_is_a_usage_error_before_any_probe(listener, tmp_path):
    url, accepted = listener
    message = _usage_error(run_suite("-m", "S1", "--hosts", url, "--known-hosts", str(tmp_path),
                                     report_dir=tmp_path / "r"))
    assert f"--known-hosts: {tmp_path}: not a regular file" in message
    assert accepted == [] and not (tmp_path / "r").exists()


def test_a_value_its_schema_refuses_names_file_line_and_field(listener, tmp_path):
    url, accepted = listener
    features = copy_features(tmp_path)
    path = _edit(features, "S1/T02-limits-and-slice.feature", "gives tegwick nproc soft", "gives tegwick nprocs soft")
    message = _usage_error(run_features(features, "--hosts", url, report_dir=tmp_path / "r"))
    assert f"features/S1/T02-limits-and-slice.feature:{_line(path, 'nprocs')}: item: 'nprocs' is not one of" in message
    assert accepted == []


def test_an_unknown_control_id_in_a_scenario_is_named(listener, tmp_path):
    url, accepted = listener
    features = copy_features(tmp_path)
    path = _edit(features, "S1/T01-swapfile.feature", "Scenario: host.swap.fstab", "Scenario: host.swap.fstabb")
    message = _usage_error(run_features(features, "--hosts", url, report_dir=tmp_path / "r"))
    assert f"features/S1/T01-swapfile.feature:{_line(path, 'host.swap.fstabb')}: Scenario: unknown control id " \
           "'host.swap.fstabb'" in message
    assert accepted == []


def test_policy_yaml_syntax_error_names_line(policy_dir, listener, tmp_path):
    url, accepted = listener
    (policy_dir / "controls.yaml").write_text("kind: ControlCatalog\ncontrols: [\n")
    message = _usage_error(run_suite("--hosts", url, "--policy-dir", str(policy_dir), report_dir=tmp_path / "r"))
    assert f"{policy_dir / 'controls.yaml'}: line 3, column 1: not valid YAML" in message
    assert accepted == []


def test_a_shell_injection_in_a_feature_or_an_inventory_value_is_refused(listener, tmp_path):
    url, accepted = listener
    features = copy_features(tmp_path)
    _edit(features, "S1/T02-limits-and-slice.feature", "Then user tegwick has", "Then user x;touch has")
    message = _usage_error(run_features(features, "--hosts", url, report_dir=tmp_path / "r"))
    assert "no check kind states 'user x;touch has uid 1000'" in message
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    port = url.rsplit(":", 1)[1]
    (inventory / "hosts.ini").write_text(f"coulombcore ansible_host=127.0.0.1 ansible_port={port}\n")
    (inventory / "host_vars" / "coulombcore.yml").write_text("operator_user: 'x; touch /tmp/pwned'\n")
    message = _usage_error(run_suite("--ansible-inventory", str(inventory / "hosts.ini"), report_dir=tmp_path / "r2"))
    assert "operator_user (host coulombcore): 'x; touch /tmp/pwned' does not match" in message
    assert accepted == []


def test_an_inventory_that_does_not_parse_is_named(listener, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[coulomb\ncoulombcore ansible_host=127.0.0.1\n")
    message = _usage_error(run_suite("--ansible-inventory", str(inventory), report_dir=tmp_path / "r"))
    assert f"{inventory}: not a valid Ansible inventory" in message


def test_a_bad_value_in_host_vars_names_its_file_line_and_field(listener, tmp_path):
    url, accepted = listener
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    port = url.rsplit(":", 1)[1]
    (inventory / "hosts.ini").write_text(f"coulombcore ansible_host=127.0.0.1 ansible_port={port}\n")
    (inventory / "host_vars" / "coulombcore.yml").write_text("swap_swappiness: 10\nnproc_hard: lots\n")
    message = _usage_error(run_suite("--ansible-inventory", str(inventory / "hosts.ini"), report_dir=tmp_path / "r"))
    assert f"{inventory / 'host_vars' / 'coulombcore.yml'}:2:13: nproc_hard (host coulombcore)" in message
    assert "'lots' is not valid" in message
    assert accepted == []


def test_a_missing_inventory_and_a_bad_host_url(tmp_path):
    message = _usage_error(run_suite("--ansible-inventory", str(tmp_path / "nope.ini"), report_dir=tmp_path / "r"))
    assert f"{tmp_path / 'nope.ini'}: inventory not found" in message
    message = _usage_error(run_suite("--hosts", "gopher://h", report_dir=tmp_path / "r"))
    assert "--hosts: gopher://h: unknown backend 'gopher'" in message


def test_inventory_values_are_read_with_their_sources(tmp_path):
    from railiance_conformance.inventory import hosts_from_inventory

    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    coulomb:\n      hosts:\n        coulombcore:\n"
        "          ansible_host: 127.0.0.5\n          ansible_user: tegwick\n          swap_size_gb: 8\n")
    (inventory / "group_vars" / "coulomb.yml").write_text("nproc_soft: 256\n")
    [host] = hosts_from_inventory(str(inventory / "hosts.yml"), {}, limit=None, policy_source="features/")
    assert host.url == "ssh://tegwick@127.0.0.5"
    assert (host.desired["swap_size_gb"], host.desired["nproc_soft"]) == (8, 256)
    assert "nproc_hard" not in host.desired  # the feature's value applies
    assert host.desired_sources["nproc_soft"].startswith(str(inventory / "group_vars" / "coulomb.yml"))


@pytest.mark.parametrize("option, kind", [("--ssh-identity-file", "file"), ("--ssh-config", "file"),
                                          ("--kubeconfig", "file"), ("--repos", "directory")])
def test_a_missing_file_an_option_names_is_a_usage_error_before_any_probe(listener, tmp_path, option, kind):
    url, accepted = listener
    missing = tmp_path / "no_such_path"
    message = _usage_error(run_suite("-m", "S1", "--hosts", url, option, str(missing), report_dir=tmp_path / "r"))
    assert f"{option}: {missing}: no such {kind}" in message
    assert accepted == []  # no host was contacted
    assert not (tmp_path / "r").exists()
