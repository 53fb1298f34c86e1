"""Endpoints compared as their clients resolve them, not as strings.

Example: ``postgres_endpoint("gitea-db-rw.databases", client_namespace="gitea")``
-> ``Endpoint("postgres", "gitea-db-rw.databases.svc.cluster.local", 5432)``;
``redis_endpoint("network=tcp,addr=valkey.platform:6379,password=x,db=0")``
-> ``Endpoint("redis", "valkey.platform.svc.cluster.local", 6379, "0")`` (no credentials kept);
``git_remote("git@gitea-local:coulomb/r.git")`` -> ``GitRemote("ssh", "git", "gitea-local", None, "/coulomb/r.git")``.

Rules and their sources:

* **Service DNS** (Kubernetes "DNS for Services and Pods"; a Pod's resolv.conf has
  ``search <ns>.svc.<domain> svc.<domain> <domain>`` and ``ndots:5``): ``svc`` alone is
  ``svc.<client ns>.svc.<domain>``; ``svc.ns`` and ``svc.ns.svc`` complete to
  ``svc.ns.svc.<domain>``; names are case-insensitive and a trailing dot marks the same FQDN.
  Other names (IPs, external hosts) are kept as written (lower-cased).
* **PostgreSQL** (Gitea ``[database] HOST``): Gitea writes ``postgres://USER:PASS@HOST/NAME``
  for lib/pq (models/db, ``getPostgreSQLConnectionString``); a HOST without a port gets
  libpq's default 5432; a HOST starting with ``/`` is a unix-socket directory.
* **Redis/Valkey** (Gitea ``[cache] HOST``, ``[session] PROVIDER_CONFIG``, ``[queue] CONN_STR``):
  Gitea's ``nosql.ToRedisURI`` turns the old ``network=tcp,addr=h:p,password=…,db=N`` form (comma
  or blank separated) into ``redis://…``, defaulting to ``redis://127.0.0.1:6379/0``; then
  ``getRedisOptions`` reads ``?db=``/``?database=`` and a ``/N`` path overrides it. No default port
  is added to an address given without one (go-redis dials the address as written and fails:
  ``missing port in address``), so such an endpoint has ``port=None``.
* **git remotes** (git-clone(1) "GIT URLS"): ``[user@]host:path`` (scp-like, no ``://``, the
  first colon before any slash) is ssh with a path relative to the login's home, which a
  forge's SSH front end (Gitea) serves as ``/path``; ``ssh://[user@]host[:port]/path``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from railiance_conformance.resources.go_url import GoURLError, go_url_parse

CLUSTER_DOMAIN = "cluster.local"
POSTGRES_PORT = 5432


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects: ``scheme://host:port/database``; ``port`` None when none applies."""

    scheme: str
    host: str
    port: int | None = None
    database: str | None = None

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        path = f"/{self.database}" if self.database not in (None, "") else ""
        return f"{self.scheme}://{self.host}{port}{path}"


def service_fqdn(host: str, *, client_namespace: str | None = None, cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """The name a Pod in ``client_namespace`` resolves ``host`` to (see module docstring)."""
    name = host.strip().lower().rstrip(".")
    domain = cluster_domain.lower().strip(".")
    if not name or _is_ip(name) or name.endswith("." + domain):
        return name
    labels = name.split(".")
    if len(labels) == 1 and client_namespace:
        return f"{name}.{client_namespace.lower()}.svc.{domain}"
    if len(labels) == 2:
        return f"{name}.svc.{domain}"
    if len(labels) == 3 and labels[2] == "svc":
        return f"{name}.{domain}"
    return name


def _is_ip(name: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+", name)) or ":" in name


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host:5432`` -> (host, 5432); ``[::1]:6379`` -> ("::1", 6379); ``host`` -> (host, None).

    A port that is not a number is a ValueError naming it.
    """
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if port == "":
        return host, None
    if not port.isdigit():
        raise ValueError(f"port {port!r} of {text!r} is not a number")
    return host, int(port)


def postgres_endpoint(host_setting: str, *, database: str | None = None, client_namespace: str | None = None,
                      cluster_domain: str = CLUSTER_DOMAIN) -> Endpoint:
    """Gitea's ``[database] HOST`` as lib/pq connects to it (default port 5432; ``/dir`` is a socket)."""
    value = (host_setting or "").strip()
    if value.startswith("/"):
        socket_dir, _, socket_port = value.partition(":")
        return Endpoint("postgres+unix", socket_dir, int(socket_port) if socket_port.isdigit() else POSTGRES_PORT,
                        database)
    host, port = split_host_port(value or "localhost")
    return Endpoint("postgres", service_fqdn(host, client_namespace=client_namespace, cluster_domain=cluster_domain),
                    POSTGRES_PORT if port is None else port, database)


def redis_url_rejected(connection: str) -> str | None:
    """Why Gitea's ``ToRedisURI`` does not take ``connection`` as a URL although it looks like one
    (``redis…://``): Go's ``url.Parse`` fails (``go_url.go_url_parse``; e.g. a ``#`` in the password cuts
    the URL), so Gitea falls back to ``redis://127.0.0.1:6379/0`` plus any ``key=value`` fields. None
    when the URL is taken, or when the text is not URL-like at all (the old key=value form)."""
    text = connection.strip()
    if not re.match(r"^redis[a-z+]*://", text, re.IGNORECASE):
        return None
    try:
        uri = go_url_parse(text)
    except GoURLError as exc:
        return str(exc)
    return None if uri.scheme.startswith("redis") else "the scheme is not redis"


def to_redis_uri(connection: str) -> str:
    """Gitea's ``nosql.ToRedisURI`` (modules/nosql/redis.go): a URL that Go's ``url.Parse`` accepts with a
    ``redis…`` scheme unchanged; anything else, including a URL that Parse rejects, becomes the default
    ``redis://127.0.0.1:6379/0`` with the old ``key=value`` fields (comma or blank separated) applied."""
    text = connection.strip()
    try:
        if go_url_parse(text).scheme.startswith("redis"):
            return text
    except GoURLError:
        pass
    scheme, host, user, password, db, network = "redis", "127.0.0.1:6379", "", None, "0", "tcp"
    query: list[tuple[str, str]] = []
    fields = text.split()
    if len(fields) == 1:
        fields = text.split(",")
    for field in fields:
        if "=" not in field:
            continue
        key, value = field.split("=", 1)
        key = key.lower()
        if key == "network":
            scheme = "redis+socket" if value == "unix" else scheme
            network = value
        elif key == "addrs":
            host = value
            if "," in value and network == "tcp":
                scheme = "redis+cluster"
        elif key == "addr":
            host = value
        elif key == "password":
            password = value
        elif key == "username":
            user = value
        elif key == "db":
            db = value
        else:
            query.append((key, value))
    userinfo = f"{user}:{password}@" if password is not None else (f"{user}@" if user else "")
    rest = "&".join(f"{k}={v}" for k, v in query)
    return f"{scheme}://{userinfo}{host}/{db}" + (f"?{rest}" if rest else "")


def redis_endpoint(connection: str, *, client_namespace: str | None = None,
                   cluster_domain: str = CLUSTER_DOMAIN) -> Endpoint:
    """Where Gitea's redis client connects for ``connection`` (credentials dropped).

    The first address of a multi-address (cluster/sentinel) URL is the host; ``port`` is None
    when the address has none (the client cannot connect).
    """
    uri = to_redis_uri(connection)
    try:
        parsed = go_url_parse(uri)
    except GoURLError:
        parsed = None
    if parsed is not None and parsed.scheme != "redis+socket":  # Go's fields: the host after the last '@'
        uri = f"{parsed.scheme}://{parsed.host}{parsed.path}" + (f"?{parsed.raw_query}" if parsed.raw_query else "")
    scheme, rest = uri.split("://", 1)
    netloc, _, tail = rest.partition("/")
    if "?" in netloc:  # redis://host?db=1 (no path)
        netloc, _, query_only = netloc.partition("?")
        tail = "?" + query_only
    path, _, query = tail.partition("?")
    hostlist = netloc.rsplit("@", 1)[-1]
    db = 0
    for key, values in parse_qs(query).items():
        if key.lower().replace("_", "").replace("-", "") in ("db", "database") and values[0].lstrip("-").isdigit():
            db = int(values[0])
    if path and path.lstrip("-").isdigit():  # strconv.Atoi(uri.Path[1:]): a /N path overrides ?db=
        db = int(path)
    if scheme.lower() == "redis+socket":
        return Endpoint(scheme.lower(), "/" + path if path else hostlist, None, str(db))
    first = hostlist.split(",")[0]
    host, port = split_host_port(first) if first else ("", None)
    return Endpoint(scheme.lower(), service_fqdn(host, client_namespace=client_namespace,
                                                 cluster_domain=cluster_domain), port, str(db))


@dataclass(frozen=True)
class GitRemote:
    """A git URL as git's transport reads it; ``port`` None means ssh's own config decides."""

    scheme: str
    user: str | None
    host: str
    port: int | None
    path: str


def git_remote(url: str) -> GitRemote:
    """Parse a remote URL (git-clone(1) GIT URLS); a local path is ``scheme="file"``."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        scheme = "ssh" if scheme in ("git+ssh", "ssh+git") else scheme
        try:
            port = parts.port
        except ValueError:
            port = None
        return GitRemote(scheme, parts.username, (parts.hostname or ""), port, parts.path or "/")
    scp = re.match(r"^(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+):(?P<path>.*)$", text)
    if scp and not re.match(r"^[A-Za-z]:[\\/]", text):
        path = scp["path"]
        return GitRemote("ssh", scp["user"], scp["host"].strip("[]"), None, path if path.startswith("/") else "/" + path)
    return GitRemote("file", None, "", None, text)
