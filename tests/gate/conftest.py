"""Fixtures for the cutover gate's tests: one real PostgreSQL server for the whole session.

It is started once (initdb + ``pg_ctl start`` as the ``postgres`` user) and stopped by pid with
``pg_ctl stop -m fast`` in the finalizer, also when tests fail. Missing server binaries are a test
error naming the package, never a silent skip.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gate.pg_server import PgServer, find_bindir

SEED_SQL = (Path(__file__).parent / "fixtures" / "seed.sql").read_text()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: apt-get install postgresql")
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seeded(postgres: PgServer) -> str:
    """A database filled from fixtures/seed.sql, used only as the template of each test's copies."""
    return postgres.create_database(SEED_SQL)
