"""A PostgreSQL connection that goes silent mid-check ends the check with an error naming the bound:
a TCP relay in front of a real PostgreSQL server forwards the session until the gate lists the
tables, then keeps both sockets open and forwards nothing (a hung pooler or a dropped NAT flow
that still ACKs). statement_timeout is the server's and never fires; the gate's own watchdog must."""
from __future__ import annotations

import socket
import threading
import time

from railiance_conformance.gate.parity import compare
from tests.gate.conftest import postgres, seeded  # noqa: F401 - the real PostgreSQL server fixtures
from tests.gate.pg_server import PgServer


class SilentRelay:
    """127.0.0.1:port -> the server; once the client sends ``trigger``, nothing more is forwarded
    either way, and the sockets stay open until ``stop()``."""

    def __init__(self, upstream_port: int, trigger: bytes):
        self.upstream_port, self.trigger = upstream_port, trigger
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.silent = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if from_client and self.trigger in data:
                self.silent.set()
            if self.silent.is_set():
                continue  # read and dropped: the peer stays connected and says nothing
            try:
                sink.sendall(data)
            except OSError:
                return

    def stop(self) -> None:
        self.server.close()
        for sock in self.sockets:
            sock.close()


# the parameters name the fixtures imported above (pytest injects them): not a redefinition
def test_a_connection_that_goes_silent_mid_check_ends_with_an_error_naming_the_bound(postgres: PgServer, seeded):  # noqa: F811
    source, restored = postgres.create_database(template=seeded), postgres.create_database(template=seeded)
    relay = SilentRelay(postgres.port, trigger=b"relkind")
    results = []
    started = time.monotonic()
    try:
        worker = threading.Thread(target=lambda: results.append(compare(
            postgres.dsn(source), postgres.dsn(restored, port=relay.port), statement_timeout_ms=2000,
            connect_timeout_s=3)), daemon=True)
        worker.start()
        worker.join(60)
        took = time.monotonic() - started
    finally:
        relay.stop()
    assert relay.silent.is_set()  # the relay really went silent mid-check
    assert results, "the check never ended on a silent connection"
    assert took < 2 + 5 + 5, f"took {took:.1f} s"
    [result] = results
    assert not result.ok
    assert "restored copy" in result.error and "listing base tables" in result.error
    assert "no answer from the server within 7 s (the statement timeout + 5 s): the gate's watchdog closed the " \
           "connection" in result.error, result.error
    assert postgres.password not in result.error
