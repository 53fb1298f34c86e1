"""The features are the spec: the values a feature states are the expected values.

On a conformant testbed host: editing ``4 GiB`` to ``8 GiB`` in a copy of T01's feature — and
nothing else — makes host.swap.file drift with 8 GiB expected and the feature's line named as
the source; an inventory var (swap_size_gb) still wins over the feature, and the finding says so.
"""
from __future__ import annotations

import pytest

from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_testbed.hosts import CONFORMANT, GIB
from railiance_testbed.nspawn import SSH_PORT, Testbed
from tests.conftest import nspawn_unavailable_reason
from tests.suite_runner import copy_features, run_features


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([CONFORMANT], tmp_path_factory.mktemp("values")) as testbed:
        yield testbed


def _swap_file(run, target="conformant"):
    return next(f for f in run.findings(target) if f["control_id"] == "host.swap.file")


def _line(path, text):
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_value_changed_in_the_feature_is_the_expected_value_and_its_source(bed, tmp_path):
    features = copy_features(tmp_path)
    t01 = features / "S1" / "T01-swapfile.feature"
    t01.write_text(t01.read_text().replace("a regular file of 4 GiB", "a regular file of 8 GiB"))
    # no inventory vars: the feature's values are the desired state
    run = run_features(features, "-m", "T01", "--hosts", bed.hosts[0].url, "--ssh-config", str(bed.ssh_config),
                       report_dir=tmp_path / "r")
    finding = _swap_file(run, bed.hosts[0].address + f":{SSH_PORT}")
    assert finding["status"] == "drift"
    assert (finding["expected"]["size_bytes"], finding["observed"]["size_bytes"]) == (8 * GIB, 4 * GIB)
    assert finding["evidence"]["expected_from"]["size_gib"] == \
        f"features/S1/T01-swapfile.feature:{_line(t01, '8 GiB')}"
    # only T01's controls ran (-m T01: markers from the catalog)
    catalog = load_catalog(DEFAULT_POLICY_DIR)
    assert {f["control_id"] for f in run.findings() if f["control_id"].startswith("host.")} == \
        {c.id for c in catalog.controls.values() if c.task == "T01" and c.id.startswith("host.")}


def test_an_inventory_value_still_wins_and_the_finding_says_so(bed, tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    host = bed.hosts[0]
    (inventory / "hosts.ini").write_text(
        f"conformant ansible_host={host.address} ansible_port={SSH_PORT} ansible_user=tegwick\n")
    (inventory / "host_vars" / "conformant.yml").write_text("swap_swappiness: 10\nswap_size_gb: 2\n")
    features = copy_features(tmp_path)
    run = run_features(features, "-m", "T01", "--ansible-inventory", str(inventory / "hosts.ini"), "--ssh-config",
                       str(bed.ssh_config), report_dir=tmp_path / "r")
    finding = _swap_file(run)
    assert finding["status"] == "drift" and finding["expected"]["size_bytes"] == 2 * GIB
    assert finding["evidence"]["expected_from"]["size_gib"].startswith(f"{inventory / 'host_vars' / 'conformant.yml'}:2")
    assert finding["evidence"]["expected_from"]["path"].startswith("features/S1/T01-swapfile.feature:")
