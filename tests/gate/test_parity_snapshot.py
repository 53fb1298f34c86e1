"""gate.restore.parity against a real PostgreSQL server: its sessions, one snapshot each, and writes during the check.

Both sessions are read-only, REPEATABLE READ, with the statement timeout; a locked table ends in that
timeout naming the table; a write after compare's snapshot is not counted, and the source still being
written to during the check is named.
"""
from __future__ import annotations

import threading
import time

import psycopg

from railiance_conformance.gate.parity import compare
from tests.gate.parity_copies import change
from tests.gate.pg_server import PgServer


def test_both_sessions_are_read_only_repeatable_read_with_the_timeout(pair):
    source, restored, name = pair
    result = compare(source, restored, statement_timeout_ms=4500)
    for side in ("source", "restored"):
        facts = result.evidence[side]
        assert facts["transaction_read_only"] == "on"  # SHOW transaction_read_only inside compare's transaction
        assert facts["default_transaction_read_only"] == "on"
        assert facts["transaction_isolation"] == "repeatable read"
        assert facts["statement_timeout"] == "4500ms"
    assert result.evidence["restored"]["database"] == name


def test_a_locked_table_ends_in_a_statement_timeout_naming_it(postgres, pair):
    source, restored, name = pair
    locker = psycopg.connect(postgres.dsn(name))  # a transaction holding ACCESS EXCLUSIVE until rollback
    try:
        locker.execute("LOCK TABLE public.customers IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = compare(source, restored, statement_timeout_ms=300)
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert not result.ok and result.tables == {}
    assert result.error.startswith("restored copy ")
    assert "statement timeout (300 ms) exceeded while counting public.customers" in result.error
    assert "canceling statement due to statement timeout" in result.error
    assert elapsed < 5
    assert compare(source, restored).ok  # the lock gone, the same copies compare equal again


def test_a_concurrent_write_after_the_snapshot_is_not_seen(postgres, fresh_pair):
    """REPEATABLE READ: all counts of one database come from one snapshot, taken before the first count."""
    source, restored, name = fresh_pair
    locker = psycopg.connect(postgres.dsn(name))
    locker.execute("LOCK TABLE public.customers IN ACCESS EXCLUSIVE MODE")  # the first table compare counts
    results: list = []
    worker = threading.Thread(target=lambda: results.append(compare(source, restored)))
    try:
        worker.start()
        wait_until_blocked(postgres, name)  # compare's snapshot is taken, it waits for the lock
        with psycopg.connect(postgres.dsn(name), autocommit=True) as writer:
            writer.execute("INSERT INTO orders VALUES (1001, '2026-02-01', 1)")  # counted after customers
    finally:
        locker.rollback()
        locker.close()
        worker.join(30)
    assert results[0].ok, results[0].mismatches  # the late row is not in compare's snapshot
    assert compare(source, restored).mismatches == [
        "table public.orders: 1000 rows in the source, 1001 in the restored copy"]


def wait_until_blocked(postgres: PgServer, dbname: str) -> None:
    deadline = time.monotonic() + 10
    with postgres.admin() as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                            "AND application_name = 'railiance-conformance gate.parity'", (dbname,)).fetchone():
                return
            time.sleep(0.02)
    raise AssertionError("compare never waited for the lock")


def test_source_write_activity_during_the_check_is_named(postgres, fresh_pair):
    source, restored, _ = fresh_pair
    source_name = psycopg.conninfo.conninfo_to_dict(source)["dbname"]
    change(postgres, source_name, "INSERT INTO orders VALUES (1001, '2026-02-01', 1)")  # the copy is behind
    locker = psycopg.connect(postgres.dsn(source_name))
    locker.execute("LOCK TABLE public.customers IN ACCESS EXCLUSIVE MODE")
    results: list = []
    worker = threading.Thread(target=lambda: results.append(compare(source, restored, schemas=["public"])))
    try:
        worker.start()
        wait_until_blocked(postgres, source_name)
        change(postgres, source_name, "INSERT INTO orders VALUES (1002, '2026-02-01', 1), (1003, '2026-02-01', 1)")
    finally:
        locker.rollback()
        locker.close()
        worker.join(30)
    result = results[0]
    assert result.mismatches == ["table public.orders: 1001 rows in the source, 1000 in the restored copy"]
    assert result.source_writes == [
        "the source is still being written to: public.orders had 1001 rows in the check's snapshot and 1003 when "
        "counted again (freeze writes before the final dump, as the workplan's step 7 says)"]
