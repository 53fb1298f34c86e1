"""Fixtures for the cutover gate's tests: one real PostgreSQL server for the whole session.

It is started once (initdb + ``pg_ctl start`` as the ``postgres`` user) and stopped by pid with
``pg_ctl stop -m fast`` in the finalizer, also when tests fail. Missing server binaries are a test
error naming the package, never a silent skip. Beside it: the SSH keys and a history path the
approval tests sign and record with, and the equal copies of the seed the parity tests compare (one
``pair`` per test module, a ``fresh_pair`` per test).
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from railiance_conformance.gate.approval import NAMESPACE
from tests.gate.parity_copies import copies
from tests.gate.pg_server import PgServer, find_bindir

ADA = "ada@railiance.example"

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


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Ada's SSH key (allowed to approve), Eve's (not in allowed_signers), and the allowed_signers file."""
    folder = tmp_path_factory.mktemp("keys")
    for name in ("ada", "eve"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True)
    allowed = folder / "allowed_signers"
    allowed.write_text(f'{ADA} namespaces="{NAMESPACE}" {(folder / "ada.pub").read_text()}')
    return {"ada": folder / "ada", "eve": folder / "eve", "allowed": allowed}


@pytest.fixture
def history(tmp_path) -> Path:
    """Where a test's gate history (SQLite) goes; the gate's approval chain lives in it."""
    return tmp_path / "reports" / "history.sqlite"


@pytest.fixture(scope="module")
def pair(postgres: PgServer, seeded: str) -> tuple[str, str, str]:
    """Equal copies that no test changes."""
    return copies(postgres, seeded)


@pytest.fixture
def fresh_pair(postgres: PgServer, seeded: str) -> tuple[str, str, str]:
    """Equal copies of this test's own, to change."""
    return copies(postgres, seeded)
