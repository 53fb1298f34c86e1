"""gate.restore.parity against a real PostgreSQL server: the sequences, whose next value must not repeat
one the source already handed out.

A sequence reset behind its column (owned, or used only by a column default, or named as text outside
the compared schemas), behind the source's, missing, or defined differently is drift naming the fix; a
default the gate cannot resolve is named as not checked; the next value the gate reads is proven equal
to PostgreSQL's own ``nextval`` on generated sequences (hypothesis).
"""
from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.gate.parity import compare
from railiance_conformance.gate.parity_census import _next_value
from tests.gate.parity_copies import change
from tests.gate.pg_server import PgServer


def test_a_reset_sequence_is_drift_naming_it_and_the_fix(postgres, fresh_pair):
    source, restored, name = fresh_pair
    change(postgres, name, "SELECT setval('public.events_id_seq', 1, false); SELECT setval('audit.\"Events_id_seq\"', 37)")
    result = compare(source, restored)
    assert not result.ok and result.mismatches == [] and result.tables["public.events"] == (50, 50)
    assert result.sequences == [
        "sequence public.events_id_seq on the restored copy would next give 1, but public.events.id already holds 50 "
        "(max): the next insert fails on a duplicate key (SELECT setval('public.events_id_seq', "
        "(SELECT max(id) FROM public.events)))"]  # Events_id_seq at 37 gives 38 next: ahead of max 37


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
