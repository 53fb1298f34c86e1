"""The operators' inventory on real hosts: a host that takes only the inventory's key, a host
reachable only through a bastion given by ansible_ssh_common_args, ansible.cfg's remote_user and
private_key_file, and a vaulted desired value (right, missing and wrong password).

Three nspawn hosts of our own: ``keyonly`` (its authorized_keys hold only the operators' key, and
its nproc soft limit is the unusual 987, the value the vault test hides), ``bastion`` and
``behind`` (known to the bastion as behind.railiance.invalid, a name this machine cannot resolve:
only the jump reaches it)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_testbed.hosts import CGROUP2_CONTROLS, CONFORMANT, GITEA_NODEPORT, cgroup2_memory
from railiance_testbed.nspawn import SSH_PORT, Testbed
from tests.conftest import nspawn_unavailable_reason
from tests.inventory.vault_fixtures import password_file, vault_var
from tests.suite_runner import REPO, SuiteRun, run_suite

BEHIND_NAME = "behind.railiance.invalid"
# the kernel's cgroup v2 caps are an error (saying so) where containers get no cgroup v2: not counted here
NO_CGROUP2 = frozenset() if cgroup2_memory() else CGROUP2_CONTROLS
HOST_PROBED = len([c for c in load_catalog(DEFAULT_POLICY_DIR).controls.values()
                   if c.id.startswith("host.") and not c.pending and c.id not in NO_CGROUP2])
SECRET_SOFT = 987  # keyonly's nproc soft limit; vaulted in the vault tests
SECRET_TOKEN = re.compile(rb"(?<![\w.])987(?![\w])")
GROUP_VARS = ("swap_size_gb: 4\nswap_swappiness: 10\nnproc_hard: 1024\nuser_memory_max: 1500M\n"
              f"user_memory_swap_max: 512M\ngitea_ssh_nodeport: {GITEA_NODEPORT}\n")


def container_init_pid(nspawn_pid: int) -> int:
    children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    return int(children[0])


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")  # never a silent skip
    keyonly = replace(CONFORMANT, name="keyonly",
                      limits_conf_extra=f"tegwick soft nproc {SECRET_SOFT}\ntegwick hard nproc 1024\n")
    workdir = tmp_path_factory.mktemp("inventory-bed")
    with Testbed([keyonly, replace(CONFORMANT, name="bastion"), replace(CONFORMANT, name="behind")],
                 workdir) as testbed:
        hosts = {h.state.name: h for h in testbed.hosts}
        # the operators' key, the only one keyonly accepts (the testbed's default key is refused)
        ops_key = workdir / "id_ops"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ops_key)], check=True)
        (hosts["keyonly"].workdir / "layer" / "home" / ".ssh" / "authorized_keys").write_text(
            ops_key.with_suffix(".pub").read_text())
        # the bastion (and only it) resolves behind's name
        # (the container's /etc/hosts is bound read-only from its layer: append there, on this side)
        with open(hosts["bastion"].workdir / "layer" / "hosts", "a") as etc_hosts:
            etc_hosts.write(f"{hosts['behind'].address} {BEHIND_NAME}\n")
        known = testbed.known_hosts.read_text()
        behind_key = next(line for line in known.splitlines() if line.startswith(f"[{hosts['behind'].address}]"))
        known_hosts = workdir / "known_hosts_ops"
        known_hosts.write_text(known + behind_key.replace(hosts["behind"].address, BEHIND_NAME, 1) + "\n")
        testbed.ops_key, testbed.ops_known_hosts, testbed.by_name = ops_key, known_hosts, hosts
        yield testbed


def write_inventory(root: Path, bed, *, key: bool = True, jump: bool = True, extra_keyonly: str = "") -> Path:
    hosts = bed.by_name
    (root / "group_vars").mkdir(parents=True, exist_ok=True)
    (root / "host_vars").mkdir(exist_ok=True)
    (root / "hosts.ini").write_text(
        "[railiance]\n"
        f"keyonly ansible_host={hosts['keyonly'].address} ansible_port={SSH_PORT} ansible_user=tegwick\n"
        f"behind ansible_host={BEHIND_NAME} ansible_port={SSH_PORT} ansible_user=tegwick\n"
        "\n[behind_bastion]\nbehind\n")
    (root / "group_vars" / "railiance.yml").write_text(GROUP_VARS + "nproc_soft: 512\n")
    (root / "group_vars" / "behind_bastion.yml").write_text(  # group level
        f"ansible_ssh_common_args: '-o ProxyJump=tegwick@{hosts['bastion'].address}:{SSH_PORT}'\n" if jump else "")
    (root / "host_vars" / "keyonly.yml").write_text(  # host level
        (f"ansible_ssh_private_key_file: {bed.ops_key}\n" if key else "") + extra_keyonly)
    return root / "hosts.ini"


def ssh_args(bed) -> tuple[str, ...]:
    return ("-m", "S1", "--ssh-config", str(bed.ssh_config), "--known-hosts", str(bed.ops_known_hosts))


def probed(run: SuiteRun, target: str) -> list[dict]:
    return [f for f in run.findings(target) if f["status"] != "pending" and f["control_id"] not in NO_CGROUP2]


def test_key_only_host_and_host_behind_a_bastion_pass(bed, tmp_path):
    inventory = write_inventory(tmp_path / "inv", bed, extra_keyonly=f"nproc_soft: {SECRET_SOFT}\n")
    bastion_log = bed.by_name["bastion"].sshd_log
    logged_before = bastion_log.stat().st_size
    run = run_suite("--ansible-inventory", str(inventory), *ssh_args(bed), report_dir=tmp_path / "r")
    for target in ("keyonly", "behind"):
        findings = probed(run, target)
        assert len(findings) == HOST_PROBED, run.stdout[-3000:]
        assert {f["control_id"]: f["status"] for f in findings if f["status"] != "pass"} == {}, \
            [f["reason"] for f in findings if f["status"] != "pass"]
    connections = run.document["run"]["connections"]
    assert connections["keyonly"]["identity_file"] == str(bed.ops_key)
    assert (connections["keyonly"]["user"], connections["keyonly"]["port"]) == ("tegwick", SSH_PORT)
    assert connections["behind"]["jump_host"] == f"tegwick@{bed.by_name['bastion'].address}:{SSH_PORT}"
    assert connections["behind"]["address"] == BEHIND_NAME
    assert "Accepted publickey for tegwick" in bastion_log.read_text()[logged_before:]  # the jump went through it


def test_without_the_inventory_key_or_the_jump_both_hosts_are_errors(bed, tmp_path):
    """The counter-proof: the default key is refused and behind's name resolves only on the bastion."""
    inventory = write_inventory(tmp_path / "inv", bed, key=False, jump=False)
    run = run_suite("--ansible-inventory", str(inventory), *ssh_args(bed), report_dir=tmp_path / "r")
    assert {f["status"] for f in probed(run, "keyonly")} == {"error"}
    assert "Permission denied (publickey)" in probed(run, "keyonly")[0]["reason"]
    assert {f["status"] for f in probed(run, "behind")} == {"error"}
    assert BEHIND_NAME in probed(run, "behind")[0]["reason"]


def test_ansible_cfg_remote_user_and_private_key_file_are_used(bed, tmp_path):
    """The operators' ansible/ directory: ansible.cfg in the working directory names the inventory,
    the user and the key; the suite gets neither --ansible-inventory nor a key."""
    project = tmp_path / "ansible"
    (project / "inventory").mkdir(parents=True)
    (project / "keys").mkdir()
    key = project / "keys" / "id_ops"
    key.write_bytes(bed.ops_key.read_bytes())
    key.chmod(0o600)
    (project / "ansible.cfg").write_text("[defaults]\ninventory = inventory/hosts.ini\nremote_user = tegwick\n"
                                         "private_key_file = keys/id_ops\n")
    (project / "inventory" / "hosts.ini").write_text(
        f"[railiance]\nkeyonly ansible_host={bed.by_name['keyonly'].address} ansible_port={SSH_PORT}\n")
    (project / "inventory" / "group_vars").mkdir()
    (project / "inventory" / "group_vars" / "railiance.yml").write_text(GROUP_VARS + f"nproc_soft: {SECRET_SOFT}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "features"), "-p", "no:randomly",
                           "--report-dir", str(tmp_path / "r"), *ssh_args(bed)],
                          cwd=project, capture_output=True, text=True, timeout=300, env=env)
    run = SuiteRun(proc.returncode, proc.stdout, proc.stderr, tmp_path / "r")
    assert (tmp_path / "r" / "findings.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    findings = probed(run, "keyonly")
    assert len(findings) == HOST_PROBED and {f["status"] for f in findings} == {"pass"}, proc.stdout[-3000:]
    evidence = run.document["run"]["connections"]["keyonly"]
    assert (evidence["user"], evidence["identity_file"]) == ("tegwick", str(key))
    # everything verified passes; where containers get no cgroup v2 its check is an error, which fails the run
    assert run.returncode == (1 if NO_CGROUP2 else 0)


@pytest.fixture(scope="module")
def vaulted_inventory(bed, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vaulted")
    return write_inventory(root / "inv", bed, extra_keyonly=vault_var("nproc_soft", str(SECRET_SOFT)))


def test_a_vaulted_desired_value_passes_and_is_never_printed(bed, vaulted_inventory, tmp_path):
    run = run_suite("--ansible-inventory", str(vaulted_inventory), "--limit", "keyonly", *ssh_args(bed),
                    "--vault-password-file", str(password_file(tmp_path)), "-v", report_dir=tmp_path / "r")
    findings = probed(run, "keyonly")
    assert len(findings) == HOST_PROBED and {f["status"] for f in findings} == {"pass"}, run.stdout[-3000:]
    nproc = {f["control_id"]: f for f in findings}["host.nproc.configured"]
    assert nproc["expected"] == {"soft": "***", "hard": 1024} and nproc["observed"] == {"soft": "***", "hard": 1024}
    reports = sorted(p for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert {p.name for p in reports} >= {"findings.json", "junit.xml", "summary.md", "report.html",
                                         "railiance_conformance.prom", "policyreport.yaml", "history.sqlite"}
    for blob, name in [*((p.read_bytes(), p.name) for p in reports), (run.stdout.encode(), "stdout"),
                       (run.stderr.encode(), "stderr")]:
        assert not SECRET_TOKEN.search(blob), f"the vaulted value is in {name}"


def sshd_log_size(bed) -> int:
    return bed.by_name["keyonly"].sshd_log.stat().st_size


def test_a_vaulted_desired_value_without_the_password_is_exit_4_before_any_probe(bed, vaulted_inventory, tmp_path):
    before = sshd_log_size(bed)
    run = run_suite("--ansible-inventory", str(vaulted_inventory), *ssh_args(bed), report_dir=tmp_path / "r")
    assert run.returncode == 4
    message = run.stderr + run.stdout
    assert (f"{vaulted_inventory.parent / 'host_vars' / 'keyonly.yml'}:2:" in message
            and "nproc_soft (host keyonly): is vault-encrypted and no vault password was given" in message
            and "--vault-password-file" in message), message[-2000:]
    assert sshd_log_size(bed) == before  # no probe ran
    assert not SECRET_TOKEN.search(message.encode())


def test_a_wrong_vault_password_is_exit_4(bed, vaulted_inventory, tmp_path):
    wrong = password_file(tmp_path, "not the password", name="wrong")
    run = run_suite("--ansible-inventory", str(vaulted_inventory), *ssh_args(bed),
                    "--vault-password-file", str(wrong), report_dir=tmp_path / "r")
    assert run.returncode == 4
    assert f"the vault password given ({wrong}) does not decrypt it" in run.stderr + run.stdout
