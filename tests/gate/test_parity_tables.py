"""gate.restore.parity against a real PostgreSQL server: the tables compared, two databases made from the same seed.

Equal copies pass table by table, every non-system schema by default (policy narrows it); a missing
row, a missing or extra table, a table in a second schema, nothing to compare, tables the DSN's user
cannot read, and (opt in) changed contents with equal counts are each named.
"""
from __future__ import annotations

import psycopg

from railiance_conformance.gate.parity import compare
from tests.gate.parity_copies import change

PUBLIC = {"public.customers": (120, 120), "public.empty_table": (0, 0), "public.events": (50, 50),
          "public.orders": (1000, 1000), "public.select": (2, 2)}


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


def test_a_table_in_a_second_schema_missing_from_the_restored_copy_is_a_mismatch(postgres, fresh_pair):
    source, restored, _ = fresh_pair
    source_name = psycopg.conninfo.conninfo_to_dict(source)["dbname"]
    change(postgres, source_name, "CREATE SCHEMA billing; CREATE TABLE billing.invoices (n int); "
                                  "INSERT INTO billing.invoices VALUES (1), (2)")
    result = compare(source, restored)
    assert (result.ok, result.mismatches) == (False, ["table billing.invoices missing in the restored copy"])
    assert result.tables["billing.invoices"] == (2, None) and "billing" in result.schemas


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
