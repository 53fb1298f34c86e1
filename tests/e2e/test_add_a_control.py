"""A control of a known kind is data: added to a scratch copy of this checkout without touching a
Python file, it runs on the testbed, passes on the conformant host and cluster and drifts on the
drifted ones.

The steps below are docs/contributing.md's checklists, in order ("A host control of a known kind",
"A cluster control of a known kind"); a step added there belongs here too:

host (``vm.overcommit_memory`` is 1 now, and persisted in sysctl.d):
  1. the scenarios (a feature file under features/S1/), one Then sentence of a known kind each;
  2. the catalog entries, with ``vars`` naming the Ansible var that overrides the value per host;
  3. the var and its type under the catalog's ``vars``;
  4. the kernel's range and boot default of the key in resources/sysctl_keys.yaml (optional data);
  5. the testbed's host fixtures: the conformant host's file and kernel value, the drifted host's
     (a merge patch over the conformant one) and the new ids in its ``drifts``; the var in the
     testbed inventory's group_vars.
cluster (the cert-manager cainjector Deployment is available):
  1. the scenario; 2. the catalog entry;
  3. a drift overlay (dumps/drifted/<case>/): a merge patch that breaks the object, and
     expected.yaml listing every control that must drift with it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_CASE = "cert-manager-cainjector-down"
HOST_IDS = ("host.overcommit.live", "host.overcommit.persisted")
CLUSTER_ID = "cluster.cert_manager.cainjector"


def _scratch_copy(destination: Path) -> Path:
    """The checkout's files as git sees them (tracked and untracked-not-ignored), no .venv, no reports."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = REPO / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _python_files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _replace(path: Path, old: str, new: str) -> None:
    content = path.read_text()
    assert old in content, f"{path}: {old!r} not found (the checklist's anchor moved?)"
    path.write_text(content.replace(old, new, 1))


def add_host_control(root: Path) -> None:
    # 1. the scenarios
    (root / "features/S1/T01-overcommit.feature").write_text(
        "@hosts\n"
        "Feature: T01 — memory overcommit is always allowed (the swapfile role's sysctl)\n"
        "  The workload's allocator needs vm.overcommit_memory = 1, live and persisted in /etc/sysctl.d/.\n\n"
        "  Background:\n"
        "    Given the host's facts, gathered in one SSH command\n\n"
        "  Scenario: host.overcommit.live — the kernel always allows overcommit\n"
        "    Then vm.overcommit_memory is 1 now\n\n"
        "  Scenario: host.overcommit.persisted — the overcommit mode survives a reboot\n"
        "    Then sysctl.d sets vm.overcommit_memory to 1 for the next boot\n")
    # 2. the catalog entries, and 3. the var with its type
    catalog = root / "policies/controls.yaml"
    _replace(catalog, "  swap_swappiness: {type: integer, minimum: 0, maximum: 200}\n",
             "  swap_swappiness: {type: integer, minimum: 0, maximum: 200}\n"
             "  swap_overcommit_memory: {enum: [0, 1, 2]}\n")
    _append(catalog, "".join(
        f"  - id: {control_id}\n    task: T01\n    layer: S1\n    severity: medium\n    title: {title}\n"
        f"    vars: {{value: swap_overcommit_memory}}\n    remediation: \"{fix}\"\n"
        for control_id, title, fix in (
            (HOST_IDS[0], "vm.overcommit_memory is the stated value now",
             "railiance-infra: make converge; by hand: sudo sysctl -w vm.overcommit_memory=<swap_overcommit_memory>"),
            (HOST_IDS[1], "the sysctl.d file that wins precedence sets vm.overcommit_memory to the stated value",
             "railiance-infra: make converge (persist vm.overcommit_memory in /etc/sysctl.d/)"))))
    # 4. the key's kernel range and boot default
    _append(root / "railiance_conformance/resources/sysctl_keys.yaml",
            "vm.overcommit_memory:\n  range: [0, 2]\n  default: 0\n"
            "  source: mm/util.c sysctl_overcommit_memory (OVERCOMMIT_GUESS); kernel/sysctl.c vm_table (SYSCTL_ZERO..SYSCTL_TWO)\n")
    # 5. the testbed's host fixtures
    fixtures = root / "railiance_testbed/fixtures/hosts"
    _replace(fixtures / "conformant.yaml", "files:\n",
             "files:\n  /etc/sysctl.d/60-overcommit.conf: |\n    vm.overcommit_memory = 1\n")
    _replace(fixtures / "conformant.yaml", "kernel:\n", "kernel:\n  /proc/sys/vm/overcommit_memory: 1\n")
    _replace(fixtures / "drifted.yaml", "files:\n",
             "files:\n  /etc/sysctl.d/60-overcommit.conf: null   # never persisted\n")
    _replace(fixtures / "drifted.yaml", "kernel:\n", "kernel:\n  /proc/sys/vm/overcommit_memory: 0\n")
    _replace(fixtures / "drifted.yaml", "drifts:\n", "drifts:\n" + "".join(f"  - {c}\n" for c in HOST_IDS))
    # the var as the operators' inventory sets it (the per-host override reaches the desired state)
    _append(root / "railiance_testbed/fixtures/inventory/group_vars/coulomb.yml", "swap_overcommit_memory: 1\n")


def add_cluster_control(root: Path) -> None:
    # 1. the scenario
    (root / "features/S2/cert-manager-cainjector.feature").write_text(
        "@cluster\n"
        "Feature: S2 — cert-manager's CA injector is up (RAIL-HO-WP-0004-T06)\n\n"
        "  Background:\n"
        "    Given the cluster, read through the Kubernetes API\n\n"
        f"  Scenario: {CLUSTER_ID} — the CA injector is available\n"
        "    Then Deployment cert-manager/cert-manager-cainjector is available with every replica ready\n")
    # 2. the catalog entry
    _append(root / "policies/controls.yaml",
            f"  - id: {CLUSTER_ID}\n    task: T06\n    layer: S2\n    severity: high\n"
            "    title: cert-manager's CA injector Deployment is available with every replica ready\n"
            "    remediation: \"railiance-cluster: make converge (helm upgrade cert-manager); kubectl -n cert-manager "
            "describe deploy cert-manager-cainjector\"\n")
    # 3. the drift overlay: a merge patch, and what must drift with it
    case = root / "railiance_testbed/kubeapi/dumps/drifted" / CLUSTER_CASE
    case.mkdir()
    (case / "overlay.yaml").write_text(
        "# cert-manager's CA injector is down: its Deployment 0/1 available (a merge patch over dumps/conformant)\n"
        "patch:\n  apiVersion: apps/v1\n  kind: Deployment\n"
        "  metadata: {namespace: cert-manager, name: cert-manager-cainjector}\n"
        "  status:\n    readyReplicas: null\n    availableReplicas: null\n    unavailableReplicas: 1\n"
        "    conditions:\n    - {type: Available, status: 'False', reason: MinimumReplicasUnavailable,\n"
        "       message: Deployment does not have minimum availability.}\n")
    (case / "expected.yaml").write_text(
        f"description: \"cert-manager's CA injector is down: Deployment cert-manager-cainjector 0/1 available.\"\n"
        f"drift: [{CLUSTER_ID}, cluster.cert_manager.release]\n")


def _run_on_testbed(root: Path, report_dir: Path, *testbed_args: str) -> dict:
    script = ('exec "$0" -m pytest features/ -p no:randomly -q --ansible-inventory "$TESTBED_INVENTORY" '
              '--ssh-config "$TESTBED_SSH_CONFIG" --kubeconfig "$TESTBED_KUBECONFIG" --repos "$TESTBED_REPOS" '
              '--workplan "$TESTBED_WORKPLAN" --report-dir "$1"')
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-m", "railiance_testbed", "run", *testbed_args, "--",
                           "sh", "-c", script, sys.executable, str(report_dir)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((report_dir / "findings.json").read_text())


def _status(document: dict, control_id: str, target: str | None = None) -> str:
    found = [f["status"] for f in document["findings"]
             if f["control_id"] == control_id and (target is None or f["target"] == target)]
    assert len(found) == 1, f"{control_id}@{target}: {found}"
    return found[0]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    root = _scratch_copy(tmp_path_factory.mktemp("scratch"))
    before = _python_files(root)
    add_host_control(root)
    add_cluster_control(root)
    assert _python_files(root) == before, "adding a control of a known kind touched a Python file"
    return root


def test_a_host_and_a_cluster_control_of_known_kinds_run_from_data_alone(scratch, tmp_path):
    """Drifted cluster overlay run: the host controls pass on conformant and drift on drifted, the
    cluster control drifts with the new overlay (and exactly its expected.yaml list drifts)."""
    drifted = _run_on_testbed(scratch, tmp_path / "drifted", "--cluster-drift", CLUSTER_CASE)
    for control_id in HOST_IDS:
        assert _status(drifted, control_id, "conformant") == "pass"
        assert _status(drifted, control_id, "drifted") == "drift"
        finding = next(f for f in drifted["findings"] if f["control_id"] == control_id and f["target"] == "conformant")
        assert "group_vars/coulomb.yml" in json.dumps(finding["evidence"]), finding["evidence"]  # the var was read
    assert _status(drifted, CLUSTER_ID) == "drift"
    expected = set(__import__("yaml").safe_load(
        (scratch / "railiance_testbed/kubeapi/dumps/drifted" / CLUSTER_CASE / "expected.yaml").read_text())["drift"])
    cluster_drift = {f["control_id"] for f in drifted["findings"]
                     if f["control_id"].startswith("cluster.") and f["status"] == "drift"}
    assert cluster_drift == expected
    # the drifted host drifts on exactly the fixture's drifts list (its other controls pass or cannot be judged)
    drifts = {f["control_id"] for f in drifted["findings"] if f["target"] == "drifted" and f["status"] == "drift"}
    listed = set(__import__("yaml").safe_load(
        (scratch / "railiance_testbed/fixtures/hosts/drifted.yaml").read_text())["drifts"])
    assert drifts == listed

    conformant = _run_on_testbed(scratch, tmp_path / "conformant", "--no-drifted", "--no-down")
    assert _status(conformant, CLUSTER_ID) == "pass"
    for control_id in HOST_IDS:
        assert _status(conformant, control_id, "conformant") == "pass"


def test_the_checklist_in_docs_is_the_one_this_test_follows():
    """docs/contributing.md names each step the test above takes, in the same files."""
    text = (REPO / "docs/contributing.md").read_text()
    for needle in ("features/S1/", "policies/controls.yaml", "railiance_conformance/resources/sysctl_keys.yaml",
                   "railiance_testbed/fixtures/hosts/conformant.yaml", "railiance_testbed/fixtures/hosts/drifted.yaml",
                   "drifts", "kernel:", "railiance_testbed/fixtures/inventory/group_vars/coulomb.yml",
                   "railiance_testbed/kubeapi/dumps/drifted/", "expected.yaml", "patch:",
                   "tests/e2e/test_add_a_control.py"):
        assert needle in text, f"docs/contributing.md does not mention {needle!r}"
