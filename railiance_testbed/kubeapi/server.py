"""The HTTP side of the stand-in: a real server on 127.0.0.1 that kubectl and the client talk to.

    with KubeAPIStandIn(load_dump(CONFORMANT_DUMP), forbidden={("list", "secrets", "gitea")}) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        ...                                  # kubectl --kubeconfig, kubernetes.config.new_client_from_config
        assert not [r for r in api.request_log if r.method != "GET"]

Read-only but for one write: a server-side apply of a ClusterPolicyReport (see ``api``), logged
with its content type in ``request_log`` like every request.
Plain HTTP/1.1 with keep-alive and Content-Length (no TLS; the kubeconfig carries a placeholder
bearer token the server ignores). ``latency_s`` delays every answer; ``fail_status`` makes every
non-discovery request fail with that code; ``proxy_refusals`` (``throttled()``, ``internal_error()``)
are kube-apiserver's own answers to the next service-proxy GETs, in order, before the Service's
backend answers as declared. ``fault`` misbehaves the way a broken or hostile
apiserver (or a proxy in front of it) can, for the suite's deadline tests:

* ``"repeat-continue"``: every LIST page carries the same ``continue`` token (and a request with
  it gets the first page again), so paging never ends unless the client notices the repeat;
* ``"endless-continue"``: every LIST page carries a new ``continue`` token, forever;
* ``"trickle-body"``: every answer's body is sent one byte every ``trickle_interval_s`` seconds
  (headers at once), so a per-read timeout never fires. Every request, writes included, lands in
``request_log`` before its answer is sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import yaml

from . import status
from .api import DEFAULT_SERVER_VERSION, DEFAULT_USER, KubeAPI
from .dump import load_dump
from .proxy import ProxiedAnswer

PLACEHOLDER_TOKEN = "railiance-testbed-placeholder-token"
FAULTS = (None, "repeat-continue", "endless-continue", "trickle-body")


class ProxyRefusal(NamedTuple):
    """What kube-apiserver itself answers on a service-proxy request, before any backend is asked:
    ``THROTTLED`` (API Priority and Fairness: ``tooManyRequests`` in apiserver/pkg/server/filters,
    text/plain with Retry-After) or ``internal_error`` (``responsewriters.InternalError``: text/plain
    "Internal Server Error: PATH: ERR", e.g. etcd's "leader changed")."""

    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = ()


def throttled(retry_after_s: int = 1) -> ProxyRefusal:
    return ProxyRefusal(429, "Too many requests, please try again later.\n", (("Retry-After", str(retry_after_s)),))


def internal_error(message: str = "etcdserver: leader changed") -> ProxyRefusal:
    return ProxyRefusal(500, f"Internal Server Error: \"{{path}}\": {message}\n")


class RequestRecord(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    status: int
    content_type: str = ""      # of the request body (writes): "application/apply-patch+yaml"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # without it every answer waits ~40 ms for a delayed ACK
    server_version = "railiance-kubeapi-standin"
    timeout = 60
    standin: "KubeAPIStandIn"  # set on the per-server subclass

    def setup(self) -> None:
        super().setup()
        self.standin._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.standin._connection_closed(self.connection)

    def _serve(self) -> None:
        body = b""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # a chunked body we do not parse: do not reuse the stream
        elif int(self.headers.get("Content-Length") or 0):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        request_type = self.headers.get("Content-Type", "") if self.command not in ("GET", "HEAD") else ""
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if self.standin.latency_s:
            time.sleep(self.standin.latency_s)
        refusal = self.standin._proxy_refusal(url.path)
        if refusal is not None:  # the API server's own answer on the service proxy: the backend is not asked
            payload = refusal.body.replace("{path}", url.path).encode()
            self.standin._record(RequestRecord(self.command, url.path, query, refusal.status, request_type))
            self.send_response(refusal.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in refusal.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        fault = self.standin.fault
        if fault in ("repeat-continue", "endless-continue"):
            query.pop("continue", None)  # the fake token means nothing to the store: serve page one again
        try:
            with self.standin._api_lock:  # an apply and the reads it changes do not interleave
                code, body = self.standin.api.handle(self.command, url.path, query, self.headers.get("Accept", ""),
                                                     body=body, content_type=request_type)
        except Exception as exc:  # a stand-in bug must surface as a 500 Status, not a dropped connection
            code, body = 500, status.status(500, f"Internal error occurred: {exc!r}", "InternalError")
        if fault in ("repeat-continue", "endless-continue") and code == 200 and isinstance(body, dict) \
                and "items" in body:
            token = "loop" if fault == "repeat-continue" else f"page-{self.standin._next_page()}"
            body = {**body, "metadata": {**body.get("metadata", {}), "continue": token}}
        if isinstance(body, ProxiedAnswer):  # a Service's backend, through the proxy
            payload, content_type = body.body.encode(), body.content_type
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(body, separators=(",", ":")).encode(), "application/json"
        self.standin._record(RequestRecord(self.command, url.path, query, code, request_type))
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault == "trickle-body":
            self.wfile.flush()
            for offset in range(len(payload)):  # ends when the client gives up (broken pipe)
                time.sleep(self.standin.trickle_interval_s)
                self.wfile.write(payload[offset:offset + 1])
                self.wfile.flush()
            return
        self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        pass  # the request log is the record; stderr noise would only clutter test output


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # kubectl opens ~16 discovery connections at once; 5 would drop SYNs
    daemon_threads = True


class KubeAPIStandIn:
    """A read-only Kubernetes API serving ``objects`` on ``host:port`` (0: a free port)."""

    def __init__(self, objects: list[dict], *, host: str = "127.0.0.1", port: int = 0,
                 forbidden: Iterable[tuple[str, str, str]] = frozenset(), latency_s: float = 0.0,
                 fail_status: int | None = None, user: str = DEFAULT_USER,
                 server_version: str = DEFAULT_SERVER_VERSION, tls: tuple[str, str] | None = None,
                 fault: str | None = None, trickle_interval_s: float = 2.0,
                 proxy_refusals: Iterable[ProxyRefusal] = ()):
        self.proxy_refusals = list(proxy_refusals)  # answered in order to service-proxy GETs, then the backend
        if fault not in FAULTS:
            raise ValueError(f"fault {fault!r}: expected one of {sorted(f for f in FAULTS if f)}")
        self.fault, self.trickle_interval_s = fault, trickle_interval_s
        self._pages = 0
        self.api = KubeAPI(objects, forbidden=forbidden, fail_status=fail_status, user=user,
                           server_version=server_version)
        self._api_options = {"forbidden": forbidden, "fail_status": fail_status, "user": user,
                             "server_version": server_version}
        self.host, self.port = host, port
        self.tls = tls  # (certificate file, key file): serve HTTPS, as a real apiserver (in-cluster) does
        self.latency_s = latency_s
        self.request_log: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._api_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def replace_objects(self, objects: list[dict]) -> None:
        """Serve ``objects`` from now on (a cluster whose state changes while the suite reads it: a
        converge settling, a flapping workload). Requests already answered keep what they got."""
        api = KubeAPI(objects, **self._api_options)
        with self._api_lock:
            self.api = api

    @classmethod
    def from_dump(cls, paths, **kwargs) -> "KubeAPIStandIn":
        return cls(load_dump(paths), **kwargs)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> "KubeAPIStandIn":
        handler = type("StandInHandler", (_Handler,), {"standin": self})
        self._server = _Server((self.host, self.port), handler)
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"kubeapi-standin-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop kept-alive connections and join the server thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> "KubeAPIStandIn":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _proxy_refusal(self, path: str) -> ProxyRefusal | None:
        parts = [p for p in path.split("/") if p]
        if not (parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 7 and parts[4] == "services"
                and parts[6] == "proxy"):
            return None
        with self._lock:
            return self.proxy_refusals.pop(0) if self.proxy_refusals else None

    def _next_page(self) -> int:
        with self._lock:
            self._pages += 1
            return self._pages

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.request_log.append(record)

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def requests(self, method: str | None = None) -> list[RequestRecord]:
        """A snapshot of the request log, optionally only one method's requests."""
        with self._lock:
            return [r for r in self.request_log if method is None or r.method == method]

    def kubeconfig(self, context: str = "railiance-testbed", namespace: str = "default") -> dict:
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": f"{context}-user", "user": {"token": PLACEHOLDER_TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-user",
                                                       "namespace": namespace}}],
        }

    def write_kubeconfig(self, path: str | os.PathLike, context: str = "railiance-testbed",
                         namespace: str = "default") -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(context, namespace), sort_keys=False))
        path.chmod(0o600)
        return path
