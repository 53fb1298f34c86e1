"""gate.restore.parity: a restored PostgreSQL copy has its source's base tables, rows and sequences.

Each database is read through its own connection, at the same time, in one REPEATABLE READ READ ONLY
transaction (the session's default is read-only too, with a statement timeout); nothing is written.
Compared, per side:

* every base table (``relkind`` r/p, partitions through their parent) of every non-system schema
  (all but ``pg_*`` and ``information_schema``), or of the ``schemas`` given, less ``exclude``:
  its exact ``count(*)``; a table the gate's user cannot read (no USAGE on its schema, no SELECT on
  it, or row-level security hiding rows from it) is named as unreadable on that side, never as
  missing;
* every sequence of a compared schema, and every sequence a compared table's column uses: owned by
  the column (``serial``, ``OWNED BY``: pg_depend 'a'; ``identity``: 'i') or called by its
  ``DEFAULT nextval('…')`` without ``OWNED BY`` (the pg_attrdef row depends on the sequence, 'n').
  A default naming its sequence as text (``nextval('x'::text)``, no dependency) is resolved with
  ``to_regclass``; one that cannot be resolved is named as not checked. Its definition (increment,
  min, max, cycle) must be the source's.
  Its next value must be ahead of each such column's maximum (minimum for a descending sequence),
  or the next insert after the cutover fails on a duplicate key; and on the restored copy it must
  be at or beyond the source's next value, or the ids the source already handed out are issued a
  second time. A sequence is read (``last_value``, ``is_called``) in the same transaction as the
  counts, right after them: sequences are not transactional (PostgreSQL docs, "Sequence Manipulation
  Functions"), so the value is the one at that moment, not at the snapshot; a source still being
  written to can only move its sequence forward, i.e. make the copy look behind, never ahead;
* opt-in (``checksum``): a sha256 over each table's rows as text (``t::text``, in ``COLLATE "C"``
  order, with TimeZone UTC, DateStyle ISO, extra_float_digits 1, bytea_output hex on both sides).

When counts differ, the differing tables are counted again on the source after the check: a changed
count names the source's write activity (the workplan freezes writes before the final dump).
No message carries a password: DSNs are shown masked and exception texts are scrubbed.
Example: ``compare(dsn_from_env("SOURCE_DSN"), dsn_from_env("RESTORED_DSN")).mismatches``
-> ``["table public.x: 120 rows in the source, 119 in the restored copy"]``.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from railiance_conformance.redact import MASK, redact_url

APPLICATION_NAME = "railiance-conformance gate.parity"
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
_URL_PASSWORD = re.compile(r"://[^:/@\s]*:(?P<pw>[^@/\s]*)@|[?&](?:ssl)?password=(?P<qpw>[^&#\s]*)", re.IGNORECASE)
# libpq's keywords that hold a secret: password, and sslpassword (the passphrase of sslkey; libpq docs, 34.1.2)
SECRET_PARAMS = ("password", "sslpassword")
_KV_PASSWORD = re.compile(r"(?P<key>\b(?:ssl)?password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)
SIDES = {"source": "the source", "restored": "the restored copy"}


class DsnNotSet(LookupError):
    """The environment variable that should hold a DSN is unset or empty."""


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


@dataclass(frozen=True, slots=True)
class ParityResult:
    """``ok`` only when both databases were read and every table, sequence (and checksum) holds;
    ``error`` says why a side could not be read at all."""

    ok: bool
    tables: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    error: str = ""
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)  # "source"/"restored": session facts
    unreadable: list[str] = field(default_factory=list)    # tables not verified, with the grant missing
    sequences: list[str] = field(default_factory=list)     # sequences behind their column
    source_writes: list[str] = field(default_factory=list)  # counts that moved on the source during the check
    checksums: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    schemas: list[str] = field(default_factory=list)        # the schemas whose tables were compared
    sequences_checked: int = 0                              # sequences read, both sides together
    sequence_values: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # next values


def dsn_from_env(name: str) -> str:
    """``dsn_from_env("RESTORED_DSN")`` -> its value, or ``DsnNotSet`` naming the variable."""
    value = os.environ.get(name, "")
    if not value.strip():
        state = "empty" if name in os.environ else "not set"
        raise DsnNotSet(f"environment variable {name} is {state}: set it to a PostgreSQL DSN "
                        "('host=... dbname=... user=...' or postgresql://user@host/dbname)")
    return value


def masked_dsn(dsn: str) -> str:
    """``masked_dsn("postgresql://gate:pw@db/hub")`` -> ``"user=gate password=*** dbname=hub host=db"``."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return _KV_PASSWORD.sub(rf"\g<key>{MASK}", redact_url(_scrub(dsn, _passwords(dsn))))
    for name in SECRET_PARAMS:
        if params.get(name):
            params[name] = MASK
    return _scrub(make_conninfo("", **params), _passwords(dsn))  # also where it leaked into another field


def compare(source_dsn: str, restored_dsn: str, *, schemas: Sequence[str] | None = None,
            exclude: Sequence[str] = (), statement_timeout_ms: int = 30000, connect_timeout_s: int = 10,
            checksum: bool | Sequence[str] = False) -> ParityResult:
    """``compare(src, restored, schemas=("public", "audit")).ok`` -> True when everything matches.

    ``schemas`` None compares every non-system schema; ``exclude`` removes schemas (the drill marker's);
    ``checksum`` True checksums every table, a list of ``schema.table`` only those.
    """
    schemas = (schemas,) if isinstance(schemas, str) else (tuple(schemas) if schemas is not None else None)
    secrets = _passwords(source_dsn) | _passwords(restored_dsn)
    sides = {"source": source_dsn, "restored": restored_dsn}
    if _address(source_dsn) is not None and _address(source_dsn) == _address(restored_dsn):
        return ParityResult(False, error=f"source and restored copy are the same database ({masked_dsn(source_dsn)}): "
                                         "comparing a database with itself proves nothing")
    options = (schemas, tuple(exclude), statement_timeout_ms, connect_timeout_s, checksum)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="parity") as pool:
        futures = {side: pool.submit(_census, dsn, *options) for side, dsn in sides.items()}
    census = {side: future.result() for side, future in futures.items()}
    errors = [_scrub(f"{'source' if side == 'source' else 'restored copy'} {masked_dsn(sides[side])}: {c.error}", secrets)
              for side, c in census.items() if c.error]
    evidence = {side: c.facts for side, c in census.items()}
    if errors:
        return ParityResult(False, error="; ".join(errors), evidence=evidence)
    source, restored = census["source"], census["restored"]
    names = sorted(source.counts.keys() | restored.counts.keys() | source.unreadable.keys() | restored.unreadable.keys())
    tables = {name: (source.counts.get(name), restored.counts.get(name)) for name in names}
    unreadable = [f"table {name} could not be read on {SIDES[side]} by user {census[side].facts.get('user')}: "
                  f"{census[side].unreadable[name]}" for name in names for side in SIDES if name in census[side].unreadable]
    mismatches = [line for name, counts in tables.items()
                  if not any(name in c.unreadable for c in census.values()) and (line := _mismatch(name, *counts))]
    if not tables:
        where = f"schema(s) {', '.join(schemas)}" if schemas is not None else "any non-system schema"
        mismatches.append(f"no base tables in {where} of either database: nothing was compared")
    sequences = [_sequence_line(side, state) for side in SIDES for state in census[side].sequences if state.behind]
    unreadable_sequences = {(side, state.sequence) for side in SIDES for state in census[side].sequences
                            if state.next_value is None}
    sequences += [f"sequence {name} could not be read on {SIDES[side]} by user {census[side].facts.get('user')}: "
                  f"GRANT SELECT ON SEQUENCE {name}" for side, name in sorted(unreadable_sequences, key=lambda k: k[1])]
    values = {side: {state.sequence: (state.next_value, state.increment) for state in census[side].sequences}
              for side in SIDES}
    already = {state.sequence for state in restored.sequences if state.behind}
    sequences += [line for name in sorted(values["source"].keys() | values["restored"].keys())
                  if name not in already and (line := _against_source(name, values["source"].get(name),
                                                                     values["restored"].get(name)))]
    sequences += [f"on {SIDES[side]}, {line}" for side in SIDES for line in census[side].unchecked]
    sequences += [line for name in sorted(source.definitions.keys() & restored.definitions.keys())
                  if (line := _definition_differs(name, source.definitions[name], restored.definitions[name]))]
    checksums = {name: (source.checksums.get(name), restored.checksums.get(name))
                 for name in sorted(source.checksums.keys() | restored.checksums.keys())}
    mismatches += [f"table {name}: same row count, different contents (sha256 {a[:12]} in the source, "
                   f"{b[:12]} in the restored copy)" for name, (a, b) in checksums.items()
                   if a and b and a != b and tables.get(name, (0, 1))[0] == tables.get(name, (0, 1))[1]]
    writes: list[str] = []
    moved = [name for name, (a, b) in tables.items() if a is not None and b is not None and a != b]
    if moved:
        writes = _source_writes(source_dsn, moved, source.counts, statement_timeout_ms, connect_timeout_s, secrets)
    compared = sorted({name.split(".", 1)[0] for name in names})
    ok = not (mismatches or unreadable or sequences)
    return ParityResult(ok, tables, mismatches, evidence=evidence, unreadable=unreadable, sequences=sequences,
                        source_writes=writes, checksums=checksums, schemas=compared,
                        sequences_checked=sum(len({s.sequence for s in c.sequences}) for c in census.values()),
                        sequence_values={name: (values["source"].get(name, (None,))[0],
                                                values["restored"].get(name, (None,))[0])
                                         for name in sorted(values["source"].keys() | values["restored"].keys())})


def _against_source(name: str, source: tuple[int | None, int] | None, restored: tuple[int | None, int] | None) -> str:
    """The restored copy's sequence must not be behind the source's: ``(next value, increment)`` per side."""
    if restored is None:
        return (f"sequence {name} missing in the restored copy: the source has it (next value "
                f"{source[0] if source else '?'})")
    if source is None:
        return f"sequence {name} only in the restored copy"
    (theirs, step), (ours, _) = source, restored
    if theirs is None or ours is None:
        return ""  # unreadable: named above
    if (ours < theirs) if step > 0 else (ours > theirs):
        gap = f"{ours}..{theirs - 1}" if step > 0 else f"{theirs + 1}..{ours}"
        return (f"sequence {name} on the restored copy would next give {ours}, behind the source's {theirs}: after "
                f"the cutover it hands out {gap} a second time, values the source already gave out "
                f"(SELECT setval('{name}', {theirs}, false))")
    return ""


def _definition_differs(name: str, source: tuple[int, int, int, bool], restored: tuple[int, int, int, bool]) -> str:
    """The restored sequence must step, bound and wrap as the source's does (``pg_sequence``: seqincrement,
    seqmin, seqmax, seqcycle): a copy with another increment sign walks back over values the source
    already handed out, and a lower MAXVALUE with CYCLE wraps to them; its next value alone shows neither."""
    if source == restored:
        return ""

    def clause(label: str, value: int | bool) -> str:
        return ("CYCLE" if value else "NO CYCLE") if label == "CYCLE" else f"{label} {value}"

    changed = [(label, a, b) for label, a, b in zip(("INCREMENT", "MINVALUE", "MAXVALUE", "CYCLE"), source, restored, strict=True)
               if a != b]
    differ = "; ".join(f"{clause(label, a)} in the source, {clause(label, b)} in the restored copy"
                       for label, a, b in changed)
    fix = " ".join(clause(label, a) for label, a, _ in changed)
    return (f"sequence {name} is defined differently: {differ}; after the cutover it can hand out values the "
            f"source already gave out, or stop early (ALTER SEQUENCE {name} {fix})")


def _sequence_line(side: str, state: SequenceState) -> str:
    extreme = "max" if state.increment > 0 else "min"
    return (f"sequence {state.sequence} on {SIDES[side]} would next give {state.next_value}, but {state.column} "
            f"already holds {state.column_extreme} ({extreme}): the next insert fails on a duplicate key "
            f"(SELECT setval('{state.sequence}', (SELECT {extreme}({state.column.rsplit('.', 1)[1]}) FROM "
            f"{state.column.rsplit('.', 1)[0]})))")


def _mismatch(name: str, source: int | None, restored: int | None) -> str:
    if restored is None:
        return f"table {name} missing in the restored copy"
    if source is None:
        return f"table {name} only in the restored copy"
    if source != restored:
        return f"table {name}: {source} row{'s' * (source != 1)} in the source, {restored} in the restored copy"
    return ""


def _connect(dsn: str, timeout_ms: int, connect_timeout_s: int) -> psycopg.Connection:
    from railiance_conformance.gate.pg_bounds import connect  # keepalives, tcp_user_timeout, silence watchdog

    conn = connect(dsn, statement_timeout_ms=timeout_ms, connect_timeout_s=connect_timeout_s, autocommit=True,
                   fallback_application_name=APPLICATION_NAME)
    try:
        conn.execute("SELECT set_config('default_transaction_read_only', 'on', false), "
                     "set_config('statement_timeout', %s, false)", (f"{int(timeout_ms)}ms",))
    except psycopg.Error:
        conn.close()
        if conn.watchdog is not None and conn.watchdog.fired:
            raise conn.silent() from None
        raise
    conn.read_only, conn.isolation_level = True, psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def _error(exc: psycopg.Error, doing: str, timeout_ms: int, connect_timeout_s: int) -> str:
    message = " ".join(str(exc).split())[:500] or type(exc).__name__
    if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in message:
        return f"statement timeout ({timeout_ms} ms) exceeded while {doing}: {message}"
    if "timeout expired" in message:
        return f"no connection within the connect timeout ({connect_timeout_s} s): {message}"
    return f"{doing} failed: {type(exc).__name__}: {message}"


def _census(dsn: str, schemas: tuple[str, ...] | None, exclude: tuple[str, ...], timeout_ms: int,
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
        with _connect(dsn, timeout_ms, connect_timeout_s) as conn:
            doing = "setting up the read-only session"
            if checksum:
                for name, value in _CHECKSUM_SETTINGS:
                    conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            with conn.transaction():  # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
                facts = dict(zip((*_SETTINGS, "database", "user"), conn.execute(_SESSION).fetchone() or (), strict=False))
                doing = "listing base tables"
                listed = conn.execute(_BASE_TABLES, {"schemas": list(schemas) if schemas is not None else None,
                                                     "exclude": list(exclude)}).fetchall()
                for schema, table, readable, rls_hides in listed:
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
                    counts[name] = row.fetchone()[0]
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
                      _error(exc, doing, timeout_ms, connect_timeout_s))


def _one_link_per_column(found: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """``(schema, table, column, link)`` once per column: a serial column is both owned and defaulted."""
    rank = {"identity": 0, "owned": 1, "default": 2}
    best: dict[tuple[str, str, str], str] = {}
    for schema, table, column, link in found:
        key = (schema, table, column)
        if key not in best or rank[link] < rank[best[key]]:
            best[key] = link
    return [(*key, link) for key, link in sorted(best.items())]


def _next_value(conn, seq_schema: str, seq: str, increment: int) -> int:
    """What ``nextval`` would give: ``last_value`` once ``is_called``, else ``last_value`` itself."""
    last, called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
        sql.Identifier(seq_schema, seq))).fetchone()
    return last + increment if called else last


def _extreme(conn, schema: str, table: str, column: str, increment: int) -> int | None:
    """The column's max (min for a descending sequence); None for an empty table or a non-integer value."""
    extreme = sql.SQL("max" if increment > 0 else "min")
    value = conn.execute(sql.SQL("SELECT {}({}) FROM {}").format(extreme, sql.Identifier(column),
                                                                 sql.Identifier(schema, table))).fetchone()[0]
    return int(value) if isinstance(value, (int, float)) or str(value).lstrip("-").isdigit() else None


def _checksum(conn, schema: str, table: str) -> str:
    """sha256 of the table's rows as text, one per line, in byte order of that text."""
    digest = hashlib.sha256()
    query = sql.SQL('SELECT t::text FROM {} AS t ORDER BY t::text COLLATE "C"').format(sql.Identifier(schema, table))
    with conn.cursor(name=f"gate_checksum_{os.getpid()}") as cursor:
        cursor.itersize = 2000
        cursor.execute(query)
        for (text,) in cursor:
            digest.update(text.encode() + b"\n")
    return "sha256:" + digest.hexdigest()


def _source_writes(dsn: str, names: list[str], snapshot: dict[str, int], timeout_ms: int, connect_timeout_s: int,
                   secrets: set[str]) -> list[str]:
    """Count the differing tables on the source again, after the check: a moved count is write activity."""
    moved = []
    try:
        with _connect(dsn, timeout_ms, connect_timeout_s) as conn, conn.transaction():
            for name in names:
                now = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(*name.split(".", 1)))).fetchone()[0]
                if now != snapshot[name]:
                    moved.append(f"the source is still being written to: {name} had {snapshot[name]} rows in the "
                                 f"check's snapshot and {now} when counted again (freeze writes before the final "
                                 "dump, as the workplan's step 7 says)")
    except psycopg.Error as exc:
        moved.append(_scrub(f"could not count the source again to look for write activity: "
                            f"{' '.join(str(exc).split())[:300]}", secrets))
    return moved


def _passwords(dsn: str) -> set[str]:
    """Every spelling of a password the DSN (or PGPASSWORD) may hold, to scrub it from any text."""
    found = {os.environ.get("PGPASSWORD", "")}
    try:
        params = conninfo_to_dict(dsn)
        found |= {params.get(name) or "" for name in SECRET_PARAMS}
    except psycopg.Error:
        pass
    for match in _URL_PASSWORD.finditer(dsn):
        raw = match["pw"] or match["qpw"] or ""
        found |= {raw, unquote(raw)}
    for match in _KV_PASSWORD.finditer(dsn):
        found |= {match["pw"], match["pw"].strip("'")}
    return {secret for secret in found if secret}


def _scrub(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _address(dsn: str) -> tuple[str, str, str] | None:
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return None
    return (params.get("host") or params.get("hostaddr") or "", params.get("port") or "5432",
            params.get("dbname") or params.get("user") or "")
