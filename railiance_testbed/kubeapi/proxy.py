"""The service proxy of the stand-in: what a Service's backend answers through the API server.

A real apiserver forwards ``/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH`` to
an endpoint of the Service. The stand-in has no pods to forward to, so a dump declares what the
backend answers, in an annotation on the Service (stripped before the Service is served, so the
suite never sees it)::

    metadata:
      annotations:
        testbed.railiance.example/proxied: |
          "3000":                          # a service port, by number or name
            /api/healthz:                  # the path after .../proxy
              status: 200
              contentType: application/json
              body: {status: pass, checks: {...}}   # a mapping is sent as JSON, a string as it is

Refusals are worded as the apiserver's (``pkg/registry/core/service/storage``'s ResourceLocation):
404 ``services "x" not found`` for an unknown Service, 503 ``no service port "p" found for service
"x"`` for a port it does not have, 503 ``no endpoints available for service "x"`` where the dump
declares no backend for that port. A declared backend answers 404 ``404 page not found`` (text)
for a path it was not given, as an HTTP server would.
RBAC sees the request as verb ``get`` (GET) on resource ``services/proxy`` with the name as the
URL writes it (``http:gitea-http:3000``): ``forbidden={("get", "services/proxy", "gitea")}`` refuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from . import status

ANNOTATION = "testbed.railiance.example/proxied"


class ProxyDeclarationError(ValueError):
    """A Service's proxied-responses annotation that cannot be served (names the Service)."""


@dataclass(frozen=True)
class ProxiedAnswer:
    status: int
    content_type: str
    body: str


def split_proxied(objects: list[dict]) -> tuple[list[dict], dict[tuple[str, str], dict[str, dict[str, ProxiedAnswer]]]]:
    """The objects with the annotation removed from Services (copies; the input is not changed), and
    the declared answers: ``{(namespace, service): {port: {path: ProxiedAnswer}}}``."""
    served, declared = [], {}
    for obj in objects:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if obj.get("kind") != "Service" or ANNOTATION not in annotations:
            served.append(obj)
            continue
        meta = obj["metadata"]
        where = f"Service {meta.get('namespace')}/{meta['name']}: annotation {ANNOTATION}"
        try:
            spec = yaml.safe_load(annotations[ANNOTATION])
        except yaml.YAMLError as exc:
            raise ProxyDeclarationError(f"{where}: not YAML: {exc}") from exc
        if not isinstance(spec, dict):
            raise ProxyDeclarationError(f"{where}: expected a mapping of port -> path -> answer")
        ports = {}
        for port, paths in spec.items():
            if not isinstance(paths, dict):
                raise ProxyDeclarationError(f"{where}: port {port}: expected a mapping of path -> answer")
            ports[str(port)] = {path: _answer(where, path, answer) for path, answer in paths.items()}
        declared[(meta.get("namespace") or "", meta["name"])] = ports
        rest = {k: v for k, v in annotations.items() if k != ANNOTATION}
        served.append({**obj, "metadata": {**meta, "annotations": rest}})
    return served, declared


def _answer(where: str, path: str, answer) -> ProxiedAnswer:
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), int) or "body" not in answer:
        raise ProxyDeclarationError(f"{where}: {path}: expected {{status: <int>, body: ...}}")
    body = answer["body"]
    text = body if isinstance(body, str) else json.dumps(body, indent=2)
    return ProxiedAnswer(answer["status"], answer.get("contentType", "application/json"), text)


def parse_name(text: str) -> tuple[str, str, str]:
    """``http:gitea-http:3000`` -> (``http``, ``gitea-http``, ``3000``); ``gitea-http:3000`` ->
    (``""``, ``gitea-http``, ``3000``); ``gitea-http`` -> (``""``, ``gitea-http``, ``""``)
    (the apiserver's ``net.SplitSchemeNamePort``)."""
    parts = text.split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return "", text, ""


def answer(service: dict | None, declared: dict[str, dict[str, ProxiedAnswer]] | None, url_name: str,
           path: str) -> tuple[int, dict | ProxiedAnswer]:
    """What the apiserver answers for a proxied GET of ``path`` (``"/api/healthz"``) of ``service``."""
    _, name, port = parse_name(url_name)
    if service is None:
        return 404, status.not_found("services", "", name)
    wanted = next((p for p in (service.get("spec") or {}).get("ports") or []
                   if p.get("name", "") == port or str(p.get("port")) == port), None)
    if wanted is None:
        return 503, status.status(503, f'no service port "{port}" found for service "{name}"', "ServiceUnavailable")
    paths = None
    for key in (str(wanted.get("port")), wanted.get("name")):
        if declared and key in declared:
            paths = declared[key]
    if paths is None:
        return 503, status.status(503, f'no endpoints available for service "{name}"', "ServiceUnavailable")
    found = paths.get(path or "/")
    if found is None:
        return 404, ProxiedAnswer(404, "text/plain; charset=utf-8", "404 page not found\n")
    return found.status, found


def resolver(objects: list[dict]):
    """``resolver(load_dump(CONFORMANT_DUMP))`` -> a function ``(namespace, url_name, path)`` -> the
    declared ``ProxiedAnswer`` (status, content_type, body), or None where the stand-in would refuse
    (no such Service, port or endpoint): the same answers without an HTTP server, for
    ``ClusterSnapshot.from_objects(objects, proxied=resolver(objects))``."""
    served, declared = split_proxied(objects)
    services = {((o.get("metadata") or {}).get("namespace") or "", o["metadata"]["name"]): o
                for o in served if o.get("kind") == "Service"}

    def answer_for(namespace: str, url_name: str, path: str) -> ProxiedAnswer | None:
        name = parse_name(url_name)[1]
        _, found = answer(services.get((namespace, name)), declared.get((namespace, name)), url_name, path)
        return found if isinstance(found, ProxiedAnswer) else None

    return answer_for
