"""The testbed's fixtures are data: host states as YAML (merge patches over a base), cluster drift
overlays that may patch an object instead of copying it. Checked without booting anything."""
from __future__ import annotations

from pathlib import Path

import pytest

from railiance_testbed.hosts import (
    CONFORMANT,
    DRIFTED,
    DRIFTED_CONTROLS,
    FIXTURES,
    FixtureError,
    kernel_files,
    kernel_views,
    live_sysctls,
    load_state,
    load_states,
)
from railiance_testbed.kubeapi import CONFORMANT_DUMP, DumpError, load_dump
from railiance_testbed.merge_patch import merge_patch


@pytest.mark.parametrize("target, patch, result", [  # RFC 7386 appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "foo"}, None, None),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_is_rfc_7386(target, patch, result):
    assert merge_patch(target, patch) == result


def test_every_host_state_file_loads_and_the_drifted_one_is_a_patch_over_the_conformant_one():
    states = load_states()
    assert {"conformant", "drifted"} <= set(states)
    assert CONFORMANT.drifts == frozenset() and DRIFTED.drifts == DRIFTED_CONTROLS and len(DRIFTED_CONTROLS) == 17
    assert DRIFTED.remotes["railiance-infra"] == CONFORMANT.remotes["railiance-infra"]  # merged, not replaced
    assert set(DRIFTED.files) == {"/etc/sysctl.d/60-swappiness.conf", "/etc/sysctl.d/99-zz-tuning.conf"}
    assert CONFORMANT.swap_bytes == 4 * 1024 ** 3 and CONFORMANT.swap_mode == 0o600 and DRIFTED.swap_mode == 0o644


def test_the_kernel_map_is_what_every_backend_binds(tmp_path):
    assert kernel_views(CONFORMANT) == ["/proc/meminfo", "/proc/swaps", "/proc/sys/vm/swappiness"]
    assert kernel_files(DRIFTED)["/proc/sys/vm/swappiness"] == "60\n"
    assert live_sysctls(CONFORMANT) == {"vm.swappiness": "10"}
    state = load_state_text("base: conformant\nkernel: {/sys/kernel/mm/transparent_hugepage/enabled: never}\n", tmp_path)
    assert kernel_views(state)[-1] == "/sys/kernel/mm/transparent_hugepage/enabled"  # /sys after /proc
    assert live_sysctls(state) == {"vm.swappiness": "10"}  # a VM's /sys is its own kernel's


def load_state_text(text: str, directory: Path) -> object:
    """A state file ``extra.yaml`` in ``directory``, beside a copy of the conformant one (its base)."""
    (directory / "conformant.yaml").write_text((FIXTURES / "conformant.yaml").read_text())
    path = directory / "extra.yaml"
    path.write_text(text)
    return load_state(path)


@pytest.mark.parametrize("text, problem", [
    ("base: conformant\nswapiness_live: 10\n", "swapiness_live: not a host state field"),
    ("base: extra\n", "the bases form a cycle"),
    ("base: conformant\nkernel: {/etc/sysctl.conf: 1}\n", "is not a path under /proc or /sys"),
    ("base: conformant\nfiles: {etc/x.conf: y}\n", "is not an absolute in-host path"),
    ("base: conformant\nswap_bytes: four GiB\n", "swap_bytes: 'four GiB' is not a size"),
    ("- a list\n", "a host state is a mapping"),
])
def test_a_host_state_that_is_not_a_host_names_file_and_key(tmp_path, text, problem):
    with pytest.raises(FixtureError, match=problem) as caught:
        load_state_text(text, tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'extra.yaml'}: ")


def test_a_cluster_overlay_may_merge_patch_one_object(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("patch:\n  apiVersion: apps/v1\n  kind: Deployment\n"
                       "  metadata: {namespace: gitea, name: gitea}\n  status: {readyReplicas: null, availableReplicas: 0}\n")
    before = next(o for o in load_dump(CONFORMANT_DUMP) if o["kind"] == "Deployment" and o["metadata"]["name"] == "gitea")
    after = next(o for o in load_dump([CONFORMANT_DUMP, overlay])
                 if o["kind"] == "Deployment" and o["metadata"]["name"] == "gitea")
    assert "readyReplicas" not in after["status"] and after["status"]["availableReplicas"] == 0
    assert after["spec"] == before["spec"] and after["status"]["conditions"] == before["status"]["conditions"]


def test_a_patch_that_matches_nothing_is_an_error(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("patch:\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata: {namespace: gitea, name: gitae}\n"
                       "  status: {readyReplicas: 0}\n")
    with pytest.raises(DumpError, match="patch matches no object loaded so far: apps/Deployment/gitea/gitae"):
        load_dump([CONFORMANT_DUMP, overlay])
