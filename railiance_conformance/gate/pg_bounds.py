"""Client-side bounds on the gate's PostgreSQL connections: a connection that goes silent ends the check.

``statement_timeout`` is enforced by the server: when the server, or anything between it and the
gate (a proxy, a NAT that dropped the flow, a hung pooler), stops answering, nothing on the server
side ever ends the wait. So every connection of the gate gets, besides libpq's ``connect_timeout``:

* TCP keepalives (libpq ``keepalives``, ``keepalives_idle`` 10 s, ``keepalives_interval`` 5 s,
  ``keepalives_count`` 3) and ``tcp_user_timeout`` (Linux ``TCP_USER_TIMEOUT``): a peer that is
  gone (no ACKs) is noticed by the kernel within ~25 s;
* a watchdog for a peer that is there but silent (it ACKs and never answers): a thread that, when
  one command has been in flight (``PQtransactionStatus`` ACTIVE) for longer than its limit (the
  statement timeout plus ``GRACE_S``), shuts the socket down; libpq's wait then ends at once with
  "server closed the connection", which the connection turns into ``SilentServer`` naming the limit.

libpq parameters: PostgreSQL docs, "Connection Strings / Parameter Key Words" (libpq-connect).
Example: ``with connect(dsn, statement_timeout_ms=30000, connect_timeout_s=10) as conn: ...``.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any

import psycopg
from psycopg import pq

GRACE_S = 5.0
# libpq connection parameters (libpq docs, 34.1.2), passed to psycopg's ``**kwargs``
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                              "keepalives_count": 3, "tcp_user_timeout": 25000}


class SilentServer(psycopg.OperationalError):
    """A command got no answer within the watchdog's limit; the connection was closed by the gate."""


class _Watchdog:
    def __init__(self, conn: "BoundedConnection", limit_s: float):
        self.conn, self.limit_s = conn, limit_s
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pg-watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        busy_since = None
        while not self._stop.wait(0.2):
            if self.conn.closed:
                return
            try:
                active = self.conn.pgconn.transaction_status == pq.TransactionStatus.ACTIVE
            except Exception:  # noqa: BLE001 - closed meanwhile
                return
            now = time.monotonic()
            busy_since = (busy_since or now) if active else None
            if busy_since is not None and now - busy_since > self.limit_s:
                self.fired = True
                try:
                    with socket.socket(fileno=_dup(self.conn.pgconn.socket)) as sock:
                        sock.shutdown(socket.SHUT_RDWR)  # the shared socket: libpq's wait ends now
                except OSError:
                    pass
                return

    def stop(self) -> None:
        self._stop.set()


def _dup(fd: int) -> int:
    import os

    return os.dup(fd)


class BoundedConnection(psycopg.Connection):
    """A psycopg connection with the watchdog above; leaving its ``with`` block after the watchdog
    fired raises ``SilentServer`` in place of libpq's "server closed the connection"."""

    watchdog: _Watchdog | None = None

    def __exit__(self, exc_type, exc, tb) -> None:
        dog = self.watchdog
        if dog is not None:
            dog.stop()
        try:
            super().__exit__(exc_type, exc, tb)
        except psycopg.Error:
            if dog is None or not dog.fired:
                raise
        if dog is not None and dog.fired and exc_type is not None and issubclass(exc_type, psycopg.Error):
            raise self.silent() from None

    def silent(self) -> SilentServer:
        limit = self.watchdog.limit_s if self.watchdog is not None else 0
        return SilentServer(f"no answer from the server within {limit:g} s (the statement timeout + {GRACE_S:g} s): "
                            f"the gate's watchdog closed the connection (a silent server or network path)")


def connect(dsn: str, *, statement_timeout_ms: int, connect_timeout_s: int, **kwargs: Any) -> BoundedConnection:
    """``psycopg.connect`` with ``connect_timeout``, TCP keepalives, ``tcp_user_timeout`` and the watchdog
    (limit: ``statement_timeout_ms`` / 1000 + ``GRACE_S`` seconds)."""
    conn = BoundedConnection.connect(dsn, connect_timeout=connect_timeout_s, **KEEPALIVES, **kwargs)
    conn.watchdog = _Watchdog(conn, statement_timeout_ms / 1000 + GRACE_S)
    return conn
