"""A throwaway PostgreSQL server for the gate's tests, from Debian's ``postgresql`` package.

``initdb`` and ``pg_ctl`` run as a non-root user (``runuser -u postgres --`` when the tests run as
root) in a fresh temp dir owned by that user; the server listens on 127.0.0.1 and a free port only,
every connection (TCP and socket) needs a scram-sha-256 password. ``stop()`` runs
``pg_ctl stop -m fast`` and, should that fail, kills the postmaster by the pid it wrote.
Example: ``server = PgServer(find_bindir()); server.start(); server.dsn("postgres"); server.stop()``.

Why not pytest-postgresql (10.0.0, tried on this machine as root with Debian's PostgreSQL 15): its
executor runs ``pg_ctl initdb`` as the current user, and initdb refuses root; behind a ``runuser``
wrapper as ``--postgresql-exec``, initdb cannot read the password file the plugin writes 0600 as root
in /tmp, nor reach a data directory under pytest's 0700 basetemp. Its password setup is initdb's
``--auth=password`` (cleartext) where these tests want scram-sha-256, and it keeps one superuser
where the gate's tests also need a role without it. Working round that is more code than this file.
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

SERVER_USER = "postgres"  # the system user Debian's postgresql package creates
ADMIN = "gate_admin"
TESTER = "gate_tester"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding initdb and pg_ctl, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
             if Path(p).with_name("initdb").exists()]
    return max(found, key=lambda d: int(re.sub(r"\D", "", d.parent.name) or 0), default=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgServer:
    """One PostgreSQL instance; ``admin_password``/``password`` are random per run."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.host, self.port = "127.0.0.1", free_port()
        self.admin_password = "Adm1n-" + secrets.token_urlsafe(12)
        self.password = "Gate-" + secrets.token_urlsafe(12)
        self.base: Path | None = None
        self.pid: int | None = None
        self._as_user: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(f"no system user {SERVER_USER!r} to run PostgreSQL as (apt-get install postgresql)") from None
            self._as_user, self._owner = ["runuser", "-u", SERVER_USER, "--"], (entry.pw_uid, entry.pw_gid)

    @property
    def data(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    def _run(self, *argv: str, timeout: float = 120) -> str:
        done = subprocess.run([*self._as_user, *argv], cwd=self.base, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.base / "server.log" if self.base else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}{tail}")
        return done.stdout

    def start(self) -> None:
        """initdb, start (pg_ctl -w), create the test role with a password."""
        self.base = Path(tempfile.mkdtemp(prefix="railiance-gate-pg-"))
        pwfile = self.base / "admin.pw"
        pwfile.write_text(self.admin_password + "\n")
        pwfile.chmod(0o600)
        if self._owner:
            for path in (self.base, pwfile):
                os.chown(path, *self._owner)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", ADMIN, f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories={self.base} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(TESTER), sql.Literal(self.password)))

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; if that fails, SIGQUIT then SIGKILL to the postmaster's pid; remove the dir."""
        try:
            pidfile = self.data / "postmaster.pid" if self.base else None
            if self.pid is None and pidfile and pidfile.exists():  # start() failed half-way
                self.pid = int(pidfile.read_text().split()[0])
            if self.pid is not None:
                try:
                    self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
                except (RuntimeError, subprocess.TimeoutExpired):
                    _kill(self.pid)
                self.pid = None
        finally:
            if self.base:
                shutil.rmtree(self.base, ignore_errors=True)
                self.base = None

    def dsn(self, dbname: str, *, user: str = TESTER, password: str | None = None, port: int | None = None,
            url: bool = False) -> str:
        """A key=value DSN (or a ``postgresql://`` URL) with the password in it."""
        password = self.password if password is None else password
        port = port or self.port
        if url:
            return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{port}/{dbname}"
        return f"host={self.host} port={port} dbname={dbname} user={user} password='{password}'"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.dsn(dbname, user=ADMIN, password=self.admin_password), autocommit=True)

    def create_database(self, seed_sql: str = "", *, template: str = "template1") -> str:
        """A new database owned by the test role, copied from ``template`` and filled by ``seed_sql``; its name."""
        name = f"gate_{uuid.uuid4().hex[:10]}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TESTER), sql.Identifier(template)))
        if seed_sql:
            with psycopg.connect(self.dsn(name), autocommit=True) as conn:
                conn.execute(seed_sql)
        return name


def _kill(pid: int) -> None:
    for sig, wait_s in ((signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

