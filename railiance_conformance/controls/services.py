"""Cluster kinds about Services: a health endpoint read through the API server's service proxy.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from railiance_conformance.controls.cluster import DEFAULT_ENV, ClusterEnv
from railiance_conformance.controls.grammar import AND, NAME, NS, Params, and_list
from railiance_conformance.finding import Outcome
from railiance_conformance.probes.api_kinds import SERVICE_PROXY
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.redact import redact_url
from railiance_conformance.resources.cluster_objects import ABSENT
from railiance_conformance.vocabulary import check_kind

_CHECK = r"[a-z][a-z0-9_.-]*:[a-z][a-z0-9_.-]*"


@check_kind("cluster.service.health",
            rf"Service (?P<namespace>{NS})/(?P<name>{NAME}) answers GET (?P<path>/[A-Za-z0-9/_.-]*) on port "
            rf"(?P<port>[a-z0-9-]+) through the API server's service proxy with the health checks? "
            rf"(?P<checks>{_CHECK}(?:{AND}{_CHECK})*) passing", target="cluster",
            convert=lambda g: {"namespace": g["namespace"], "name": g["name"], "path": g["path"], "port": g["port"],
                               "checks": and_list(g["checks"])},
            schema={"required": ["namespace", "name", "path", "port", "checks"],
                    "properties": {"checks": {"type": "array", "minItems": 1}}},
            reads=lambda p: [SERVICE_PROXY])
def service_health(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """A health endpoint in the IETF health-check format (draft-inadarei-api-health-check, as Gitea's
    ``/api/healthz`` answers: ``{"status": "pass", "checks": {"database:ping": [{"status": "pass"}]}}``;
    Gitea answers 200 on pass, 424 on fail: routers/web/healthcheck/check.go) read with one GET
    through the API server's service proxy (``http:NAME:PORT``; RBAC ``get`` on ``services/proxy``).
    Passes when every named check is ``pass``. The overall status is evidence only: it fails with
    any check, and one control per check keeps a cache outage off the database's control. A check
    listed several times counts by its worst entry; a check the answer omits (Gitea omits cache:ping
    when its cache is disabled) is absent, never a pass."""
    ns, name, path = params["namespace"], params["name"], params["path"]
    service = f"http:{name}:{params['port']}"
    where = f"Service {ns}/{name} GET {path}"
    expected = {"object": where, **{check: "pass" for check in params["checks"]}}
    answer = snap.proxy_get(ns, service, path)
    evidence: dict[str, Any] = {"url": f"/api/v1/namespaces/{ns}/services/{service}/proxy{path}",
                                "http_status": answer.status}
    try:
        body = json.loads(answer.body) if "json" in answer.content_type else None
    except ValueError:
        body = None
    if not isinstance(body, Mapping) or "status" not in body:
        return Outcome.compare(expected, f"not a health answer: HTTP {answer.status} {answer.content_type} "
                                         f"{redact_url(answer.body[:120])!r}", evidence=evidence)
    found = body.get("checks")
    checks: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    observed: dict[str, Any] = {"object": where}
    evidence["status"] = str(body["status"])
    for check in params["checks"]:
        entries = checks.get(check)
        if not isinstance(entries, list) or not entries:
            observed[check] = ABSENT
            continue
        states = [str((e or {}).get("status")) for e in entries if isinstance(e, Mapping)]
        observed[check] = next((s for s in states if s != "pass"), "pass") if states else ABSENT
        outputs = [redact_url(str(e["output"]))[:300] for e in entries if isinstance(e, Mapping) and e.get("output")]
        if outputs:
            evidence[f"{check} output"] = outputs
    return Outcome.compare(expected, observed, evidence=evidence)
