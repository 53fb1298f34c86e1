"""Two runs on the testbed with a change in between: one host fixed, another drifted.

The diff, first-seen dates and drift streaks must agree in findings.json, summary.md and the
history database. A dedicated two-host testbed is used because its files are changed here.
"""
from __future__ import annotations

import sqlite3

import pytest

from railiance_testbed.hosts import CONFORMANT, DRIFTED, DRIFTED_CONTROLS
from railiance_testbed.nspawn import Testbed
from tests.conftest import nspawn_unavailable_reason
from tests.suite_runner import run_suite


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")
    with Testbed([CONFORMANT, DRIFTED], tmp_path_factory.mktemp("bed2")) as testbed:
        yield testbed


def layer_file(bed: Testbed, host: str, path: str):
    node = next(h for h in bed.hosts if h.state.name == host)
    return node.workdir / "layer" / "etc-files" / path.lstrip("/")


def test_a_fixed_host_and_a_new_drift_show_in_json_markdown_and_history(bed, tmp_path):
    reports = tmp_path / "reports"
    args = ("-m", "S1", "--ansible-inventory", str(bed.inventory), "--ssh-config", str(bed.ssh_config))
    first = run_suite(*args, report_dir=reports)
    first_id = first.document["run"]["id"]
    assert first.statuses("drifted")["host.swap.fstab"] == "drift"
    assert first.statuses("conformant")["host.swappiness.persisted"] == "pass"

    # fix the drifted host's fstab, and let a later sysctl.d file override the conformant host's swappiness
    # (written in place: the container sees the bind-mounted file change)
    fstab = layer_file(bed, "drifted", "/etc/fstab")
    fstab.write_text(fstab.read_text().replace("#/swapfile", "/swapfile"))
    sysctl = layer_file(bed, "conformant", "/etc/sysctl.d/60-swappiness.conf")
    sysctl.write_text("vm.swappiness = 30\n")

    second = run_suite(*args, report_dir=reports)
    second_id = second.document["run"]["id"]
    diff = second.document["run"]["diff"]
    assert (diff["from_run"], diff["to_run"]) == (first_id, second_id)
    assert diff["new_drift"] == ["host.swappiness.persisted@conformant"]
    assert diff["fixed"] == ["host.swap.fstab@drifted"]
    # every drift of the drifted host persists but the fixed fstab
    assert sorted(diff["persisting"]) == sorted(f"{c}@drifted" for c in DRIFTED_CONTROLS - {"host.swap.fstab"})

    history = second.document["run"]["history"]
    assert history["host.swap.file@drifted"]["consecutive_drift"] == 2
    assert history["host.swap.file@drifted"]["first_seen_run"] == first_id
    assert history["host.swappiness.persisted@conformant"]["consecutive_drift"] == 1
    assert history["host.swappiness.persisted@conformant"]["first_seen_run"] == first_id
    assert history["host.swap.fstab@drifted"]["consecutive_drift"] == 0

    markdown = (reports / "summary.md").read_text()
    since = markdown.split("Since the previous run")[1]
    assert "host.swappiness.persisted@conformant" in since and "host.swap.fstab@drifted" in since
    # the drift row says since when it drifts: the first run of its current streak, and how many runs
    rows = [line for line in markdown.splitlines() if line.startswith("| `host.swap.file` ")]
    assert len(rows) == 1 and f"`{first_id}`" in rows[0] and "(2 runs)" in rows[0] and "`drifted`" in rows[0]
    rows = [line for line in markdown.splitlines() if line.startswith("| `host.swappiness.persisted` ")]
    assert any(f"`{second_id}`" in row and "(1 run)" in row and "`conformant`" in row for row in rows)

    with sqlite3.connect(reports / "history.sqlite") as db:
        assert [r[0] for r in db.execute("select run_id from runs order by seq")] == [first_id, second_id]
