"""Two equal copies of the seed database for gate.restore.parity's tests (the source and the restored
copy), and a way to change one of them.

The ``pair``/``fresh_pair`` fixtures (tests/gate/conftest.py) make them with ``copies``; ``change`` runs
SQL in one database of the test server, autocommitted.
"""
from __future__ import annotations

import psycopg

from tests.gate.pg_server import PgServer


def copies(postgres: PgServer, seeded: str) -> tuple[str, str, str]:
    """(source DSN, restored DSN, restored database name): two equal copies of the seed."""
    source, restored = postgres.create_database(template=seeded), postgres.create_database(template=seeded)
    return postgres.dsn(source), postgres.dsn(restored), restored


def change(postgres: PgServer, dbname: str, statement: str) -> None:
    with psycopg.connect(postgres.dsn(dbname), autocommit=True) as conn:
        conn.execute(statement)
