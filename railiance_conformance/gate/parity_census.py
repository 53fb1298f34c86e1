"""What one PostgreSQL database holds, read in one snapshot (``read_census``).

Shape: ``Census`` (exact row counts per ``schema.table``, unreadable tables with the grant missing,
``SequenceState`` per sequence and using column, sequence definitions, opt-in sha256 checksums,
the session's settings); a psycopg error is ``Census.error`` naming what was being done. What is
read and why (pg_depend links, text defaults, sequences outside the snapshot): docs/gate.md,
"Restore parity".
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from railiance_conformance.gate.pg_session import describe_error, one_row, read_only_session

_SETTINGS = ("transaction_read_only", "default_transaction_read_only", "transaction_isolation",
             "statement_timeout", "server_version")
_SESSION = ("SELECT " + ", ".join(f"current_setting('{name}')" for name in _SETTINGS)
            + ", current_database(), current_user")
_BASE_TABLES = """SELECT n.nspname, c.relname,
  has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable,
  c.relrowsecurity AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))
    AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user) AS rls_hides
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
  AND NOT n.nspname = ANY(%(exclude)s::text[])
ORDER BY 1, 2"""
# every sequence of a non-system schema, with each column that uses it (NULLs: none): owned by the
# column (pg_depend from the sequence to the column: 'a' serial/OWNED BY, 'i' identity), or called by
# the column's DEFAULT (pg_depend from its pg_attrdef row to the sequence, 'n'; nextval('x') stores
# 'x'::regclass, which records that dependency)
_SEQUENCES = """SELECT sn.nspname, s.relname, q.seqincrement, q.seqmin, q.seqmax, q.seqcycle,
  has_schema_privilege(sn.oid, 'USAGE') AND has_sequence_privilege(s.oid, 'SELECT') AS readable,
  tn.nspname, t.relname, a.attname, u.link
FROM pg_catalog.pg_class s
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
LEFT JOIN LATERAL (
  SELECT d.refobjid AS relid, d.refobjsubid AS attnum, CASE d.deptype WHEN 'i' THEN 'identity' ELSE 'owned' END AS link
  FROM pg_catalog.pg_depend d
  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.oid
    AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
  UNION
  SELECT ad.adrelid, ad.adnum, 'default'
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
  WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
    AND d.refobjid = s.oid
) u ON true
LEFT JOIN pg_catalog.pg_class t ON t.oid = u.relid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = u.relid AND a.attnum = u.attnum
WHERE s.relkind = 'S' AND sn.nspname <> 'information_schema' AND sn.nspname !~ '^pg_'
ORDER BY 1, 2, 5, 6, 7, 8"""
# column defaults that call nextval() without depending on any sequence: nextval('x'::text) (or another
# expression giving the name) is resolved by name at each call, so PostgreSQL records no dependency
_NAMED_DEFAULTS = """SELECT n.nspname, c.relname, a.attname, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)
FROM pg_catalog.pg_attrdef ad
JOIN pg_catalog.pg_class c ON c.oid = ad.adrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
WHERE pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) ~* 'nextval\\s*\\('
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.refobjid
                  WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
                    AND d.refclassid = 'pg_catalog.pg_class'::regclass AND s.relkind = 'S')
ORDER BY 1, 2, 3"""
_RESOLVE = """SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass(%s) AND c.relkind = 'S'"""
# as pg_get_expr prints nextval('x'::text): nextval(('x'::text)::regclass)
_TEXT_NEXTVAL = re.compile(r"nextval\(\s*\(?'((?:[^']|'')+)'::(?:text|character varying)\)?(?:::regclass)?\s*\)",
                           re.IGNORECASE)
_CHECKSUM_SETTINGS = (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("IntervalStyle", "postgres"),
                      ("extra_float_digits", "1"), ("bytea_output", "hex"))


@dataclass(frozen=True, slots=True)
class SequenceState:
    """A sequence and one column that uses it, on one side: the value ``nextval`` would give and the
    column's extreme. ``column`` "" (and ``link`` "") for a sequence no compared column uses."""

    sequence: str            # schema.name
    column: str              # schema.table.column, or ""
    next_value: int | None   # None: the sequence could not be read
    column_extreme: int | None  # max (min for a descending sequence); None for an empty table or no column
    increment: int
    link: str = ""           # "owned" (serial, OWNED BY), "identity", "default" (DEFAULT nextval, no OWNED BY)

    @property
    def behind(self) -> bool:
        if self.next_value is None or self.column_extreme is None:
            return False
        return self.next_value <= self.column_extreme if self.increment > 0 else self.next_value >= self.column_extreme


@dataclass(frozen=True, slots=True)
class Census:
    """What one side holds: exact counts, unreadable tables (and why), sequences, checksums, session facts."""

    counts: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    sequences: tuple[SequenceState, ...] = ()
    checksums: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    definitions: dict[str, tuple[int, int, int, bool]] = field(default_factory=dict)  # increment, min, max, cycle
    unchecked: tuple[str, ...] = ()  # column defaults calling nextval() on a sequence that could not be resolved


def read_census(dsn: str, schemas: tuple[str, ...] | None, exclude: tuple[str, ...], timeout_ms: int,
            connect_timeout_s: int, checksum: bool | Sequence[str]) -> Census:
    """One side, in one snapshot: counts, unreadable tables, sequences, checksums; or why it could not."""
    counts: dict[str, int] = {}
    unreadable: dict[str, str] = {}
    sequences: list[SequenceState] = []
    checksums: dict[str, str] = {}
    facts: dict[str, Any] = {}
    definitions: dict[str, tuple[int, int, int, bool]] = {}
    unchecked: list[str] = []
    doing = "connecting"
    try:
        with read_only_session(dsn, timeout_ms, connect_timeout_s) as conn:
            doing = "setting up the read-only session"
            if checksum:
                for name, value in _CHECKSUM_SETTINGS:
                    conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            with conn.transaction():  # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
                facts = dict(zip((*_SETTINGS, "database", "user"), conn.execute(_SESSION).fetchone() or (), strict=False))
                doing = "listing base tables"
                base_tables = conn.execute(_BASE_TABLES, {"schemas": list(schemas) if schemas is not None else None,
                                                          "exclude": list(exclude)}).fetchall()
                for schema, table, readable, rls_hides in base_tables:
                    name = f"{schema}.{table}"
                    if not readable:
                        unreadable[name] = f"GRANT USAGE ON SCHEMA {schema} and SELECT ON {name} to it"
                        continue
                    if rls_hides:
                        unreadable[name] = ("row-level security hides rows from it (a count would be wrong): "
                                            "give it BYPASSRLS or count as the table's owner")
                        continue
                    doing = f"counting {name}"
                    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
                    counts[name] = one_row(row)[0]
                doing = "listing sequences"
                listed: dict[tuple[str, str], tuple[int, bool]] = {}
                uses: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
                for (seq_schema, seq, increment, low, high, cycle, readable, schema, table, column,
                     link) in conn.execute(_SEQUENCES).fetchall():
                    listed[(seq_schema, seq)] = (increment, readable)
                    definitions[f"{seq_schema}.{seq}"] = (increment, low, high, bool(cycle))
                    if link and f"{schema}.{table}" in counts:
                        uses.setdefault((seq_schema, seq), []).append((schema, table, column, link))
                doing = "listing column defaults that name their sequence as text"
                for schema, table, column, expression in conn.execute(_NAMED_DEFAULTS).fetchall():
                    if f"{schema}.{table}" not in counts:
                        continue
                    found = _TEXT_NEXTVAL.search(expression)
                    resolved = conn.execute(_RESOLVE, (found[1].replace("''", "'"),)).fetchone() if found else None
                    if resolved is not None and tuple(resolved) in listed:
                        uses.setdefault(tuple(resolved), []).append((schema, table, column, "default"))
                    else:
                        unchecked.append(f"the default of {schema}.{table}.{column}, {expression}, calls nextval() on "
                                         "a sequence the gate cannot name (no dependency recorded, and the text does "
                                         "not resolve to a sequence in the gate's search_path): its next value is "
                                         "not checked (write the default as nextval('schema.name'::regclass))")
                for (seq_schema, seq), (increment, readable) in listed.items():
                    in_scope = (schemas is None or seq_schema in schemas) and seq_schema not in exclude
                    columns = _one_link_per_column(uses.get((seq_schema, seq), []))
                    if not in_scope and not columns:
                        definitions.pop(f"{seq_schema}.{seq}", None)
                        continue
                    doing = f"reading sequence {seq_schema}.{seq}"
                    next_value = _next_value(conn, seq_schema, seq, increment) if readable else None
                    if not columns:
                        sequences.append(SequenceState(f"{seq_schema}.{seq}", "", next_value, None, increment))
                    for schema, table, column, link in columns:
                        doing = f"reading sequence {seq_schema}.{seq} and {schema}.{table}.{column}"
                        sequences.append(SequenceState(f"{seq_schema}.{seq}", f"{schema}.{table}.{column}", next_value,
                                                       _extreme(conn, schema, table, column, increment), increment,
                                                       link))
                for name in counts:
                    if checksum is True or (not isinstance(checksum, bool) and name in checksum):
                        doing = f"checksumming {name}"
                        checksums[name] = _checksum(conn, *name.split(".", 1))
        return Census(counts, unreadable, tuple(sequences), checksums, facts, definitions=definitions,
                      unchecked=tuple(unchecked))
    except psycopg.Error as exc:
        return Census(counts, unreadable, tuple(sequences), checksums, facts,
                      describe_error(exc, doing, timeout_ms, connect_timeout_s))


def _one_link_per_column(found: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """``(schema, table, column, link)`` once per column: a serial column is both owned and defaulted."""
    rank = {"identity": 0, "owned": 1, "default": 2}
    best: dict[tuple[str, str, str], str] = {}
    for schema, table, column, link in found:
        key = (schema, table, column)
        if key not in best or rank[link] < rank[best[key]]:
            best[key] = link
    return [(*key, link) for key, link in sorted(best.items())]


def _next_value(conn: psycopg.Connection[Any], seq_schema: str, seq: str, increment: int) -> int:
    """What ``nextval`` would give: ``last_value`` once ``is_called``, else ``last_value`` itself."""
    last, called = one_row(conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
        sql.Identifier(seq_schema, seq))))
    return last + increment if called else last


def _extreme(conn: psycopg.Connection[Any], schema: str, table: str, column: str, increment: int) -> int | None:
    """The column's max (min for a descending sequence); None for an empty table or a non-integer value."""
    extreme = sql.SQL("max" if increment > 0 else "min")
    value = one_row(conn.execute(sql.SQL("SELECT {}({}) FROM {}").format(extreme, sql.Identifier(column),
                                                                         sql.Identifier(schema, table))))[0]
    return int(value) if isinstance(value, (int, float)) or str(value).lstrip("-").isdigit() else None


def _checksum(conn: psycopg.Connection[Any], schema: str, table: str) -> str:
    """sha256 of the table's rows as text, one per line, in byte order of that text."""
    digest = hashlib.sha256()
    query = sql.SQL('SELECT t::text FROM {} AS t ORDER BY t::text COLLATE "C"').format(sql.Identifier(schema, table))
    with conn.cursor(name=f"gate_checksum_{os.getpid()}") as cursor:
        cursor.itersize = 2000
        cursor.execute(query)
        for (text,) in cursor:
            digest.update(text.encode() + b"\n")
    return "sha256:" + digest.hexdigest()
