"""gate.restore.parity against a real PostgreSQL server: connecting, and never showing a password.

A database compared with itself is refused; a bad password, a closed port, a server that never answers
(the connect timeout), libpq echoing the password, a malformed or URL-encoded DSN are errors that name
the cause without the password; ``dsn_from_env`` names the variable, ``masked_dsn`` hides the password in
either DSN form.
"""
from __future__ import annotations

import socket
import time

import psycopg
import pytest

from railiance_conformance.gate.parity import compare
from railiance_conformance.gate.pg_session import DsnNotSet, dsn_from_env, masked_dsn
from tests.gate.pg_server import free_port


def test_a_database_compared_with_itself_is_refused(pair):
    source, _, _ = pair
    result = compare(source, source)
    assert not result.ok and "the same database" in result.error and "password=***" in result.error


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
