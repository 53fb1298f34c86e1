"""The gate's read-only PostgreSQL session, and DSNs kept out of every message.

``read_only_session(dsn, statement_timeout_ms, connect_timeout_s)`` -> a ``pg_bounds`` connection
whose session default is read-only, its transactions REPEATABLE READ READ ONLY; ``describe_error``
says what failed while doing what (timeouts in ms and s). ``dsn_from_env`` (``DsnNotSet``),
``masked_dsn`` and ``scrub`` keep passwords (libpq's ``password`` and ``sslpassword``, libpq docs
34.1.2; PGPASSWORD) out of any text.
"""
from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from railiance_conformance.redact import MASK, redact_url

APPLICATION_NAME = "railiance-conformance gate.parity"
_URL_PASSWORD = re.compile(r"://[^:/@\s]*:(?P<pw>[^@/\s]*)@|[?&](?:ssl)?password=(?P<qpw>[^&#\s]*)", re.IGNORECASE)
# libpq's keywords that hold a secret: password, and sslpassword (the passphrase of sslkey; libpq docs, 34.1.2)
SECRET_PARAMS = ("password", "sslpassword")
_KV_PASSWORD = re.compile(r"(?P<key>\b(?:ssl)?password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)


class DsnNotSet(LookupError):
    """The environment variable that should hold a DSN is unset or empty."""


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
        return _KV_PASSWORD.sub(rf"\g<key>{MASK}", redact_url(scrub(dsn, dsn_secrets(dsn))))
    for name in SECRET_PARAMS:
        if params.get(name):
            params[name] = MASK
    return scrub(make_conninfo("", **params), dsn_secrets(dsn))  # also where it leaked into another field


def read_only_session(dsn: str, timeout_ms: int, connect_timeout_s: int) -> psycopg.Connection:
    """A bounded connection (``pg_bounds.connect``) whose session is read-only with ``statement_timeout``
    ``timeout_ms``, and whose transactions are REPEATABLE READ READ ONLY; ``pg_bounds.SilentServer`` or the
    psycopg error when the session cannot be set up."""
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


def one_row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The row of a query that always gives one (``count(*)``, an aggregate, a scalar expression);
    ``psycopg.ProgrammingError`` if it gave none."""
    row = cursor.fetchone()
    if row is None:
        raise psycopg.ProgrammingError("the query returned no row where it always returns one")
    return row


def describe_error(exc: psycopg.Error, doing: str, timeout_ms: int, connect_timeout_s: int) -> str:
    """One line: which timeout was exceeded (ms, s) or what failed ``doing`` what (not yet scrubbed of secrets)."""
    message = " ".join(str(exc).split())[:500] or type(exc).__name__
    if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in message:
        return f"statement timeout ({timeout_ms} ms) exceeded while {doing}: {message}"
    if "timeout expired" in message:
        return f"no connection within the connect timeout ({connect_timeout_s} s): {message}"
    return f"{doing} failed: {type(exc).__name__}: {message}"


def dsn_secrets(dsn: str) -> set[str]:
    """Every spelling of a password the DSN (or PGPASSWORD) may hold, to scrub it from any text."""
    found = {os.environ.get("PGPASSWORD", "")}
    try:
        params = conninfo_to_dict(dsn)
        found |= {str(params.get(name) or "") for name in SECRET_PARAMS}
    except psycopg.Error:
        pass
    for match in _URL_PASSWORD.finditer(dsn):
        raw = match["pw"] or match["qpw"] or ""
        found |= {raw, unquote(raw)}
    for match in _KV_PASSWORD.finditer(dsn):
        found |= {match["pw"], match["pw"].strip("'")}
    return {secret for secret in found if secret}


def scrub(text: str, secrets: set[str]) -> str:
    """``text`` with every secret (longest first) replaced by the mask."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def dsn_address(dsn: str) -> tuple[str, str, str] | None:
    """``(host, port, dbname)`` the DSN names (libpq defaults: port 5432, dbname = user); None if unparsable."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return None
    return (str(params.get("host") or params.get("hostaddr") or ""), str(params.get("port") or "5432"),
            str(params.get("dbname") or params.get("user") or ""))
