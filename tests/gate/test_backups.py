"""gate.backup.recent on synthetic CloudNativePG Backups (and the testbed's conformant dump)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from railiance_conformance.finding import Status
from railiance_conformance.probes.cluster import ClusterUnavailable
from railiance_conformance.resources.cnpg_backups import BACKUPS, backup_recency

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


class FakeSnapshot:
    """The ``list()`` of ``ClusterSnapshot`` over a list of objects; counts its calls."""

    def __init__(self, objects: list[dict] | Exception):
        self.objects, self.calls = objects, []

    def list(self, kind: str, *, namespace: str | None = None, label_selector: str = "") -> list[dict]:
        self.calls.append((kind, namespace))
        if isinstance(self.objects, Exception):
            raise self.objects
        group = kind.split(".", 1)[1]
        return [o for o in self.objects if o["kind"] == "Backup" and o["apiVersion"].startswith(group + "/")
                and (namespace is None or o["metadata"]["namespace"] == namespace)]


def backup(name: str, phase: str | None, *, stopped: str | None = None, started: str | None = None,
           created: str = "2026-11-20T00:00:00Z", cluster: str = "gitea-db", namespace: str = "databases",
           error: str = "") -> dict:
    fields = (("phase", phase), ("stoppedAt", stopped), ("startedAt", started), ("error", error))
    status = {key: value for key, value in fields if value}
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
            "spec": {"cluster": {"name": cluster}, "method": "barmanObjectStore"}, "status": status}


def recency(objects, window_hours=26, **kw):
    snap = FakeSnapshot(objects)
    outcome = backup_recency(snap, namespace="databases", cluster="gitea-db", window_hours=window_hours, now=NOW, **kw)
    assert snap.calls == [(BACKUPS, "databases")]  # one list of one kind
    return outcome


DAILY = [backup("daily-25", "completed", started="2026-11-25T02:00:03Z", stopped="2026-11-25T02:03:58Z"),
         backup("daily-26", "completed", started="2026-11-26T02:00:02Z", stopped="2026-11-26T02:04:11Z")]


def test_too_old_is_drift_naming_the_backup_and_its_age():
    outcome = recency(DAILY, window_hours=24)
    assert outcome.status is Status.DRIFT
    assert outcome.observed == {"backup": "daily-26", "phase": "completed", "age_hours": 33.9}
    assert outcome.expected == {"cluster": "gitea-db", "phase": "completed", "within_hours": 24}
    assert "older than the 24 h window" in outcome.reason


def test_within_the_window_passes_with_its_age():
    outcome = recency(DAILY, window_hours=36)
    assert (outcome.status, outcome.observed) == (Status.PASS, {"backup": "daily-26", "phase": "completed",
                                                                "age_hours": 33.9})
    assert dict(outcome.evidence)["newest_completed"] == "daily-26 at 2026-11-26T02:04:11Z"


def test_a_newer_failed_backup_is_drift_even_with_an_older_good_one():
    failed = backup("manual-27", "failed", started="2026-11-27T09:00:00Z", stopped="2026-11-27T09:00:05Z",
                    error="barman-cloud-backup: s3://railiance-backups/ https://key:Hunter2@s3.example/ denied")
    outcome = recency([*DAILY, failed])
    assert outcome.status is Status.DRIFT
    assert outcome.observed == {"backup": "manual-27", "phase": "failed", "age_hours": 3.0}
    evidence = dict(outcome.evidence)
    assert evidence["newest_completed"] == "daily-26 at 2026-11-26T02:04:11Z"
    assert "Hunter2" not in evidence["error"] and "key:***@" in evidence["error"]


def test_a_running_backup_is_judged_by_its_start():
    outcome = recency([*DAILY, backup("manual-27", "running", started="2026-11-27T11:30:00Z")])
    assert (outcome.status, outcome.observed) == (Status.DRIFT, {"backup": "manual-27", "phase": "running",
                                                                 "age_hours": 0.5})
    assert outcome.reason == "the newest backup manual-27 is running, not completed"


def test_a_backup_without_status_is_judged_by_its_creation():
    outcome = recency([*DAILY, backup("new", None, created="2026-11-27T11:00:00+00:00")])
    assert (outcome.status, outcome.observed["backup"], outcome.observed["age_hours"]) == (Status.DRIFT, "new", 1.0)


def test_none_at_all_is_drift_and_other_clusters_and_namespaces_do_not_count():
    others = [backup("other", "completed", stopped="2026-11-27T11:00:00Z", cluster="state-hub-db"),
              backup("elsewhere", "completed", stopped="2026-11-27T11:00:00Z", namespace="staging")]
    outcome = recency(others)
    assert (outcome.status, outcome.observed) == (Status.DRIFT, "no Backup of cluster gitea-db in namespace databases")


def test_offsets_and_fractions_are_read_as_utc():
    late = backup("tz", "completed", stopped="2026-11-27T13:30:00.123456+02:00")  # 11:30:00.12 UTC
    assert recency([*DAILY, late], window_hours=1).observed == {"backup": "tz", "phase": "completed", "age_hours": 0.5}


@pytest.mark.parametrize("stamp", ["2026-11-27 11:00", "yesterday"])
def test_a_timestamp_that_is_not_rfc3339_utc_is_could_not_verify(stamp):
    outcome = recency([*DAILY, backup("odd", "completed", stopped=stamp)])
    assert outcome.status is Status.ERROR and "backup odd: status.stoppedAt" in outcome.reason


def test_an_unreadable_kind_propagates_for_the_recorder():
    with pytest.raises(ClusterUnavailable, match="CRD"):
        recency(ClusterUnavailable("the API server does not serve backups.postgresql.cnpg.io: is the CRD installed?"))


@pytest.mark.parametrize("loaded", [datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc),
                                    datetime(2031, 2, 28, 23, 59, tzinfo=timezone.utc)])
def test_the_conformant_dump_passes_on_any_date(loaded):
    """Its backup times are relative to the load: the newest completed one is 3 h old, whatever the date."""
    from datetime import timedelta

    from railiance_testbed.kubeapi import CONFORMANT_DUMP, load_dump

    snap = FakeSnapshot(load_dump([CONFORMANT_DUMP], now=loaded))
    outcome = backup_recency(snap, namespace="databases", cluster="gitea-db", window_hours=24,
                             now=loaded + timedelta(minutes=30))
    assert (outcome.status, outcome.observed) == (
        Status.PASS, {"backup": "gitea-db-daily-20261126020000", "phase": "completed", "age_hours": 3.5})
    assert dict(outcome.evidence)["newest_at"] == (loaded - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = backup_recency(snap, namespace="databases", cluster="gitea-db", window_hours=24,
                           now=loaded + timedelta(hours=22))
    assert stale.status is Status.DRIFT and "25.0 h old" in stale.reason


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        backup_recency(FakeSnapshot([]), namespace="databases", cluster="gitea-db", window_hours=1,
                       now=datetime(2026, 11, 27))


def test_a_backup_from_the_future_is_drift_naming_the_clock_skew():
    outcome = recency([backup("ahead", "completed", stopped="2026-11-28T12:00:00Z")])  # a day ahead of NOW
    assert outcome.status is Status.DRIFT
    assert outcome.reason.startswith("the newest backup ahead is dated 2026-11-28T12:00:00Z, 24.0 h ahead of this "
                                     "machine's clock") and "a backup from the future" in outcome.reason
    assert recency([backup("skewed", "completed", stopped="2026-11-27T12:04:00Z")]).status is Status.PASS  # 4 min
