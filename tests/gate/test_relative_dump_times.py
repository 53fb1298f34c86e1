"""The testbed's dumps may give times relative to their load (``now-3h``): the gate can say GO on any date."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from railiance_testbed.kubeapi import DumpError, load_dump

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def backup(tmp_path, **status) -> dict:
    dump = tmp_path / "dump.yaml"
    lines = "".join(f"  {key}: {value}\n" for key, value in status.items())
    dump.write_text("apiVersion: postgresql.cnpg.io/v1\nkind: Backup\nmetadata: {name: b, namespace: databases}\n"
                    f"status:\n{lines}")
    return load_dump(dump, now=NOW)[0]["status"]


def test_relative_times_resolve_against_the_load(tmp_path):
    status = backup(tmp_path, stoppedAt="now-3h", startedAt="now-1d2h3m4s", next="now+20h55m49s",
                    fixed="2026-11-26T02:04:11Z", quoted="'2026-11-26T03:04:11+01:00'")
    assert status == {"stoppedAt": "2030-01-01T09:00:00Z", "startedAt": "2029-12-31T09:56:56Z",
                      "next": "2030-01-02T08:55:49Z", "fixed": "2026-11-26T02:04:11Z",
                      "quoted": "2026-11-26T03:04:11+01:00"}


@pytest.mark.parametrize("text", ["now", "now-", "now-3x", "snow-3h", "now-3h later", "'now - 3h'"])
def test_other_strings_stay_as_they_are(tmp_path, text):
    assert backup(tmp_path, note=text)["note"] == text.strip("'")


def test_without_now_the_current_time_is_used(tmp_path):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    dump = tmp_path / "d.yaml"
    dump.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n, creationTimestamp: now-0s}\n")
    stamp = datetime.fromisoformat(load_dump(dump)[0]["metadata"]["creationTimestamp"])
    assert before <= stamp <= datetime.now(timezone.utc)


def test_a_bad_dump_is_still_refused(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: Backup\nstatus: {stoppedAt: now-3h}\n")
    with pytest.raises(DumpError, match="without apiVersion/kind"):
        load_dump(tmp_path / "bad.yaml", now=NOW)
