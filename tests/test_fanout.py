"""How host scenarios fan out: one pytest item per host control evaluates every host; ``-k`` selects hosts.

A run costs one SSH command per host and one pytest item per control, not hosts x controls items
(100 hosts at most 3x one host). ``-k`` still selects by host name, with the same meaning
as if the items were one per host. Hosts here are unreachable loopback ports: every host control is
an error finding naming its host, which is all this needs.
"""
from __future__ import annotations

import pytest

from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from tests.suite_runner import run_suite

pytestmark = pytest.mark.testbed  # end-to-end runs of the suite (its hosts are closed loopback ports)

HOSTS = ["ssh://tegwick@127.0.0.2:9", "ssh://tegwick@127.0.0.3:9", "ssh://tegwick@127.0.0.4:9"]
NAMES = ["127.0.0.2:9", "127.0.0.3:9", "127.0.0.4:9"]
T01_HOST = {c.id for c in load_catalog(DEFAULT_POLICY_DIR).controls.values()
            if c.task == "T01" and c.id.startswith("host.")}


def _targets(run) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for finding in run.findings():
        if finding["control_id"] not in T01_HOST:
            continue  # T01's repo controls (goss) have their own target
        found.setdefault(finding["control_id"], set()).add(finding["target"])
    return found


def test_one_item_per_host_control_evaluates_every_host(tmp_path):
    collected = run_suite("-m", "T01", "--hosts", ",".join(HOSTS), "--collect-only", "-q", report_dir=tmp_path / "c")
    ids = [line for line in collected.stdout.splitlines() if "::test_host" in line]
    assert len(ids) == len(T01_HOST) and not any("[" in i for i in ids), ids  # no per-host parametrisation
    run = run_suite("-m", "T01", "--hosts", ",".join(HOSTS), report_dir=tmp_path / "r")
    assert _targets(run) == {c: set(NAMES) for c in T01_HOST}
    assert all(f["status"] == "error" and "Connection refused" in f["reason"]
               for f in run.findings() if f["control_id"] in T01_HOST)
    # each failing item names every host that could not be verified, one line each
    assert all(f"host.swap.file on {name}: could not verify" in run.stdout for name in NAMES)


def test_k_selects_hosts_as_if_items_were_per_host(tmp_path):
    only = run_suite("-m", "T01", "-k", "127.0.0.3", "--hosts", ",".join(HOSTS), report_dir=tmp_path / "a")
    assert _targets(only) == {c: {"127.0.0.3:9"} for c in T01_HOST}
    others = run_suite("-m", "T01", "-k", "swap and not 127.0.0.3", "--hosts", ",".join(HOSTS), report_dir=tmp_path / "b")
    assert _targets(others) == {c: {"127.0.0.2:9", "127.0.0.4:9"} for c in T01_HOST}


def test_without_hosts_a_host_control_is_one_error_that_says_why(tmp_path):
    run = run_suite("-m", "T01", report_dir=tmp_path / "r")
    assert _targets(run) == {c: {"(no hosts)"} for c in T01_HOST}
    assert all("no host targets given" in f["reason"] for f in run.findings() if f["control_id"] in T01_HOST)
