"""Read the cluster through the Kubernetes API once: one LIST per resource kind per run.

Nothing is read until a control asks (lazy): a run selecting ``-m T03`` LISTs only the kinds
T03's check kinds declare in ``reads``. ``ClusterSnapshot.from_objects(objs)`` is the same view
over plain dicts (a dump, a test fixture), with no API server.
Access like kubectl: ``--kubeconfig``/``KUBECONFIG``/``~/.kube/config`` with ``--context``, or the
in-cluster service account. Lists are paged with ``limit``/``continue`` and cached for every
scenario; single objects (named Secrets) are fetched with GET and cached too. Any failure
(unreachable, timeout, 403, unknown CRD) is kept as the reason, raised as ``ClusterUnavailable``
to the controls that needed that kind; the others still run.
Example: ``snapshot.list("deployments", namespace="gitea")`` -> plain dicts as ``kubectl -o json``.

One more read, GET only: a Service's HTTP endpoint through the API server's service proxy
(``snapshot.proxy_get("gitea", "http:gitea-http:3000", "/api/healthz")`` -> ``ProxyAnswer``),
authorised as ``get`` on ``services/proxy`` for that Service; cached and counted like the others
(its kind name for ``forget`` and ``reads`` is ``services/proxy``).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from railiance_conformance.finding import FactUnavailable


class ClusterUnavailable(FactUnavailable):
    """A kind or object could not be read; the message says why (and which RBAC rule is missing)."""


@dataclass(frozen=True, slots=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str = ""             # the API Kind: "Deployment", "Cluster"
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


API_KINDS = {k.name: k for k in (
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("", "v1", "pods", "Pod"), Kind("", "v1", "services", "Service"), Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    # Helm's configmap storage driver (HELM_DRIVER=configmap): listed only with the selector owner=helm
    Kind("", "v1", "configmaps", "ConfigMap"),
    Kind("apps", "v1", "deployments", "Deployment"), Kind("apps", "v1", "statefulsets", "StatefulSet"),
    Kind("apps", "v1", "daemonsets", "DaemonSet"),
    Kind("postgresql.cnpg.io", "v1", "clusters", "Cluster"), Kind("postgresql.cnpg.io", "v1", "backups", "Backup"),
    # read with GET only when a Cluster names its image through imageCatalogRef
    Kind("postgresql.cnpg.io", "v1", "imagecatalogs", "ImageCatalog"),
    Kind("postgresql.cnpg.io", "v1", "clusterimagecatalogs", "ClusterImageCatalog", namespaced=False),
)}
BY_KIND = {k.kind: k for k in API_KINDS.values()}   # "Deployment" -> Kind(apps, v1, deployments)
SERVICE_PROXY = "services/proxy"   # the name ``reads`` and ``forget`` use for proxied GETs


@dataclass(frozen=True, slots=True)
class ProxyAnswer:
    """What a Service's backend answered through the API server's proxy: HTTP status, content type
    and body (text, at most ``PROXY_BODY_LIMIT`` bytes read). The backend's own error answers (Gitea's
    424 when a health check fails) are answers too; the API server's refusals are ClusterUnavailable."""

    status: int
    content_type: str
    body: str


PROXY_BODY_LIMIT = 1 << 20
# what from_objects' service proxy answers: by (namespace, service, path), or a function of them
Proxied = Mapping[tuple[str, str, str], ProxyAnswer] | Callable[[str, str, str], "ProxyAnswer | None"]


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

        from railiance_conformance.probes import exec_plugin

        if self.kubeconfig or os.environ.get("KUBECONFIG") or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            path = self.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
            contexts, active = config.list_kube_config_contexts(config_file=path)
            context = self.context or active["name"]
            configuration = client.Configuration()
            # an exec credential plugin is bounded by the request timeout; its failure is the cause, not a log line
            exec_plugin.install(self.timeout_s)
            with exec_plugin.collect_failures() as failures, exec_plugin.bounded_oidc_refresh(self.timeout_s):
                config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
            if failures:
                raise ClusterUnavailable(failures[0])
            name = context
        else:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            name = "in-cluster"
        configuration.retries = 0  # one request is one request: errors are findings, not retries
        return client.ApiClient(configuration), name


class ClusterSnapshot:
    """Lazily listed, cached view of the cluster; counts its requests (``requests``) and the kinds it
    listed (``listed``)."""

    def __init__(self, access: ClusterAccess, *, objects: list[dict] | None = None, name: str = "cluster",
                 proxied: "Proxied | None" = None):
        self.access = access
        self._lists: dict[str, list[dict] | ClusterUnavailable] = {}  # "kind?selector" -> items
        self._gets: dict[tuple[str, str, str], dict | None | ClusterUnavailable] = {}
        self._proxied = proxied  # from_objects: {(namespace, service, path): ProxyAnswer} or such a function
        self._lock = threading.RLock()
        self.requests = 0
        self.listed: list[str] = []      # "kind?selector" in the order they were first listed
        self.name = name
        self._client = None
        self._objects = objects
        self._setup_error: ClusterUnavailable | None = None
        if objects is not None:
            return
        try:
            self._client, self.name = access.client()
        except Exception as exc:  # noqa: BLE001 - any config problem is a could-not-verify
            why = str(exc) if isinstance(exc, ClusterUnavailable) else _short(exc)
            self._setup_error = ClusterUnavailable(f"no usable cluster configuration: {why}")

    @classmethod
    def from_objects(cls, objects: list[dict], *, name: str = "objects",
                     proxied: "Proxied | None" = None) -> "ClusterSnapshot":
        """The snapshot of plain objects (``kubectl get -o json`` items, a dump): no API server.

        ``ClusterSnapshot.from_objects([{"apiVersion": "apps/v1", "kind": "Deployment", ...}]).list("deployments")``
        -> that Deployment. Objects of kinds the suite does not read are ignored; a kind with no
        object lists as ``[]`` (as an installed CRD with no objects would). ``proxied`` holds what
        the service proxy answers: ``{("gitea", "http:gitea-http:3000", "/api/healthz"): ProxyAnswer(...)}``,
        or a function of (namespace, service, path) returning an answer (anything with status,
        content_type and body) or None; a GET of anything else is refused (ClusterUnavailable)."""
        return cls(ClusterAccess(), objects=list(objects), name=name, proxied=proxied)

    def forget(self, kinds: set[str] | list[str]) -> None:
        """Drop what was read of ``kinds`` (LISTs and GETs), so the next read asks the API again
        (settle's re-probe: one LIST per kind per attempt)."""
        with self._lock:
            for key in [k for k in self._lists if k.split("?", 1)[0] in kinds]:
                del self._lists[key]
            for key in [k for k in self._gets if k[0] in kinds]:
                del self._gets[key]

    def list(self, kind: str, *, namespace: str | None = None, label_selector: str = "") -> list[dict]:
        """Every object of ``kind`` (one cached cluster-wide LIST per kind and selector), optionally
        of one namespace. Secrets are only ever listed with a selector (Helm's ``owner=helm``)."""
        key = f"{kind}?{label_selector}"
        with self._lock:
            if key not in self._lists:
                self.listed.append(key)
                try:
                    self._lists[key] = self._list_all(API_KINDS[kind], label_selector)
                except ClusterUnavailable as exc:
                    self._lists[key] = exc
            items = self._lists[key]
        if isinstance(items, ClusterUnavailable):
            raise items
        return [o for o in items if namespace is None or o["metadata"].get("namespace") == namespace]

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """One object by name (GET, cached); None when it does not exist."""
        key = (kind, namespace, name)
        return self._cached_get(key, lambda: self._request(API_KINDS[kind].path(namespace, name), verb="get",
                                                           kind=API_KINDS[kind], namespace=namespace, missing_ok=True))

    def _cached_get(self, key: tuple, read) -> Any:
        """``read()`` once per key for the run (until ``forget``); a ClusterUnavailable is kept and re-raised."""
        with self._lock:
            if key not in self._gets:
                try:
                    self._gets[key] = read()
                except ClusterUnavailable as exc:
                    self._gets[key] = exc
            found = self._gets[key]
        if isinstance(found, ClusterUnavailable):
            raise found
        return found

    def proxy_get(self, namespace: str, service: str, path: str) -> ProxyAnswer:
        """``proxy_get("gitea", "http:gitea-http:3000", "/api/healthz")``: GET ``path`` of a Service
        through the API server (``/api/v1/namespaces/NS/services/SERVICE/proxy/PATH``; SERVICE is
        ``[scheme:]name[:port]`` as kubectl proxy names it). Cached per (namespace, service, path);
        the API server's refusals (403 with the RBAC rule to grant, 404 no such Service, 503 no
        endpoint) and an unreachable server raise ClusterUnavailable."""
        return self._cached_get((SERVICE_PROXY, namespace, f"{service}{path}"),
                                lambda: self._proxy(namespace, service, path))

    def _proxy(self, namespace: str, service: str, path: str) -> ProxyAnswer:
        what = f"GET {path} of Service {namespace}/{service} through the API server's service proxy"
        if self._objects is not None:
            self.requests += 1
            proxied = self._proxied
            answer = proxied(namespace, service, path) if callable(proxied) else (proxied or {}).get(
                (namespace, service, path))
            if answer is None:
                raise ClusterUnavailable(f"{what}: no such Service or path in the objects given")
            return answer
        if self._setup_error:
            raise self._setup_error
        from kubernetes.client.exceptions import ApiException

        url_path = f"/api/v1/namespaces/{namespace}/services/{service}/proxy/{path.lstrip('/')}"
        waited = 0.0
        for attempt in range(1, PROXY_ATTEMPTS + 1):
            self.requests += 1
            try:
                method, url, headers, _, _ = self._client.param_serialize(
                    "GET", url_path, header_params={"Accept": "application/json, */*"}, auth_settings=["BearerToken"])
                deadline = time.monotonic() + self.access.timeout_s
                response = self._client.call_api(method, url, header_params=headers,
                                                 _request_timeout=self.access.timeout_s)
                data = _read_body(response.response, deadline, self.access.timeout_s)[:PROXY_BODY_LIMIT]
                content_type = response.getheader("Content-Type") or ""
            except ApiException as exc:  # pragma: no cover - call_api does not raise on status codes
                raise ClusterUnavailable(f"{what}: API error {exc.status}") from None
            except Exception as exc:  # noqa: BLE001 - connection refused, timeout, TLS
                raise ClusterUnavailable(f"API server unreachable for {what}: {_short(exc)}") from None
            if response.status != 429:
                break
            # throttled by the API server (priority and fairness): wait as it asks, within the request budget
            pause = _retry_after(response.getheader("Retry-After"))
            if attempt == PROXY_ATTEMPTS or waited + pause > self.access.timeout_s:
                raise ClusterUnavailable(
                    f"{what}: API error 429 Too Many Requests from the API server (throttled) after {attempt} "
                    f"attempt{'s' * (attempt != 1)}; Retry-After {pause:g} s would pass the request budget "
                    f"(--api-timeout {self.access.timeout_s:g} s): the backend was not asked")
            time.sleep(pause)
            waited += pause
        text = data.decode("utf-8", "replace")
        if response.status in (401, 407):
            # kube-apiserver authenticates every request before its proxy forwards it (and then drops the
            # Authorization header: apiserver/pkg/endpoints/filters/authentication.go), so a 401 (or a
            # forward proxy's 407) is a refusal of the suite's credentials, whatever the body's type
            message = _api_status(text, "json") or " ".join(text.split())[:200] or "no message"
            raise ClusterUnavailable(
                f"{what}: API error {response.status} {'Unauthorized' if response.status == 401 else 'Proxy Authentication Required'}"
                f": the suite's credentials were refused before the Service was asked (an expired token or "
                f"client certificate? check the kubeconfig's user): {message}")
        own = _apiserver_answer(response.status, text, content_type)
        if own is not None:
            raise ClusterUnavailable(f"{what}: API error {response.status} from the API server or its proxy, not "
                                     f"the Service's answer: {own}")
        refusal = _api_status(text, content_type)
        if response.status == 403:
            raise ClusterUnavailable(
                f"forbidden: {what}: {refusal or text[:200]} (RBAC: grant verb 'get' on resource 'services/proxy' "
                f"in API group '' in namespace {namespace!r}, resourceNames [{service!r}]: the name as the URL "
                f"writes it, scheme and port included)")
        if refusal is not None:
            raise ClusterUnavailable(f"{what}: API error {response.status} from the API server: {refusal}")
        return ProxyAnswer(response.status, content_type, text)

    def _list_all(self, kind: Kind, label_selector: str) -> list[dict]:
        if self._objects is not None:
            self.requests += 1
            return [o for o in self._objects if _is(o, kind) and _selected(o, label_selector)]
        return self._list_pages(kind, label_selector)

    def _list_pages(self, kind: Kind, label_selector: str) -> list[dict]:
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
        if self._objects is not None:  # from_objects: a GET by name
            self.requests += 1
            name = path.rsplit("/", 1)[-1]
            return next((o for o in self._objects if _is(o, kind) and o["metadata"].get("name") == name
                         and (o["metadata"].get("namespace") or None) == (namespace if kind.namespaced else None)),
                        None)
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


def _is(obj: dict, kind: Kind) -> bool:
    """Whether a plain object is of ``kind`` (its apiVersion's group and its Kind)."""
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return obj.get("kind") == kind.kind and group == kind.group


def _selected(obj: dict, label_selector: str) -> bool:
    """Equality-based label selector (``owner=helm,name=valkey``), as the API server applies it."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, _, v in (part.partition("=") for part in label_selector.split(",") if part))


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


PROXY_ATTEMPTS = 4   # a throttled (429) proxy GET is tried at most this often, Retry-After apart


def _retry_after(value: str | None) -> float:
    """Seconds of a Retry-After header (RFC 9110 10.2.3: delay-seconds or an HTTP-date); 1 when absent."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(int(value.strip())))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return 1.0


# kube-apiserver's own plain-text answers (http.Error): responsewriters.InternalError "Internal Server
# Error: PATH: ERR", the proxy's "Error trying to reach service", and etcd/endpoint failures
_APISERVER_TEXT = ("internal server error:", "error trying to reach service", "etcdserver:", "no endpoints available",
                   "too many requests", "the server is currently unable to handle the request",
                   "service unavailable")


def _apiserver_answer(status: int, text: str, content_type: str) -> str | None:
    """The API server's (or its proxy's) own failure on a service-proxy GET, as text; None when the
    answer may be the backend's. A Status failure in any content type, a 429, and a 5xx whose body
    is not a JSON document (Gitea's health answer is JSON) are the API server's."""
    status_message = _api_status(text, "json")
    if status_message is not None and (status >= 500 or status == 429):
        return status_message
    if status == 429:
        return (text.strip().splitlines() or ["Too Many Requests"])[0][:200]
    if status >= 500:
        lowered = text.lower()
        try:
            json.loads(text)
            is_json = "json" in content_type
        except ValueError:
            is_json = False
        if not is_json or any(marker in lowered for marker in _APISERVER_TEXT):
            return " ".join(text.split())[:200] or f"HTTP {status} with an empty body"
    return None


def _api_status(text: str, content_type: str) -> str | None:
    """The message of a Kubernetes ``Status`` failure (the API server's own refusal), else None (the
    backend's answer, whatever its code)."""
    if "json" not in content_type:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("apiVersion") == "v1" \
            and body.get("status") == "Failure":
        return body.get("message") or body.get("reason") or "refused"
    return None


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
