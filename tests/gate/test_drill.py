"""gate.restore.fresh: the drill marker in a real restored PostgreSQL copy, within the policy window."""
from __future__ import annotations

import psycopg
import pytest

from railiance_conformance.finding import Status
from railiance_conformance.gate.drill import DEFAULT_MARKER, drill_freshness, marker_schema

MARKER_SQL = """CREATE SCHEMA IF NOT EXISTS railiance_drill;
CREATE TABLE IF NOT EXISTS railiance_drill.restore_drill (
  restored_at timestamptz NOT NULL DEFAULT now(), backup text NOT NULL, note text);"""


def mark(postgres, dbname: str, hours_ago: float, backup: str = "statehub.dump") -> None:
    """What the drill does at its end (docs/gate.md), here dated ``hours_ago``."""
    with psycopg.connect(postgres.dsn(dbname), autocommit=True) as conn:
        conn.execute(MARKER_SQL)
        conn.execute("INSERT INTO railiance_drill.restore_drill (restored_at, backup) "
                     "VALUES (now() - make_interval(secs => %s), %s)", (hours_ago * 3600, backup))


@pytest.fixture
def restored(postgres, seeded) -> str:
    return postgres.create_database(template=seeded)


def test_a_fresh_drill_passes_with_its_age(postgres, restored):
    mark(postgres, restored, 50, "old.dump")
    mark(postgres, restored, 2, "statehub-2026-11-27.dump")
    outcome = drill_freshness(postgres.dsn(restored), window_hours=48)
    assert outcome.status is Status.PASS
    assert (outcome.observed["age_hours"], outcome.observed["backup"]) == (2.0, "statehub-2026-11-27.dump")
    assert outcome.observed["restored_at"].endswith("Z") and dict(outcome.evidence) == {"drills_recorded": 2}


def test_a_drill_older_than_the_window_is_drift(postgres, restored):
    mark(postgres, restored, 49.5)
    outcome = drill_freshness(postgres.dsn(restored), window_hours=48)
    assert outcome.status is Status.DRIFT
    assert outcome.reason == ("the restore drill is 49.5 h old, older than the 48 h window: repeat it before the "
                              "cutover")


def test_no_marker_is_drift_naming_what_the_drill_must_write(postgres, restored):
    outcome = drill_freshness(postgres.dsn(restored), window_hours=48)
    assert outcome.status is Status.DRIFT and DEFAULT_MARKER in outcome.reason and "CUST-WP-0011-T01" in outcome.reason
    with psycopg.connect(postgres.dsn(restored), autocommit=True) as conn:
        conn.execute(MARKER_SQL)
    assert drill_freshness(postgres.dsn(restored), window_hours=48).reason == (
        "the drill marker holds no row: the drill did not finish")


def test_an_unreachable_copy_is_could_not_verify_without_the_password(postgres):
    outcome = drill_freshness(postgres.dsn("postgres", port=1), window_hours=48, connect_timeout_s=2)
    assert outcome.status is Status.ERROR and "restored copy" in outcome.reason
    assert postgres.password not in outcome.reason and "password=***" in outcome.reason


def test_the_marker_schema_is_excluded_from_parity():
    assert marker_schema(DEFAULT_MARKER) == "railiance_drill"


@pytest.mark.parametrize("hours_ahead", [8760, 0.01])
def test_a_drill_marker_from_the_future_is_drift_naming_the_clock_skew(postgres, restored, hours_ahead):
    mark(postgres, restored, 2)
    mark(postgres, restored, -hours_ahead)  # dated a year (or 36 s) ahead of the restored server's now()
    outcome = drill_freshness(postgres.dsn(restored), window_hours=48)
    assert outcome.status is Status.DRIFT, outcome
    assert outcome.observed["age_hours"] <= 0 and "after the restored server's own now()" in outcome.reason
    assert "clock skew" in outcome.reason and "from the future" in outcome.reason
