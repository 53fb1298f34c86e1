"""gate.restore.parity against a real PostgreSQL server: two databases made from the same seed."""
from __future__ import annotations

import socket
import threading
import time

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.gate.parity import compare
from railiance_conformance.gate.parity_census import _next_value
from railiance_conformance.gate.pg_session import DsnNotSet, dsn_from_env, masked_dsn
from tests.gate.pg_server import PgServer, free_port

PUBLIC = {"public.customers": (120, 120), "public.empty_table": (0, 0), "public.events": (50, 50),
          "public.orders": (1000, 1000), "public.select": (2, 2)}


def copies(postgres: PgServer, seeded: str) -> tuple[str, str, str]:
    """(source DSN, restored DSN, restored database name): two equal copies of the seed."""
    source, restored = postgres.create_database(template=seeded), postgres.create_database(template=seeded)
    return postgres.dsn(source), postgres.dsn(restored), restored


@pytest.fixture(scope="module")
def pair(postgres: PgServer, seeded: str) -> tuple[str, str, str]:
    """Equal copies that no test changes."""
    return copies(postgres, seeded)


@pytest.fixture
def fresh_pair(postgres: PgServer, seeded: str) -> tuple[str, str, str]:
    """Equal copies of this test's own, to change."""
    return copies(postgres, seeded)


def change(postgres: PgServer, dbname: str, statement: str) -> None:
    with psycopg.connect(postgres.dsn(dbname), autocommit=True) as conn:
        conn.execute(statement)


def test_equal_copies_pass_table_by_table(pair):
    source, restored, _ = pair
    result = compare(source, restored, schemas=("public", "audit"))
    assert (result.ok, result.error, result.mismatches) == (True, "", [])
    assert result.tables == {**PUBLIC, "audit.Events": (37, 37)}  # no views, no partitions


def test_every_non_system_schema_is_compared_by_default_and_policy_narrows_it(pair):
    source, restored, _ = pair
    result = compare(source, restored)
    assert (result.ok, result.tables, result.schemas) == (True, {**PUBLIC, "audit.Events": (37, 37)}, ["audit", "public"])
    assert result.sequences_checked == 4  # audit."Events_id_seq" and public.events_id_seq, on both sides
    assert compare(source, restored, schemas=["public"]).tables == PUBLIC
    assert compare(source, restored, exclude=["audit"]).tables == PUBLIC


def test_a_missing_row_names_the_table_and_both_counts(postgres, fresh_pair):
    source, restored, name = fresh_pair
    change(postgres, name, "DELETE FROM customers WHERE id = 7; DELETE FROM orders WHERE id = 500")
    result = compare(source, restored)
    assert not result.ok and result.error == ""
    assert result.mismatches == ["table public.customers: 120 rows in the source, 119 in the restored copy",
                                 "table public.orders: 1000 rows in the source, 999 in the restored copy"]
    assert result.tables["public.customers"] == (120, 119)


def test_a_missing_table_is_a_mismatch(postgres, fresh_pair):
    source, restored, name = fresh_pair
    change(postgres, name, 'DROP TABLE "select"')
    result = compare(source, restored)
    assert (result.ok, result.mismatches) == (False, ["table public.select missing in the restored copy"])
    assert result.tables["public.select"] == (2, None)


def test_an_extra_table_is_a_mismatch(postgres, fresh_pair):
    source, restored, name = fresh_pair
    change(postgres, name, "CREATE TABLE audit.leftover (x int)")
    result = compare(source, restored, schemas=["public", "audit"])
    assert (result.ok, result.mismatches) == (False, ["table audit.leftover only in the restored copy"])
    assert result.tables["audit.leftover"] == (None, 0)


def test_nothing_to_compare_is_not_a_pass(pair):
    source, restored, _ = pair
    result = compare(source, restored, schemas=("no_such_schema",))
    assert not result.ok
    assert result.mismatches == ["no base tables in schema(s) no_such_schema of either database: nothing was compared"]


def test_a_database_compared_with_itself_is_refused(pair):
    source, _, _ = pair
    result = compare(source, source)
    assert not result.ok and "the same database" in result.error and "password=***" in result.error


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


@pytest.mark.parametrize("url", [False, True], ids=["keyword-dsn", "url-dsn"])
def test_a_bad_password_is_an_error_without_any_password(postgres, pair, url):
    source, _, name = pair
    wrong = "Wr0ng-Pa55-" + name
    result = compare(source, postgres.dsn(name, password=wrong, url=url))
    assert not result.ok and result.tables == {}
    assert result.error.startswith("restored copy ") and "password authentication failed" in result.error
    assert wrong not in result.error and postgres.password not in result.error
    assert "password=***" in result.error


def test_a_closed_port_is_an_error_without_the_password(postgres):
    port = free_port()
    result = compare(postgres.dsn("a", port=port), postgres.dsn("b", port=port, url=True), connect_timeout_s=5)
    assert not result.ok
    assert result.error.count("Connection refused") == 2 and result.error.count(f"port {port}") >= 2
    assert postgres.password not in result.error


def test_a_server_that_never_answers_hits_the_connect_timeout(postgres):
    with socket.socket() as silent:  # accepts TCP (kernel backlog), never speaks the protocol
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = compare(postgres.dsn("a", port=port), postgres.dsn("b"), connect_timeout_s=2)
    assert time.monotonic() - started < 10
    assert "no connection within the connect timeout (2 s)" in result.error
    assert postgres.password not in result.error


def test_a_password_that_libpq_echoes_is_scrubbed(postgres):
    secret = "S3cretPort"  # libpq quotes the bad port value, i.e. the password, in its message
    result = compare(f"postgresql://gate_tester:{secret}@127.0.0.1:{secret}/x", postgres.dsn("postgres"))
    assert "invalid integer value" in result.error and secret not in result.error and "***" in result.error


def test_a_malformed_dsn_is_scrubbed_too(postgres):
    result = compare("host=127.0.0.1 password=Sekrit-42 junk", postgres.dsn("postgres"))
    assert "missing" in result.error and "Sekrit-42" not in result.error and "password=***" in result.error


def test_an_url_encoded_password_never_shows_in_either_form(postgres):
    odd = "p@ss/w:rd%20 'x'"
    with postgres.admin() as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE gate_odd LOGIN PASSWORD {}").format(psycopg.sql.Literal(odd)))
    dsn = postgres.dsn("no_such_db", user="gate_odd", password=odd, url=True)
    result = compare(dsn, postgres.dsn("postgres"))
    assert 'database "no_such_db" does not exist' in result.error
    assert "p%40ss" not in result.error and odd not in result.error and "p@ss" not in result.error
    assert "p%40ss" not in masked_dsn(dsn) and "p@ss" not in masked_dsn(dsn)


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


def test_dsn_from_env_names_the_variable(monkeypatch):
    monkeypatch.delenv("GATE_RESTORED_DSN", raising=False)
    with pytest.raises(DsnNotSet, match="GATE_RESTORED_DSN is not set"):
        dsn_from_env("GATE_RESTORED_DSN")
    monkeypatch.setenv("GATE_RESTORED_DSN", " ")
    with pytest.raises(DsnNotSet, match="GATE_RESTORED_DSN is empty"):
        dsn_from_env("GATE_RESTORED_DSN")
    monkeypatch.setenv("GATE_RESTORED_DSN", "host=db dbname=hub")
    assert dsn_from_env("GATE_RESTORED_DSN") == "host=db dbname=hub"


@pytest.mark.parametrize("dsn", ["postgresql://gate:Hunter2@db:5432/hub", "host=db dbname=hub password=Hunter2",
                                 "host=db password='Hunter2' junk", "postgresql://db/hub?password=Hunter2"])
def test_masked_dsn_never_shows_the_password(dsn):
    shown = masked_dsn(dsn)
    assert "Hunter2" not in shown and "***" in shown and "db" in shown


def test_a_table_in_a_second_schema_missing_from_the_restored_copy_is_a_mismatch(postgres, fresh_pair):
    source, restored, _ = fresh_pair
    source_name = psycopg.conninfo.conninfo_to_dict(source)["dbname"]
    change(postgres, source_name, "CREATE SCHEMA billing; CREATE TABLE billing.invoices (n int); "
                                  "INSERT INTO billing.invoices VALUES (1), (2)")
    result = compare(source, restored)
    assert (result.ok, result.mismatches) == (False, ["table billing.invoices missing in the restored copy"])
    assert result.tables["billing.invoices"] == (2, None) and "billing" in result.schemas


def test_a_reset_sequence_is_drift_naming_it_and_the_fix(postgres, fresh_pair):
    source, restored, name = fresh_pair
    change(postgres, name, "SELECT setval('public.events_id_seq', 1, false); SELECT setval('audit.\"Events_id_seq\"', 37)")
    result = compare(source, restored)
    assert not result.ok and result.mismatches == [] and result.tables["public.events"] == (50, 50)
    assert result.sequences == [
        "sequence public.events_id_seq on the restored copy would next give 1, but public.events.id already holds 50 "
        "(max): the next insert fails on a duplicate key (SELECT setval('public.events_id_seq', "
        "(SELECT max(id) FROM public.events)))"]  # Events_id_seq at 37 gives 38 next: ahead of max 37


def test_unreadable_tables_are_named_not_missing_and_the_documented_grants_suffice(postgres, fresh_pair):
    source, restored, name = fresh_pair
    source_name = psycopg.conninfo.conninfo_to_dict(source)["dbname"]
    password = postgres.password + "-reader"
    with postgres.admin() as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            psycopg.sql.Identifier(f"reader_{name}"), psycopg.sql.Literal(password)))
    for db in (source_name, name):  # exactly the privileges docs/operating.md documents for the DSN users
        change(postgres, db, f"GRANT CONNECT ON DATABASE {db} TO reader_{name}; "
                             f"GRANT USAGE ON SCHEMA public, audit TO reader_{name}; "
                             f"GRANT SELECT ON ALL TABLES IN SCHEMA public, audit TO reader_{name}; "
                             f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, audit TO reader_{name}")
    reader = {db: postgres.dsn(db, user=f"reader_{name}", password=password) for db in (source_name, name)}
    assert compare(reader[source_name], reader[name]).ok
    change(postgres, name, f"REVOKE SELECT ON customers FROM reader_{name}; "
                           "ALTER TABLE orders ENABLE ROW LEVEL SECURITY")
    result = compare(reader[source_name], reader[name])
    assert not result.ok and result.mismatches == []
    assert result.unreadable == [
        f"table public.customers could not be read on the restored copy by user reader_{name}: "
        "GRANT USAGE ON SCHEMA public and SELECT ON public.customers to it",
        f"table public.orders could not be read on the restored copy by user reader_{name}: row-level security "
        "hides rows from it (a count would be wrong): give it BYPASSRLS or count as the table's owner"]
    assert result.tables["public.customers"] == (120, None)


def test_the_opt_in_checksum_finds_changed_contents_with_equal_counts(postgres, fresh_pair):
    source, restored, name = fresh_pair
    equal = compare(source, restored, checksum=True)
    assert equal.ok and set(equal.checksums) == set(PUBLIC) | {"audit.Events"}
    assert all(a == b and a.startswith("sha256:") for a, b in equal.checksums.values())
    change(postgres, name, "UPDATE customers SET name = 'renamed' WHERE id = 7")
    assert compare(source, restored).ok  # counts alone cannot see it
    result = compare(source, restored, checksum=["public.customers"])
    assert list(result.checksums) == ["public.customers"]
    assert len(result.mismatches) == 1 and result.mismatches[0].startswith(
        "table public.customers: same row count, different contents (sha256 ")


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


def dbname(dsn: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]


def test_a_sequence_behind_its_source_is_drift_though_ahead_of_its_column(postgres, fresh_pair):
    source, restored, name = fresh_pair
    change(postgres, dbname(source), "SELECT setval('public.events_id_seq', 300, false)")  # handed out up to 299
    change(postgres, name, "SELECT setval('public.events_id_seq', 251, false)")  # ahead of max(id) = 50
    result = compare(source, restored)
    assert not result.ok and result.mismatches == []
    assert result.sequences == [
        "sequence public.events_id_seq on the restored copy would next give 251, behind the source's 300: after the "
        "cutover it hands out 251..299 a second time, values the source already gave out "
        "(SELECT setval('public.events_id_seq', 300, false))"]
    assert result.sequence_values == {"audit.Events_id_seq": (38, 38), "public.events_id_seq": (300, 251)}
    change(postgres, name, "SELECT setval('public.events_id_seq', 300, false)")
    assert compare(source, restored).ok


TICKETS = ("CREATE SEQUENCE public.ticket_no; "  # no OWNED BY: only the column DEFAULT uses it
           "CREATE TABLE public.tickets (n bigint PRIMARY KEY DEFAULT nextval('ticket_no'), what text); "
           "INSERT INTO public.tickets (what) SELECT 'ticket ' || g FROM generate_series(1, 40) g")


def test_a_reset_sequence_behind_a_column_default_without_owned_by_is_drift(postgres, fresh_pair):
    source, restored, name = fresh_pair
    for db in (dbname(source), name):
        change(postgres, db, TICKETS)
    assert compare(source, restored).ok
    change(postgres, name, "SELECT setval('public.ticket_no', 1, false)")
    result = compare(source, restored)
    assert not result.ok and result.sequences_checked == 6  # three sequences on each side
    assert result.sequences == [
        "sequence public.ticket_no on the restored copy would next give 1, but public.tickets.n already holds 40 "
        "(max): the next insert fails on a duplicate key (SELECT setval('public.ticket_no', (SELECT max(n) FROM "
        "public.tickets)))"]


def test_a_sequence_no_column_uses_is_compared_with_the_source_and_a_missing_one_named(postgres, fresh_pair):
    source, restored, name = fresh_pair
    change(postgres, dbname(source), "CREATE SEQUENCE public.invoice_no START 1000; SELECT nextval('invoice_no'); "
                                     "CREATE SEQUENCE audit.batch_no")
    change(postgres, name, "CREATE SEQUENCE public.invoice_no START 1000")  # restored, never called
    result = compare(source, restored)
    assert result.sequences == [
        "sequence audit.batch_no missing in the restored copy: the source has it (next value 1)",
        "sequence public.invoice_no on the restored copy would next give 1000, behind the source's 1001: after the "
        "cutover it hands out 1000..1000 a second time, values the source already gave out "
        "(SELECT setval('public.invoice_no', 1001, false))"]
    assert compare(source, restored, exclude=["audit"]).sequences == result.sequences[1:]


@pytest.fixture(scope="module")
def scratch(postgres: PgServer) -> str:
    """An empty database of its own (never a template of the others)."""
    return postgres.create_database()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(increment=st.integers(-1000, 1000).filter(bool), start=st.integers(-10**6, 10**6),
       moved=st.one_of(st.none(), st.tuples(st.integers(-10**6, 10**6), st.booleans())), calls=st.integers(0, 3))
def test_the_next_value_the_gate_reads_is_what_nextval_gives(postgres, scratch, increment, start, moved, calls):
    """_next_value (last_value, is_called) against PostgreSQL's own nextval on the same sequence."""
    with psycopg.connect(postgres.dsn(scratch), autocommit=True) as conn:
        conn.execute("DROP SEQUENCE IF EXISTS public.probe_seq")
        conn.execute(psycopg.sql.SQL("CREATE SEQUENCE public.probe_seq INCREMENT BY {} MINVALUE -100000000 "
                                     "MAXVALUE 100000000 START WITH {}").format(psycopg.sql.Literal(increment),
                                                                                psycopg.sql.Literal(start)))
        if moved is not None:
            conn.execute("SELECT setval('public.probe_seq', %s, %s)", moved)
        for _ in range(calls):
            conn.execute("SELECT nextval('public.probe_seq')")
        predicted = _next_value(conn, "public", "probe_seq", increment)
        assert conn.execute("SELECT nextval('public.probe_seq')").fetchone()[0] == predicted
        conn.execute("DROP SEQUENCE public.probe_seq")


@pytest.mark.parametrize("alter, differs", [
    # the copy walks down from 400 over 399..301, which the source handed out; its next value (399) is ahead
    ("ALTER SEQUENCE public.events_id_seq INCREMENT -1 MINVALUE 1; SELECT setval('public.events_id_seq', 400)",
     "INCREMENT 1 in the source, INCREMENT -1 in the restored copy"),
    # the copy wraps to 1 after 310: its next value (301) equals the source's
    ("ALTER SEQUENCE public.events_id_seq MAXVALUE 310 CYCLE",
     "MAXVALUE 9223372036854775807 in the source, MAXVALUE 310 in the restored copy; NO CYCLE in the source, CYCLE "
     "in the restored copy"),
])
def test_a_sequence_defined_differently_from_its_source_is_drift(postgres, fresh_pair, alter, differs):
    source, restored, name = fresh_pair
    change(postgres, dbname(source), "SELECT setval('public.events_id_seq', 300)")
    change(postgres, name, "SELECT setval('public.events_id_seq', 300)")
    assert compare(source, restored).ok
    change(postgres, name, alter)
    result = compare(source, restored)
    assert not result.ok and result.mismatches == [], result
    assert [line for line in result.sequences if "defined differently" in line] == [
        f"sequence public.events_id_seq is defined differently: {differs}; after the cutover it can hand out values "
        "the source already gave out, or stop early (ALTER SEQUENCE public.events_id_seq "
        + differs.split(" in the source")[0] + (" NO CYCLE" if "CYCLE" in differs else "") + ")"], result.sequences


NAMED = ("CREATE SCHEMA ids; CREATE SEQUENCE ids.ticket_no; "  # outside the compared schema, named as text
         "CREATE TABLE public.named (n bigint PRIMARY KEY DEFAULT nextval('ids.ticket_no'::text), what text); "
         "INSERT INTO public.named (what) SELECT 'ticket ' || g FROM generate_series(1, 40) g")


def test_a_default_naming_its_sequence_as_text_outside_the_compared_schemas_is_checked(postgres, fresh_pair):
    """``nextval('x'::text)`` records no dependency (the name is resolved at each call)."""
    source, restored, name = fresh_pair
    for dbname_ in (dbname(source), name):
        change(postgres, dbname_, NAMED)
    assert compare(source, restored, schemas=["public"]).sequences == []
    change(postgres, name, "SELECT setval('ids.ticket_no', 5)")
    result = compare(source, restored, schemas=["public"])
    assert not result.ok and result.sequences[0].startswith(
        "sequence ids.ticket_no on the restored copy would next give 6, but public.named.n already holds 40 (max)"), \
        result.sequences


def test_a_default_calling_nextval_on_a_name_the_gate_cannot_resolve_is_named_not_checked(postgres, fresh_pair):
    source, restored, name = fresh_pair
    for dbname_ in (dbname(source), name):
        change(postgres, dbname_, "CREATE SEQUENCE public.hidden; CREATE TABLE public.computed "
                                  "(n bigint DEFAULT nextval(('pub' || 'lic.hidden')::text))")
    result = compare(source, restored, schemas=["public"])
    assert not result.ok and [line for line in result.sequences if "not checked" in line] == [
        f"on {side}, the default of public.computed.n, nextval((('pub'::text || 'lic.hidden'::text))::regclass), "
        "calls nextval() on a sequence the gate cannot name (no dependency recorded, and the text does not resolve to a sequence in the "
        "gate's search_path): its next value is not checked (write the default as nextval('schema.name'::regclass))"
        for side in ("the source", "the restored copy")], result.sequences
