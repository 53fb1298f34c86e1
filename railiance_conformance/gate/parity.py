"""gate.restore.parity: a restored PostgreSQL copy has its source's base tables with the same exact row counts.

Each database is read through its own connection, at the same time, in one REPEATABLE READ READ ONLY
transaction (the session's default is read-only too, with a statement timeout); nothing is written.
No message carries a password: DSNs are shown masked and exception texts are scrubbed.
Example: ``compare(dsn_from_env("SOURCE_DSN"), dsn_from_env("RESTORED_DSN")).mismatches``
-> ``["table public.x: 120 rows in the source, 119 in the restored copy"]``.
"""
from __future__ import annotations

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
_SESSION = "SELECT " + ", ".join(f"current_setting('{name}')" for name in _SETTINGS) + ", current_database()"
_BASE_TABLES = """SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s) ORDER BY 1, 2"""
_URL_PASSWORD = re.compile(r"://[^:/@\s]*:(?P<pw>[^@/\s]*)@|[?&]password=(?P<qpw>[^&#\s]*)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)


class DsnNotSet(LookupError):
    """The environment variable that should hold a DSN is unset or empty."""


@dataclass(frozen=True, slots=True)
class ParityResult:
    """``ok`` only when both databases were read and every table matches; ``error`` says why not read."""

    ok: bool
    tables: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    error: str = ""
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)  # "source"/"restored": session facts


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
    if params.get("password"):
        params["password"] = MASK
    return _scrub(make_conninfo("", **params), _passwords(dsn))  # also where it leaked into another field


def compare(source_dsn: str, restored_dsn: str, *, schemas: Sequence[str] = ("public",),
            statement_timeout_ms: int = 30000, connect_timeout_s: int = 10) -> ParityResult:
    """``compare(src, restored, schemas=("public", "audit")).ok`` -> True when every table's count matches."""
    schemas = (schemas,) if isinstance(schemas, str) else tuple(schemas)
    secrets = _passwords(source_dsn) | _passwords(restored_dsn)
    sides = {"source": source_dsn, "restored": restored_dsn}
    if _address(source_dsn) is not None and _address(source_dsn) == _address(restored_dsn):
        return ParityResult(False, error=f"source and restored copy are the same database ({masked_dsn(source_dsn)}): "
                                         "comparing a database with itself proves nothing")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="parity") as pool:
        futures = {side: pool.submit(_census, dsn, schemas, statement_timeout_ms, connect_timeout_s)
                   for side, dsn in sides.items()}
    census = {side: future.result() for side, future in futures.items()}
    errors = [_scrub(f"{'source' if side == 'source' else 'restored copy'} {masked_dsn(sides[side])}: {error}", secrets)
              for side, (_, _, error) in census.items() if error]
    evidence = {side: facts for side, (_, facts, _) in census.items()}
    if errors:
        return ParityResult(False, error="; ".join(errors), evidence=evidence)
    source, restored = census["source"][0], census["restored"][0]
    tables = {name: (source.get(name), restored.get(name)) for name in sorted(source.keys() | restored.keys())}
    mismatches = [line for name, counts in tables.items() if (line := _mismatch(name, *counts))]
    if not tables:
        mismatches.append(f"no base tables in schema(s) {', '.join(schemas)} of either database: nothing was compared")
    return ParityResult(not mismatches, tables, mismatches, evidence=evidence)


def _mismatch(name: str, source: int | None, restored: int | None) -> str:
    if restored is None:
        return f"table {name} missing in the restored copy"
    if source is None:
        return f"table {name} only in the restored copy"
    if source != restored:
        return f"table {name}: {source} row{'s' * (source != 1)} in the source, {restored} in the restored copy"
    return ""


def _census(dsn: str, schemas: tuple[str, ...], timeout_ms: int,
            connect_timeout_s: int) -> tuple[dict[str, int], dict[str, Any], str]:
    """Exact row counts of every base table, the session's facts, and "" or why it could not count."""
    counts: dict[str, int] = {}
    facts: dict[str, Any] = {}
    doing = "connecting"
    try:
        with psycopg.connect(dsn, connect_timeout=connect_timeout_s, autocommit=True,
                             fallback_application_name=APPLICATION_NAME) as conn:
            doing = "setting up the read-only session"
            conn.execute("SELECT set_config('default_transaction_read_only', 'on', false), "
                         "set_config('statement_timeout', %s, false)", (f"{int(timeout_ms)}ms",))
            conn.read_only, conn.isolation_level = True, psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():  # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
                facts = dict(zip((*_SETTINGS, "database"), conn.execute(_SESSION).fetchone() or ()))
                doing = "listing base tables"
                for schema, table in conn.execute(_BASE_TABLES, (list(schemas),)).fetchall():
                    doing = f"counting {schema}.{table}"
                    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
                    counts[f"{schema}.{table}"] = row.fetchone()[0]
        return counts, facts, ""
    except psycopg.Error as exc:
        message = " ".join(str(exc).split())[:500] or type(exc).__name__
        if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in message:
            return counts, facts, f"statement timeout ({timeout_ms} ms) exceeded while {doing}: {message}"
        if "timeout expired" in message:
            return counts, facts, f"no connection within the connect timeout ({connect_timeout_s} s): {message}"
        return counts, facts, f"{doing} failed: {type(exc).__name__}: {message}"


def _passwords(dsn: str) -> set[str]:
    """Every spelling of a password the DSN (or PGPASSWORD) may hold, to scrub it from any text."""
    found = {os.environ.get("PGPASSWORD", "")}
    try:
        found.add(conninfo_to_dict(dsn).get("password") or "")
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
