"""--settle: right after a converge the cluster is still settling.

The API stand-in's objects change while the suite reads them (``KubeAPIStandIn.replace_objects``):
a CNPG Cluster that turns healthy after a delay passes within the budget and records when; one
that never does is drift after the budget with its attempts; one that flaps is reported flapping.
The re-probes are counted on the stand-in's request log: each attempt re-LISTs only the kinds the
failing controls read, once each.
"""
from __future__ import annotations

import copy
import threading
import time
from collections import Counter

import pytest

from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from tests.suite_runner import run_suite

pytestmark = pytest.mark.testbed


def _degraded(objects: list[dict], ready: int = 0, phase: str = "Setting up primary") -> list[dict]:
    objects = copy.deepcopy(objects)
    cluster = next(o for o in objects if o["kind"] == "Cluster" and o["metadata"]["name"] == "gitea-db")
    cluster["status"]["readyInstances"], cluster["status"]["phase"] = ready, phase
    return objects


def _after(condition, action, *, delay_s: float = 0.5, timeout_s: float = 60) -> threading.Thread:
    """Run ``action`` ``delay_s`` after ``condition()`` first holds (the suite's first probe was answered),
    so the change lands between the first probe and a re-probe however slow the machine is."""
    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay_s)
        action()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _finding(run, control_id):
    return next(f for f in run.findings() if f["control_id"] == control_id)


def _lists(api, plural: str) -> int:
    return sum(1 for r in api.request_log if r.method == "GET" and r.path.endswith(f"/{plural}"))


def test_a_cluster_that_turns_healthy_passes_within_the_budget_and_records_when(tmp_path):
    healthy = load_dump([CONFORMANT_DUMP])
    with KubeAPIStandIn(_degraded(healthy)) as api:
        _after(lambda: _lists(api, "clusters") >= 1, lambda: api.replace_objects(healthy))
        started = time.monotonic()
        run = run_suite("-m", "T03 and cluster", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")),
                        "--settle", "20", report_dir=tmp_path / "r")
        took = time.monotonic() - started
    finding = _finding(run, "cluster.gitea_db.healthy")
    settle = finding["evidence"]["settle"]
    assert finding["status"] == "pass", finding
    assert settle["attempts"] >= 2 and settle["statuses"][0] == "drift" and settle["statuses"][-1] == "pass"
    assert 0 < settle["passed_after_s"] < 12 and not settle["flapping"]
    assert took < 20  # it stopped as soon as everything passed, not at the end of the budget
    # the first probe listed each kind once; every attempt re-listed only the CNPG clusters the failing
    # control reads, once
    assert _lists(api, "clusters") == settle["attempts"]
    assert _lists(api, "deployments") <= 1


def test_a_cluster_that_never_settles_is_drift_after_the_budget_with_its_attempts(tmp_path):
    with KubeAPIStandIn(_degraded(load_dump([CONFORMANT_DUMP]))) as api:
        started = time.monotonic()
        run = run_suite("-m", "T03 and cluster", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")),
                        "--settle", "4", report_dir=tmp_path / "r")
        took = time.monotonic() - started
    finding = _finding(run, "cluster.gitea_db.healthy")
    settle = finding["evidence"]["settle"]
    assert finding["status"] == "drift" and set(settle["statuses"]) == {"drift"}
    assert settle["attempts"] >= 3 and settle["passed_after_s"] is None
    assert f"still drift after {settle['attempts']} attempts in a 4 s settle budget" in finding["reason"]
    assert 4 <= took < 4 + 15
    assert _lists(api, "clusters") == settle["attempts"]


def test_a_flapping_cluster_is_reported_flapping(tmp_path):
    healthy = load_dump([CONFORMANT_DUMP])
    # the spec never passes (an instance count the workplan does not allow), so the clusters are re-listed
    # on every attempt; the health flips between those lists
    broken_spec = copy.deepcopy(healthy)
    spec_cluster = next(o for o in broken_spec if o["kind"] == "Cluster" and o["metadata"]["name"] == "gitea-db")
    spec_cluster["spec"]["instances"] = 7
    spec_cluster["status"]["instances"] = spec_cluster["status"]["readyInstances"] = 7
    variants = [_degraded(broken_spec, ready=6), broken_spec]
    with KubeAPIStandIn(variants[0]) as api:
        stop = threading.Event()

        def flip() -> None:
            # after each LIST of the clusters the next one sees the other variant: degraded, healthy,
            # degraded, ... whatever the machine's speed (the re-probes are >= 0.5 s apart, this polls 10 ms)
            seen = 0
            while not stop.wait(0.01):
                lists = _lists(api, "clusters")
                if lists != seen:
                    seen = lists
                    api.replace_objects(variants[seen % 2])
        flipper = threading.Thread(target=flip, daemon=True)
        flipper.start()
        run = run_suite("-m", "T03 and cluster", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")),
                        "--settle", "8", report_dir=tmp_path / "r")
        stop.set()
    healthy_finding = _finding(run, "cluster.gitea_db.healthy")
    statuses = healthy_finding["evidence"]["settle"]["statuses"]
    assert healthy_finding["evidence"]["settle"]["flapping"], statuses
    assert "flapping while settling" in healthy_finding["reason"]
    assert _finding(run, "cluster.gitea_db.spec")["status"] == "drift"
    counts = Counter(r.path.rsplit("/", 1)[-1] for r in api.request_log if r.method == "GET")
    assert counts["clusters"] == len(statuses)  # one LIST of the kind per attempt


def test_a_host_fixed_while_settling_passes_with_one_ssh_command_per_attempt(tmp_path_factory, tmp_path):
    """The operator's ~/.ssh/config gets Gitea's Port after the first probe: host.gitea_ssh.config passes on a
    re-probe, and the host's sshd saw one command for the first probe plus one per attempt."""
    from dataclasses import replace

    from railiance_testbed.hosts import CONFORMANT, GITEA_NODEPORT
    from railiance_testbed.nspawn import Testbed
    from tests.conftest import nspawn_unavailable_reason

    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([replace(CONFORMANT, name="settling", ssh_port_in_config=GITEA_NODEPORT + 1)],
                 tmp_path_factory.mktemp("settling")) as bed:
        host = bed.hosts[0]
        config = host.workdir / "layer" / "home" / ".ssh" / "config"
        fixed = config.read_text().replace(f"Port {GITEA_NODEPORT + 1}", f"Port {GITEA_NODEPORT}")
        time.sleep(0.5)  # the testbed's own readiness login is logged completely
        before = host.sshd_log.read_text().count("Starting session: command")

        def first_probe_ended() -> bool:
            lines = host.sshd_log.read_text().splitlines()
            starts = [i for i, line in enumerate(lines) if "Starting session: command" in line]
            return len(starts) > before and any("Disconnected from user" in line for line in lines[starts[before]:])
        # once the suite's first probe has ended, the operator fixes the Port
        _after(first_probe_ended, lambda: config.write_text(fixed), delay_s=0.0)
        run = run_suite("-m", "T07", "-k", "gitea_ssh and config", "--ansible-inventory", str(bed.inventory),
                        "--ssh-config", str(bed.ssh_config), "--settle", "20", report_dir=tmp_path / "r")
        commands = host.sshd_log.read_text().count("Starting session: command") - before
    finding = next(f for f in run.findings("settling") if f["control_id"] == "host.gitea_ssh.config")
    settle = finding["evidence"]["settle"]
    assert finding["status"] == "pass" and settle["statuses"][0] == "drift" and settle["statuses"][-1] == "pass"
    assert settle["passed_after_s"] > 0
    assert commands == settle["attempts"]  # one SSH command per attempt, the first probe included
