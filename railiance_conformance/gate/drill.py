"""gate.restore.fresh: the restore drill behind the restored copy is recent (the workplan's "fresh").

RAIL-HO-WP-0004 T09's pre-condition is CUST-WP-0011-T01: "a *fresh* WSL2 State Hub backup restore
drill with matching row counts". The drill restores into a plain PostgreSQL as often as into a
CloudNativePG recovery Cluster, so its age is read from a marker the drill itself writes into the
restored database, right after the restore, in a schema of its own (never compared for parity)::

    CREATE SCHEMA IF NOT EXISTS railiance_drill;
    CREATE TABLE IF NOT EXISTS railiance_drill.restore_drill (
      restored_at timestamptz NOT NULL DEFAULT now(), backup text NOT NULL, note text);
    INSERT INTO railiance_drill.restore_drill (backup) VALUES ('statehub-2026-11-27.dump');

The marker travels with the data the gate compares and is read through the same read-only DSN;
its age is the restored server's ``now() - max(restored_at)``, one clock, no skew with this machine.
An age below zero (a marker dated after the server's own ``now()``: written by a machine whose clock
is ahead, or dated by hand) is DRIFT naming the clock skew: a marker from the future would
otherwise stay "fresh" forever.
Example: ``drill_freshness(dsn, marker="railiance_drill.restore_drill", window_hours=48).status``
-> ``Status.PASS``.
"""
from __future__ import annotations

from datetime import timezone

import psycopg
from psycopg import sql

from railiance_conformance.finding import Outcome, Status
from railiance_conformance.gate.pg_session import (
    describe_error,
    dsn_secrets,
    masked_dsn,
    one_row,
    read_only_session,
    scrub,
)

DEFAULT_MARKER = "railiance_drill.restore_drill"


def marker_schema(marker: str) -> str:
    """``marker_schema("railiance_drill.restore_drill")`` -> ``"railiance_drill"`` (excluded from parity)."""
    return marker.split(".", 1)[0]


def drill_freshness(restored_dsn: str, *, marker: str = DEFAULT_MARKER, window_hours: float,
                    statement_timeout_ms: int = 30000, connect_timeout_s: int = 10) -> Outcome:
    """PASS when the newest marker row is at most ``window_hours`` old and not from the future (age >= 0);
    DRIFT when older, from the future (clock skew) or absent; ERROR when the restored copy cannot be read."""
    schema, table = marker.split(".", 1)
    expected = {"marker": marker, "within_hours": window_hours}
    doing = "connecting"
    try:
        with read_only_session(restored_dsn, statement_timeout_ms, connect_timeout_s) as conn, conn.transaction():
            doing = f"reading {marker}"
            exists = one_row(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{table}"',)))[0]
            if not exists:
                return Outcome(Status.DRIFT, expected, f"no drill marker {marker} in the restored copy",
                               reason="no restore drill is recorded in the restored copy: run the drill "
                                      f"(CUST-WP-0011-T01); it ends by inserting a row into {marker}")
            row = one_row(conn.execute(sql.SQL(
                "SELECT max(restored_at), extract(epoch FROM now() - max(restored_at)) / 3600, "
                "(SELECT backup FROM {t} ORDER BY restored_at DESC LIMIT 1), count(*) FROM {t}").format(
                t=sql.Identifier(schema, table))))
    except psycopg.Error as exc:
        return Outcome.error(scrub(f"restored copy {masked_dsn(restored_dsn)}: "
                                    f"{describe_error(exc, doing, statement_timeout_ms, connect_timeout_s)}",
                                    dsn_secrets(restored_dsn)), expected=expected)
    restored_at, age, backup, drills = row
    if restored_at is None:
        return Outcome(Status.DRIFT, expected, f"the drill marker {marker} is empty",
                       reason="the drill marker holds no row: the drill did not finish")
    if float(age) < 0:
        ahead = -float(age)
        shown = f"{ahead:.1f} h" if ahead >= 0.1 else f"{ahead * 3600:.0f} s"
        stamp = restored_at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        return Outcome(Status.DRIFT, expected, {"restored_at": stamp, "age_hours": round(float(age), 1),
                                                "backup": backup},
                       f"the drill marker is dated {stamp}, {shown} after the restored server's own now(): a marker "
                       "from the future (clock skew on the machine that wrote it, or a hand-made date) cannot show "
                       "a fresh drill; fix the clock and repeat the drill", (("drills_recorded", drills),))
    age_hours = round(float(age), 1)
    observed = {"restored_at": restored_at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "age_hours": age_hours, "backup": backup}
    evidence = (("drills_recorded", drills),)
    if age_hours > window_hours:
        return Outcome(Status.DRIFT, expected, observed,
                       f"the restore drill is {age_hours} h old, older than the {window_hours} h window: "
                       "repeat it before the cutover", evidence)
    return Outcome(Status.PASS, expected, observed, evidence=evidence)
