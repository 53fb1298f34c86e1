"""Read the cluster through the Kubernetes API, once: one cached LIST per kind, only when asked.

``ClusterSnapshot(ClusterAccess(kubeconfig, context)).list("deployments", namespace="gitea")`` ->
plain dicts as ``kubectl get -o json`` gives them; ``get`` one object by name (None when absent);
``proxy_get`` a Service's HTTP answer through the API server's service proxy (``ProxyAnswer``).
``ClusterSnapshot.from_objects(objs)`` is the same view over plain dicts, with no API server.
Errors: every failure (unreachable, timeout, 403, an unknown CRD) is kept and raised as
``ClusterUnavailable`` to the reads that needed it. Access is kubectl's (kubeconfig, context, or
the in-cluster service account); why it is read this way: docs/architecture.md.
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
from railiance_conformance.probes.api_kinds import API_KINDS, SERVICE_PROXY, Kind
from railiance_conformance.probes.api_responses import (
    api_reason,
    api_status,
    apiserver_answer,
    read_body,
    retry_after,
    short,
)


class ClusterUnavailable(FactUnavailable):
    """A kind or object could not be read; the message says why (and which RBAC rule is missing)."""




@dataclass(frozen=True, slots=True)
class ProxyAnswer:
    """What a Service's backend answered through the API server's proxy: HTTP status, content type
    and body (text, at most ``PROXY_BODY_LIMIT`` bytes read). The backend's own error answers (Gitea's
    424 when a health check fails) are answers too; the API server's refusals are ClusterUnavailable."""

    status: int
    content_type: str
    body: str


Objects = list[dict]   # plain API objects, as the items of ``kubectl get -o json``
Query = list[tuple[str, Any]]   # a request's query parameters, in order
PROXY_BODY_LIMIT = 1 << 20
PROXY_ATTEMPTS = 4   # a throttled (429) proxy GET is tried at most this often, Retry-After apart
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
                 proxied: Proxied | None = None):
        self.access = access
        self._lists: dict[str, list[dict] | ClusterUnavailable] = {}  # "kind?selector" -> items
        self._gets: dict[tuple[str, str, str], dict | None | ClusterUnavailable] = {}
        self._proxied = proxied  # from_objects: {(namespace, service, path): ProxyAnswer} or such a function
        self._lock = threading.RLock()
        self.requests = 0
        self.listed: list[str] = []      # "kind?selector" in the order they were first listed
        self.name = name
        self._client: Any = None  # kubernetes.client.ApiClient
        self._objects = objects
        self._setup_error: ClusterUnavailable | None = None
        if objects is not None:
            return
        try:
            self._client, self.name = access.client()
        except Exception as exc:  # noqa: BLE001 - any config problem is a could-not-verify
            why = str(exc) if isinstance(exc, ClusterUnavailable) else short(exc)
            self._setup_error = ClusterUnavailable(f"no usable cluster configuration: {why}")

    @classmethod
    def from_objects(cls, objects: list[dict], *, name: str = "objects",
                     proxied: Proxied | None = None) -> "ClusterSnapshot":
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
            for list_key in [k for k in self._lists if k.split("?", 1)[0] in kinds]:
                del self._lists[list_key]
            for get_key in [k for k in self._gets if k[0] in kinds]:
                del self._gets[get_key]

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
        api = self._api_client()
        from kubernetes.client.exceptions import ApiException

        url_path = f"/api/v1/namespaces/{namespace}/services/{service}/proxy/{path.lstrip('/')}"
        waited = 0.0
        for attempt in range(1, PROXY_ATTEMPTS + 1):
            self.requests += 1
            try:
                method, url, headers, _, _ = api.param_serialize(
                    "GET", url_path, header_params={"Accept": "application/json, */*"}, auth_settings=["BearerToken"])
                deadline = time.monotonic() + self.access.timeout_s
                response = api.call_api(method, url, header_params=headers,
                                                 _request_timeout=self.access.timeout_s)
                data = read_body(response.response, deadline, self.access.timeout_s)[:PROXY_BODY_LIMIT]
                content_type = response.getheader("Content-Type") or ""
            except ApiException as exc:  # pragma: no cover - call_api does not raise on status codes
                raise ClusterUnavailable(f"{what}: API error {exc.status}") from None
            except Exception as exc:  # noqa: BLE001 - connection refused, timeout, TLS
                raise ClusterUnavailable(f"API server unreachable for {what}: {short(exc)}") from None
            if response.status != 429:
                break
            # throttled by the API server (priority and fairness): wait as it asks, within the request budget
            pause = retry_after(response.getheader("Retry-After"))
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
            message = api_status(text, "json") or " ".join(text.split())[:200] or "no message"
            raise ClusterUnavailable(
                f"{what}: API error {response.status} {'Unauthorized' if response.status == 401 else 'Proxy Authentication Required'}"
                f": the suite's credentials were refused before the Service was asked (an expired token or "
                f"client certificate? check the kubeconfig's user): {message}")
        own = apiserver_answer(response.status, text, content_type)
        if own is not None:
            raise ClusterUnavailable(f"{what}: API error {response.status} from the API server or its proxy, not "
                                     f"the Service's answer: {own}")
        refusal = api_status(text, content_type)
        if response.status == 403:
            raise ClusterUnavailable(
                f"forbidden: {what}: {refusal or text[:200]} (RBAC: grant verb 'get' on resource 'services/proxy' "
                f"in API group '' in namespace {namespace!r}, resourceNames [{service!r}]: the name as the URL "
                f"writes it, scheme and port included)")
        if refusal is not None:
            raise ClusterUnavailable(f"{what}: API error {response.status} from the API server: {refusal}")
        return ProxyAnswer(response.status, content_type, text)

    def _api_client(self) -> Any:
        """The ``ApiClient`` to ask; the configuration's failure when there is none."""
        if self._setup_error is not None or self._client is None:
            raise self._setup_error or ClusterUnavailable("no usable cluster configuration")
        return self._client

    def _list_all(self, kind: Kind, label_selector: str) -> Objects:
        if self._objects is not None:
            self.requests += 1
            return [o for o in self._objects if _is(o, kind) and _selected(o, label_selector)]
        return self._list_pages(kind, label_selector)

    def _list_pages(self, kind: Kind, label_selector: str) -> Objects:
        """Every page of one LIST. A continue token seen before (the server loops) or more pages than
        ``page_budget`` ends it with ClusterUnavailable: a list that never ends is not a list."""
        items: Objects = []
        token = None
        seen: set[str] = set()
        pages = 0
        while True:
            if pages >= self.access.page_budget:
                raise ClusterUnavailable(
                    f"list {kind.name}: more than {self.access.page_budget} pages of {self.access.page_size} "
                    f"items (--api-page-budget); stopped reading so the run ends")
            pages += 1
            query: Query = [("limit", self.access.page_size)] + ([("continue", token)] if token else []) \
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
                 query: Query | None = None, missing_ok: bool = False) -> Any:
        if self._objects is not None:  # from_objects: a GET by name
            self.requests += 1
            name = path.rsplit("/", 1)[-1]
            return next((o for o in self._objects if _is(o, kind) and o["metadata"].get("name") == name
                         and (o["metadata"].get("namespace") or None) == (namespace if kind.namespaced else None)),
                        None)
        api = self._api_client()
        from kubernetes.client.exceptions import ApiException

        self.requests += 1
        try:
            method, url, headers, _, _ = api.param_serialize(
                "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"])
            deadline = time.monotonic() + self.access.timeout_s
            response = api.call_api(method, url, header_params=headers,
                                             _request_timeout=self.access.timeout_s)
            data = read_body(response.response, deadline, self.access.timeout_s)
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=response.reason,
                                   body=data.decode("utf-8", "replace"))
            return json.loads(data)
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise ClusterUnavailable(api_reason(exc, verb, kind, namespace)) from None
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, TLS, bad JSON
            raise ClusterUnavailable(f"API server unreachable for {verb} {kind.name}: {short(exc)}") from None


def _is(obj: dict, kind: Kind) -> bool:
    """Whether a plain object is of ``kind`` (its apiVersion's group and its Kind)."""
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return obj.get("kind") == kind.kind and group == kind.group


def _selected(obj: dict, label_selector: str) -> bool:
    """Equality-based label selector (``owner=helm,name=valkey``), as the API server applies it."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, _, v in (part.partition("=") for part in label_selector.split(",") if part))
