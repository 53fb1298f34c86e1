"""The read-only Kubernetes API itself, free of HTTP: (method, path, query, Accept) -> (code, body).

    >>> api = KubeAPI(load_dump("dumps/conformant"))
    >>> api.handle("GET", "/apis/apps/v1/namespaces/gitea/deployments/gitea", {}, "application/json")
    (200, {'apiVersion': 'apps/v1', 'kind': 'Deployment', ...})

Served: discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>``,
``/apis/<g>/<v>``; aggregated-discovery requests get the legacy documents, which clients accept),
get and list of every resource (namespaced, across namespaces, cluster-scoped), the ``status``
subresource, label/field selectors, ``limit``/``continue`` paging and server-side Tables;
GETs through the service proxy answer what the dump declares for the Service (``proxy``).
Everything else answers a Kubernetes ``Status``: 404 unknown object or resource, 403 for the
``forbidden`` (verb, resource, namespace) triples, 405 for every write and for ``watch`` -- except the
writes the suite may send: server-side apply (``PATCH``, ``application/apply-patch+yaml``, with a
``fieldManager``) of a ClusterPolicyReport (``resources.APPLYABLE``), which is stored and served, and
DELETE of one (the publisher removes its stale reports). An apply is pruned and validated against its
CRD's openAPIV3Schema and refused past etcd's request size, as the apiserver does (``validation``).
Answers share nested data with the store: serialise them, do not mutate them.

``forbidden`` entries are ``(verb, resource, namespace)``: verb ``get``/``list``/``watch``/
``create``/... or ``*``; resource the plural (``secrets``) or ``plural.group``
(``clusters.postgresql.cnpg.io``) or ``*``; namespace a name, ``*`` (everywhere) or ``""``
(cluster scope only). A namespaced resource denied in any namespace is also denied across all
namespaces, as RBAC would (a cluster-wide grant would cover that namespace too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable
from urllib.parse import unquote

import yaml

from . import proxy, status, validation
from .resources import APPLYABLE, ResourceRegistry, ResourceType
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import ContinueError, ObjectStore
from .tables import to_table

DEFAULT_USER = "system:serviceaccount:conformance:railiance-conformance"
DEFAULT_SERVER_VERSION = "v1.30.6+k3s1"
WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class ResourceRequest:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch: bool


def version_info(git_version: str) -> dict:
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {"major": major, "minor": minor, "gitVersion": git_version,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2024-10-22T20:35:12Z", "goVersion": "go1.22.8", "compiler": "gc",
            "platform": "linux/amd64"}


def wants_table(accept: str) -> bool:
    return any("as=Table" in clause and "g=meta.k8s.io" in clause for clause in accept.split(","))


class KubeAPI:
    """Answers requests against a fixed set of objects; see the module docstring."""

    def __init__(self, objects: list[dict], *, forbidden: Iterable[tuple[str, str, str]] = (),
                 fail_status: int | None = None, user: str = DEFAULT_USER,
                 server_version: str = DEFAULT_SERVER_VERSION):
        objects, self.proxied = proxy.split_proxied(objects)
        self.registry = ResourceRegistry(objects)
        self.store = ObjectStore(objects, self.registry)
        self.forbidden = frozenset(forbidden)
        self.fail_status = fail_status
        self.user = user
        self.server_version = server_version

    def handle(self, method: str, path: str, query: dict[str, str], accept: str = "", *, body: bytes = b"",
               content_type: str = "") -> tuple[int, dict | str]:
        parts = [p for p in path.split("/") if p]
        found = self._discovery(parts)
        if found is not None:
            return (200, found) if method in ("GET", "HEAD") else (405, status.method_not_allowed())
        if parts[:1] == ["api"] and len(parts) <= 2 or parts[:1] == ["apis"] and len(parts) <= 3 \
                or parts[:1] == ["openapi"]:
            return 404, status.no_such_resource()  # unknown group/version; kubectl tolerates a missing openapi
        if self.fail_status:
            return self.fail_status, status.injected_failure(self.fail_status)
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 7 and parts[4] == "services" \
                and parts[6] == "proxy":
            # the apiserver decodes the path: the official client sends http%3Agitea-http%3A3000 and api%2Fhealthz
            return self._proxy(method, unquote(parts[3]), unquote(parts[5]), "/" + unquote("/".join(parts[7:])))
        request = self._resource_request(parts, query)
        if request is None:
            return 404, status.no_such_resource()
        verb = self._verb(method, request)
        if self._denied(verb, request):
            rtype = request.rtype
            return 403, status.forbidden(verb, rtype.plural, rtype.group, request.namespace, user=self.user,
                                         name=request.name or "")
        if method == "PATCH" and content_type.split(";")[0].strip() == APPLY_PATCH \
                and (request.rtype.group, request.rtype.plural) in APPLYABLE and request.name and not request.subresource:
            rtype = request.rtype
            if self.store.get(rtype, request.namespace, request.name) is None and self._denied("create", request):
                # an apply that creates is authorised as create as well (server-side-apply docs, RBAC)
                return 403, status.forbidden("create", rtype.plural, rtype.group, request.namespace, user=self.user,
                                             name=request.name)
            return self._apply(request, query, body)
        if method == "DELETE" and (request.rtype.group, request.rtype.plural) in APPLYABLE and request.name \
                and not request.subresource:
            return self._delete(request)
        if method not in ("GET", "HEAD"):
            return 405, status.method_not_allowed(f"{verb}: the Railiance stand-in API is read-only")
        if request.watch:
            return 405, status.method_not_allowed("watch is not served by the read-only stand-in")
        if request.name is not None:
            return self._get(request, accept, query)
        return self._list(request, accept, query)

    # --- routing ---------------------------------------------------------------------------
    def _discovery(self, parts: list[str]) -> dict | str | None:
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return "ok"
        if parts == ["version"]:
            return version_info(self.server_version)
        if parts == ["api"]:
            return self.registry.api_versions()
        if parts == ["api", "v1"]:
            return self.registry.api_resource_list("", "v1")
        if parts == ["apis"]:
            return self.registry.api_group_list()
        if len(parts) == 2 and parts[0] == "apis":
            return self.registry.api_group(parts[1])
        if len(parts) == 3 and parts[0] == "apis":
            return self.registry.api_resource_list(parts[1], parts[2])
        return None

    def _resource_request(self, parts: list[str], query: dict[str, str]) -> ResourceRequest | None:
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        watch = query.get("watch", "").lower() in ("true", "1")
        if rest[:1] == ["watch"]:
            watch, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and self.registry.find(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return None
        rtype = self.registry.find(group, version, rest[0])
        if rtype is None or (namespace is not None and not rtype.namespaced):
            return None
        name = rest[1] if len(rest) > 1 else None
        if rtype.namespaced and namespace is None and name is not None:
            return None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource not in (None, "status"):
            return None
        return ResourceRequest(rtype, namespace, name, subresource, watch)

    @staticmethod
    def _verb(method: str, request: ResourceRequest) -> str:
        if method in ("GET", "HEAD"):
            return "get" if request.name is not None else "watch" if request.watch else "list"
        if method == "DELETE" and request.name is None:
            return "deletecollection"
        return WRITE_VERBS.get(method, method.lower())

    def _denied(self, verb: str, request: ResourceRequest) -> bool:
        rtype = request.rtype
        for denied_verb, resource, namespace in self.forbidden:
            if denied_verb not in (verb, "*") or resource not in (rtype.plural, f"{rtype.plural}.{rtype.group}", "*"):
                continue
            if namespace == "*" or namespace == (request.namespace or ""):
                return True
            if rtype.namespaced and request.namespace is None:
                return True  # denied somewhere, so no cluster-wide permission either
        return False

    # --- the service proxy (see ``proxy``) -------------------------------------------------------
    def _proxy(self, method: str, namespace: str, url_name: str, path: str) -> tuple[int, dict | proxy.ProxiedAnswer]:
        verb = "get" if method in ("GET", "HEAD") else WRITE_VERBS.get(method, method.lower())
        for denied_verb, resource, denied_ns in self.forbidden:
            if denied_verb in (verb, "*") and resource in ("services/proxy", "*") and denied_ns in (namespace, "*"):
                return 403, status.forbidden(verb, "services/proxy", "", namespace, user=self.user, name=url_name)
        if method not in ("GET", "HEAD"):
            return 405, status.method_not_allowed(f"{verb}: the Railiance stand-in proxies GET only")
        rtype = self.registry.find("", "v1", "services")
        _, name, _ = proxy.parse_name(url_name)
        return proxy.answer(self.store.get(rtype, namespace, name), self.proxied.get((namespace, name)), url_name, path)

    # --- the one write: server-side apply of an APPLYABLE kind -----------------------------------
    def _apply(self, request: ResourceRequest, query: dict[str, str], body: bytes) -> tuple[int, dict]:
        """Server-side apply as the apiserver answers it: fieldManager required (422), the body's kind
        and name must be the URL's (400), 201 with the object when created, 200 when it replaced one.
        One manager owns the whole object here (the suite's publisher), so the applied object is stored
        as it is, with ``managedFields`` naming that manager."""
        rtype = request.rtype
        manager = query.get("fieldManager", "")
        if not manager:
            return 422, status.status(422, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                           "is required for apply patch", "Invalid")
        try:
            obj = yaml.load(body.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if body else None
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            return 400, status.bad_request(f"error decoding YAML: {exc}")
        if not isinstance(obj, dict) or obj.get("apiVersion") != rtype.group_version or obj.get("kind") != rtype.kind:
            return 400, status.bad_request(f"the apply patch is not a {rtype.group_version} {rtype.kind}")
        name = (obj.get("metadata") or {}).get("name")
        if name != request.name:
            return 400, status.bad_request(f"the name of the object ({name}) does not match the name on the URL "
                                           f"({request.name})")
        schema = self._schema(rtype)
        if schema is not None:
            obj = validation.prune(obj, schema)
            problems = validation.errors(obj, schema)
            if problems:
                detail = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
                return 422, status.status(422, f"{rtype.kind}.{rtype.group} \"{name}\" is invalid: {detail}", "Invalid")
        obj["metadata"] = {**obj["metadata"], "managedFields": [
            {"manager": manager, "operation": "Apply", "apiVersion": rtype.group_version,
             "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "fieldsType": "FieldsV1",
             "fieldsV1": {}}]}
        if validation.too_large(obj):
            return 500, status.status(500, "etcdserver: request is too large", "InternalError")
        stored, created = self.store.put(rtype, obj)
        return (201 if created else 200), stored

    def _schema(self, rtype: ResourceType) -> dict | None:
        """The openAPIV3Schema the CRD of ``rtype`` declares for its version (None: no CRD, or none given)."""
        crds = self.registry.find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        crd = self.store.get(crds, None, f"{rtype.plural}.{rtype.group}") if crds is not None else None
        return validation.crd_schema(crd, rtype.version) if crd is not None else None

    def _delete(self, request: ResourceRequest) -> tuple[int, dict]:
        """DELETE of an object of an APPLYABLE kind (the publisher removes the reports it no longer writes):
        200 with the deleted object, 404 when there is none."""
        rtype = request.rtype
        deleted = self.store.delete(rtype, request.namespace, request.name)
        if deleted is None:
            return 404, status.not_found(rtype.plural, rtype.group, request.name)
        return 200, deleted

    # --- reads -----------------------------------------------------------------------------
    def _get(self, request: ResourceRequest, accept: str, query: dict[str, str]) -> tuple[int, dict]:
        rtype = request.rtype
        obj = self.store.get(rtype, request.namespace, request.name)
        if obj is None:
            return 404, status.not_found(rtype.plural, rtype.group, request.name)
        if wants_table(accept):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return 200, to_table(rtype, [obj], meta, query.get("includeObject", "Metadata"))
        return 200, obj

    def _list(self, request: ResourceRequest, accept: str, query: dict[str, str]) -> tuple[int, dict]:
        rtype = request.rtype
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))
            limit = int(query.get("limit") or 0)
        except (SelectorError, ValueError) as exc:
            return 400, status.bad_request(str(exc))
        selective = bool(query.get("labelSelector") or query.get("fieldSelector"))
        try:
            page = self.store.list(rtype, request.namespace, limit=limit, continue_token=query.get("continue"),
                                   predicate=(lambda o: labels(o) and fields(o)) if selective else None)
        except ContinueError as exc:
            return 400, status.bad_request(f"invalid continue token: {exc}")
        meta: dict = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
        if page.remaining is not None:
            meta["remainingItemCount"] = page.remaining
        if wants_table(accept):
            return 200, to_table(rtype, page.items, meta, query.get("includeObject", "Metadata"))
        return 200, {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version, "metadata": meta,
                     "items": page.items}
