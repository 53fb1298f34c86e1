"""Kind 6: hostile policy input is refused fast. A "billion laughs" document (nested aliases) or a
deeply nested one, as a policy, waiver, inventory or workplan file: exit 4 within about a second
of start-up, with a message naming the file."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from railiance_conformance.policy import DEFAULT_POLICY_DIR, PolicyError, check_yaml_bounds, read_yaml
from tests.faults.conftest import suite

LAUGHS = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"


def test_the_bounds_refuse_laughs_and_depth_quickly_and_keep_ordinary_aliases():
    for text, problem in ((LAUGHS, "expands to more than"), (DEEP, "nested deeper than 64")):
        started = time.monotonic()
        with pytest.raises(PolicyError, match=problem):
            check_yaml_bounds(text, "f.yaml")
        assert time.monotonic() - started < 1.0
    check_yaml_bounds("base: &b {x: 1}\nhost: *b\n", "ok.yaml")
    assert read_yaml(DEFAULT_POLICY_DIR / "layers.yaml")


def run_refused(tmp_path: Path, *args: str) -> str:
    done, took = suite(tmp_path / "r", *args)
    assert done.returncode == 4, done.stdout[-1500:] + done.stderr[-1500:]
    assert took < 15  # python and pytest start-up included; the refusal itself takes well under a second
    return done.stdout + done.stderr


def test_a_laughing_policy_file_exits_4_naming_it(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policies)
    (policies / "cluster.yaml").write_text(LAUGHS)
    out = run_refused(tmp_path, "--policy-dir", str(policies))
    assert f"{policies / 'cluster.yaml'}: line" in out and "refused: expands to more than" in out


def test_a_laughing_waiver_file_exits_4_naming_it(tmp_path):
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(LAUGHS)
    out = run_refused(tmp_path, "--waivers", str(waivers))
    assert f"{waivers}: line" in out and "refused" in out


def test_a_laughing_inventory_host_vars_file_exits_4_naming_it(tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    (inventory / "hosts.ini").write_text("[railiance]\ncoulombcore ansible_host=127.0.0.9\n")
    (inventory / "host_vars" / "coulombcore.yml").write_text(LAUGHS)
    out = run_refused(tmp_path, "--ansible-inventory", str(inventory / "hosts.ini"))
    assert f"{inventory / 'host_vars' / 'coulombcore.yml'}: line" in out and "refused" in out


def test_a_deeply_nested_workplan_front_matter_exits_4_naming_it(tmp_path):
    workplan = tmp_path / "RAIL-HO-WP-0004.md"
    workplan.write_text("---\nid: RAIL-HO-WP-0004\nstatus: active\n" + LAUGHS + "---\n\n### T01 — x\nid: RAIL-HO-WP-0004-T01\nstatus: done\n")
    out = run_refused(tmp_path, "--workplan", str(workplan))
    assert f"{workplan} (front matter)" in out and "refused" in out


def test_a_waiver_with_a_duplicate_key_exits_4_naming_file_line_and_key(tmp_path):
    # the reviewer approved "expires: 2027-03-31"; a later "expires: 2099-12-31" would silently win
    text = (DEFAULT_POLICY_DIR / "waivers.yaml").read_text()
    first = "    expires: 2027-03-31\n"
    assert first in text
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(text.replace(first, first + "    expires: 2099-12-31\n", 1))
    line = waivers.read_text().splitlines().index("    expires: 2099-12-31") + 1
    out = run_refused(tmp_path, "--waivers", str(waivers))
    assert f"{waivers}: line {line}, column 5: duplicate key 'expires'" in out, out[-1500:]


@pytest.mark.parametrize("name", ["cluster.yaml", "layers.yaml", "controls.yaml", "gate.yaml"])
def test_a_duplicate_key_in_any_policy_file_is_refused(name):
    text = "a: 1\nb:\n  c: 2\n  c: 3\n"
    with pytest.raises(PolicyError, match=r"line 4, column 3: duplicate key 'c' \(first at line 3\)"):
        check_yaml_bounds(text, name)
    check_yaml_bounds("a: &x {c: 1}\nb:\n  <<: *x\n  c: 2\nd: [{c: 1}, {c: 2}]\n", name)  # merge keys, lists: fine


def test_a_duplicate_key_in_inventory_group_vars_exits_4_naming_it(tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.ini").write_text("[railiance]\ncoulombcore ansible_host=127.0.0.9\n")
    (inventory / "group_vars" / "railiance.yml").write_text("swap_size_gb: 4\nnproc_soft: 512\nswap_size_gb: 8\n")
    out = run_refused(tmp_path, "--ansible-inventory", str(inventory / "hosts.ini"))
    assert f"{inventory / 'group_vars' / 'railiance.yml'}: line 3, column 1: duplicate key 'swap_size_gb'" in out


MERGED_TWICE = """kind: Waivers
version: 1
waivers:
  - &approved
    control: boundary.component.layer
    target: cnpg-system/cnpg
    justification: the operator moves with the next maintenance window
    approved_by: worsch
    expires: 2027-03-31
    link: railiance-platform/workplans/RAIL-PL-WP-0002-cnpg-operator-to-s3.md
  - &extended
    <<: *approved
    target: argocd/argocd
    expires: 2099-12-31
  - <<: [*approved, *extended]
    target: argocd/argocd-repo-server
"""


@pytest.mark.parametrize("variant", ["merged-twice", "tagged-key"])
def test_a_waiver_whose_expiry_is_given_twice_by_merges_or_a_tag_exits_4(tmp_path, variant):
    """``<<: [*approved, *extended]`` brings two expiries (the merge-key spec picks the first, PyYAML the
    last), and ``!!str expires`` is the key ``expires`` again: both refused before any probe."""
    waivers = tmp_path / "waivers.yaml"
    if variant == "merged-twice":
        waivers.write_text(MERGED_TWICE)
        expected = f"{waivers}: line 15, column 21: key 'expires' is merged twice (first at line 15)"
    else:
        text = (DEFAULT_POLICY_DIR / "waivers.yaml").read_text()
        first = "    expires: 2027-03-31\n"
        waivers.write_text(text.replace(first, first + "    !!str expires: 2099-12-31\n", 1))
        line = waivers.read_text().splitlines().index("    !!str expires: 2099-12-31") + 1
        expected = f"{waivers}: line {line}, column 5: duplicate key 'expires'"
    out = run_refused(tmp_path, "--waivers", str(waivers))
    assert expected in out, out[-1500:]
