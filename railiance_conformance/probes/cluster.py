"""Read the cluster through the Kubernetes API once: one LIST per resource kind per run.

Access like kubectl: ``--kubeconfig``/``KUBECONFIG``/``~/.kube/config`` with ``--context``, or the
in-cluster service account. Lists are paged with ``limit``/``continue`` and cached for every
scenario; single objects (named Secrets) are fetched with GET and cached too. Any failure
(unreachable, timeout, 403, unknown CRD) is kept as the reason, raised as ``ClusterUnavailable``
to the controls that needed that kind; the others still run.
Example: ``snapshot.list("deployments", namespace="gitea")`` -> plain dicts as ``kubectl -o json``.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from railiance_conformance.probes.host_facts import FactUnavailable


class ClusterUnavailable(FactUnavailable):
    """A kind or object could not be read; the message says why (and which RBAC rule is missing)."""


@dataclass(frozen=True, slots=True)
class Kind:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def name(self) -> str:
        """``pods``, ``deployments``; CRDs by their full name: ``clusters.postgresql.cnpg.io``."""
        return f"{self.plural}.{self.group}" if "." in self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        return f"{base}/{self.plural}" + (f"/{name}" if name else "")


KINDS = {k.name: k for k in (
    Kind("", "v1", "namespaces", namespaced=False),
    Kind("", "v1", "pods"), Kind("", "v1", "services"), Kind("", "v1", "secrets"),
    Kind("", "v1", "persistentvolumeclaims"),
    Kind("apps", "v1", "deployments"), Kind("apps", "v1", "statefulsets"), Kind("apps", "v1", "daemonsets"),
    Kind("postgresql.cnpg.io", "v1", "clusters"), Kind("postgresql.cnpg.io", "v1", "backups"),
    # read with GET only when a Cluster names its image through imageCatalogRef
    Kind("postgresql.cnpg.io", "v1", "imagecatalogs"),
    Kind("postgresql.cnpg.io", "v1", "clusterimagecatalogs", namespaced=False),
)}


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    """How to reach the API server; ``None`` fields mean "as kubectl would decide"."""

    kubeconfig: str | None = None
    context: str | None = None
    timeout_s: float = 10.0      # one request, in total: connect, headers and the whole body
    page_size: int = 500
    page_budget: int = 200       # most pages of one LIST; past it the kind is an error

    def configured(self) -> bool:
        return bool(self.kubeconfig or os.environ.get("KUBECONFIG") or self.context
                    or os.environ.get("KUBERNETES_SERVICE_HOST")
                    or Path("~/.kube/config").expanduser().exists())

    def client(self):
        """An ``ApiClient`` of the official client, and a name for the cluster target."""
        from kubernetes import client, config

        if self.kubeconfig or os.environ.get("KUBECONFIG") or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            path = self.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
            contexts, active = config.list_kube_config_contexts(config_file=path)
            context = self.context or active["name"]
            configuration = client.Configuration()
            config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
            name = context
        else:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            name = "in-cluster"
        configuration.retries = 0  # one request is one request: errors are findings, not retries
        return client.ApiClient(configuration), name


class ClusterSnapshot:
    """Lazily listed, cached view of the cluster; counts its requests (``requests``)."""

    def __init__(self, access: ClusterAccess):
        self.access = access
        self._lists: dict[str, list[dict] | ClusterUnavailable] = {}  # "kind?selector" -> items
        self._gets: dict[tuple[str, str, str], dict | None | ClusterUnavailable] = {}
        self._lock = threading.RLock()
        self.requests = 0
        self.name = "cluster"
        self._client = None
        self._setup_error: ClusterUnavailable | None = None
        try:
            self._client, self.name = access.client()
        except Exception as exc:  # noqa: BLE001 - any config problem is a could-not-verify
            self._setup_error = ClusterUnavailable(f"no usable cluster configuration: {_short(exc)}")

    def list(self, kind: str, *, namespace: str | None = None, label_selector: str = "") -> list[dict]:
        """Every object of ``kind`` (one cached cluster-wide LIST per kind and selector), optionally
        of one namespace. Secrets are only ever listed with a selector (Helm's ``owner=helm``)."""
        key = f"{kind}?{label_selector}"
        with self._lock:
            if key not in self._lists:
                try:
                    self._lists[key] = self._list_all(KINDS[kind], label_selector)
                except ClusterUnavailable as exc:
                    self._lists[key] = exc
            items = self._lists[key]
        if isinstance(items, ClusterUnavailable):
            raise items
        return [o for o in items if namespace is None or o["metadata"].get("namespace") == namespace]

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """One object by name (GET, cached); None when it does not exist."""
        key = (kind, namespace, name)
        with self._lock:
            if key not in self._gets:
                try:
                    self._gets[key] = self._request(KINDS[kind].path(namespace, name), verb="get", kind=KINDS[kind],
                                                    namespace=namespace, missing_ok=True)
                except ClusterUnavailable as exc:
                    self._gets[key] = exc
            found = self._gets[key]
        if isinstance(found, ClusterUnavailable):
            raise found
        return found

    def _list_all(self, kind: Kind, label_selector: str) -> list[dict]:
        """Every page of one LIST. A continue token seen before (the server loops) or more pages than
        ``page_budget`` ends it with ClusterUnavailable: a list that never ends is not a list."""
        items: list[dict] = []
        token = None
        seen: set[str] = set()
        pages = 0
        while True:
            if pages >= self.access.page_budget:
                raise ClusterUnavailable(
                    f"list {kind.name}: more than {self.access.page_budget} pages of {self.access.page_size} "
                    f"items (--api-page-budget); stopped reading so the run ends")
            pages += 1
            query = [("limit", self.access.page_size)] + ([("continue", token)] if token else []) \
                + ([("labelSelector", label_selector)] if label_selector else [])
            page = self._request(kind.path(), verb="list", kind=kind, query=query)
            for item in page.get("items", []):
                item.setdefault("kind", page.get("kind", "").removesuffix("List"))
                items.append(item)
            token = page.get("metadata", {}).get("continue")
            if not token:
                return items
            if token in seen:
                raise ClusterUnavailable(
                    f"list {kind.name}: the API server repeated a continue token (paging would never end); "
                    f"stopped after {pages} pages")
            seen.add(token)

    def _request(self, path: str, *, verb: str, kind: Kind, namespace: str | None = None,
                 query: list | None = None, missing_ok: bool = False) -> Any:
        if self._setup_error:
            raise self._setup_error
        from kubernetes.client.exceptions import ApiException

        self.requests += 1
        try:
            method, url, headers, _, _ = self._client.param_serialize(
                "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"])
            deadline = time.monotonic() + self.access.timeout_s
            response = self._client.call_api(method, url, header_params=headers,
                                             _request_timeout=self.access.timeout_s)
            data = _read_body(response.response, deadline, self.access.timeout_s)
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=response.reason,
                                   body=data.decode("utf-8", "replace"))
            return json.loads(data)
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise ClusterUnavailable(_api_reason(exc, verb, kind, namespace)) from None
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, TLS, bad JSON
            raise ClusterUnavailable(f"API server unreachable for {verb} {kind.name}: {_short(exc)}") from None


class BodyTimeout(TimeoutError):
    """The whole response body did not arrive within the request's timeout."""


def _read_body(raw, deadline: float, timeout_s: float) -> bytes:
    """Read a urllib3 response body against a total ``deadline`` (``time.monotonic()``): each
    receive may wait only for the time left, so a body trickled a byte at a time still ends at
    the deadline (urllib3's read timeout is per receive). The connection is dropped on timeout."""
    chunks = []
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BodyTimeout(f"timed out: the response body was not complete within {timeout_s:g} s "
                                  f"({sum(map(len, chunks))} bytes arrived)")
            if sock is not None:
                sock.settimeout(left)
            chunk = raw.read1(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except BaseException:
        raw.drop_connection() if hasattr(raw, "drop_connection") else raw.close()
        raise
    finally:
        raw.release_conn()


def _api_reason(exc, verb: str, kind: Kind, namespace: str | None) -> str:
    try:
        message = json.loads(exc.body).get("message", "")
    except (TypeError, ValueError):
        message = exc.reason or ""
    scope = f"in namespace {namespace!r}" if namespace else "cluster-wide"
    if exc.status == 403:
        return (f"forbidden: {message} (RBAC: grant verb {verb!r} on resource {kind.plural!r} in API group "
                f"{kind.group!r} {scope})")
    if exc.status == 404:
        return f"the API server does not serve {kind.name} ({kind.group or 'core'}/{kind.version}): " \
               f"is the CRD installed? ({message})"
    return f"API error {exc.status} for {verb} {kind.name}: {message or exc.reason}"


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    detail = text[-1] if text else ""
    if "timed out" in str(exc).lower():
        return f"timed out ({detail[:200]})"
    return f"{type(exc).__name__}: {detail[:300]}"
