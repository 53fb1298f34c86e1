"""The fact script's order does not depend on the interpreter's hash seed: the selected controls (a set, from
the collected items) are planned in the features' order, so the facts read before one that blocks until the
host's deadline are the same on every run (a run once lost its swap controls to a FIFO in a git config because
its hash seed put them after the git facts)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
from railiance_conformance.checks import CheckPlan, bundled_plan
plan = bundled_plan()
host_controls = {c for c in plan.selected if c.startswith("host.")}
chosen = CheckPlan(plan.catalog, plan.specs, host_controls)
print(chosen.selected)
"""


def _selected(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_the_plan_is_in_the_features_order_whatever_the_hash_seed():
    orders = {_selected(seed) for seed in ("0", "1", "2", "3")}
    assert len(orders) == 1, orders


def test_the_selected_controls_keep_the_features_order():
    from railiance_conformance.checks import CheckPlan, bundled_plan

    plan = bundled_plan()
    chosen = list(reversed(plan.selected))[:5]
    assert CheckPlan(plan.catalog, plan.specs, chosen).selected == [c for c in plan.selected if c in chosen]


def test_hosts_with_the_same_params_share_their_facts_and_others_get_their_own():
    """host_facts remembers a kind's facts per (control, params): every target must still get exactly
    the facts a plan of its own would give it, whichever target came first and whatever its vars."""
    from railiance_conformance.checks import CheckPlan, bundled_plan
    from railiance_conformance.targets import HostTarget

    plan = bundled_plan()
    host_controls = [c for c in plan.selected if c.startswith("host.")]
    targets = [HostTarget("a", "ssh://a", {}),
               HostTarget("b", "ssh://b", {"swap_file": "/var/swap.img", "operator_user": "ops"}),
               HostTarget("c", "ssh://c", {}),
               HostTarget("d", "ssh://d", {"swap_file": "/var/swap.img"}),
               HostTarget("e", "ssh://e", {"operator_user": "ops", "operator_uid": 1001})]
    shared = CheckPlan(plan.catalog, plan.specs, host_controls)
    for target in targets + targets[::-1]:
        alone = CheckPlan(plan.catalog, plan.specs, host_controls).host_facts(target)
        assert shared.host_facts(target) == alone, target.name
    sections = {t.name: {f.section for f in shared.host_facts(t)} for t in targets}
    assert sections["a"] == sections["c"]
    assert "stat /var/swap.img" in " ".join(sections["b"]) and "/var/swap.img" not in " ".join(sections["a"])
    assert any("ops" in s for s in sections["e"]) and not any(" ops" in s for s in sections["a"])
