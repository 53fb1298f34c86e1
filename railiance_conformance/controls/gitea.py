"""Cluster kinds about Gitea: the settings its app.ini (in a Secret, masked while parsed) gives.
"""
from __future__ import annotations

import re
from typing import Any

from railiance_conformance.controls.cluster import DEFAULT_ENV, ClusterEnv
from railiance_conformance.controls.grammar import NAME, NS, Params
from railiance_conformance.finding import Outcome
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import ABSENT, gitea_section, gitea_value_read
from railiance_conformance.resources.endpoints import postgres_endpoint, redis_endpoint, redis_url_rejected
from railiance_conformance.vocabulary import check_kind


def _redis(value: str | None, namespace: str, domain: str) -> str:
    """Gitea's redis connection setting as its client connects: ``redis://host:port/db``, no credentials."""
    if value is None:
        return ABSENT
    try:
        endpoint = redis_endpoint(value, client_namespace=namespace, cluster_domain=domain)
    except ValueError as exc:
        return f"unusable connection string: {exc}"
    rejected = redis_url_rejected(value)
    if rejected:
        return (f"{endpoint} (Go's url.Parse rejects the URL: {rejected}, e.g. an unencoded '#', '/' or '@' in the "
                "password; Gitea's ToRedisURI then falls back to its default)")
    if endpoint.port is None and not endpoint.scheme.endswith("socket"):
        return f"{endpoint} (no port: Gitea's redis client cannot connect)"
    return str(endpoint)


def _postgres(value: str, namespace: str, domain: str) -> Any:
    try:
        return postgres_endpoint(value, client_namespace=namespace, cluster_domain=domain)
    except ValueError as exc:
        return f"unusable HOST: {exc}"


_INI_PAIR = r"[A-Z][A-Z0-9_]* \S+?"


_INI_SECTION = rf"\[[a-z][a-z0-9_.]*\] {_INI_PAIR}(?:(?:, | and ){_INI_PAIR})*"


def _ini_sections(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for part in re.split(r";\s*(?=\[)", text):
        m = re.fullmatch(r"\[(?P<section>[^\]]+)\] (?P<pairs>.+)", part.strip())
        if m is None:  # the sentence's own regex (_INI_SECTION) admitted only this form
            raise ValueError(f"not an app.ini section sentence: {part!r}")
        pairs = (pair.split(" ", 1) for pair in re.split(r", | and (?=[A-Z][A-Z0-9_]* )", m["pairs"]))
        sections[m["section"]] = {key: value for key, value in pairs}
    return sections


@check_kind("cluster.gitea.app_ini",
            rf"Gitea's app\.ini in Secret (?P<namespace>{NS})/(?P<name>{NAME}) has "
            rf"(?P<sections>{_INI_SECTION}(?:; {_INI_SECTION})*)", target="cluster",
            convert=lambda g: {"namespace": g["namespace"], "name": g["name"], "sections": _ini_sections(g["sections"])},
            schema={"required": ["namespace", "name", "sections"],
                    "properties": {"sections": {"type": "object", "minProperties": 1,
                                                "additionalProperties": {"type": "object", "minProperties": 1}}}},
            reads=lambda p: ["secrets"])
def gitea_app_ini(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """Settings of Gitea's app.ini (the chart's inline-config Secret, one key per section; masked while parsed).

    Endpoints are compared where the client connects: ``[database] HOST`` as lib/pq does (default port
    5432, a short service name completed with the cluster domain); a ``scheme://`` value as Gitea's
    redis client does (nosql.ToRedisURI: scheme://host:port/db, credentials ignored). Any other
    value must be equal.
    """
    namespace, name = params["namespace"], params["name"]
    expected = {section: dict(values) for section, values in params["sections"].items()}
    secret = snap.get("secrets", namespace, name)
    if secret is None:
        return Outcome.compare(expected, f"no Secret {name} in {namespace}")
    domain = env.cluster_domain
    observed: dict[str, dict[str, Any]] = {}
    written: dict[str, dict[str, Any]] = {}
    for section, values in params["sections"].items():
        found = gitea_section(secret, section) or {}
        observed[section] = {}
        for key, want in values.items():
            got = found.get(key)
            if got is None:
                observed[section][key] = ABSENT
            elif section == "database" and key == "HOST":
                written.setdefault(section, {})[key] = got
                endpoint = _postgres(got, namespace, domain)
                observed[section][key] = want if endpoint == _postgres(want, namespace, domain) else (
                    endpoint if isinstance(endpoint, str) else f"{endpoint.host}:{endpoint.port}")
            elif "://" in str(want):
                written.setdefault(section, {})[key] = got
                # read from the unmasked value (masking would hide a '#' that sends Gitea elsewhere)
                mine = gitea_value_read(secret, section, key, lambda raw: _redis(raw, namespace, domain))
                observed[section][key] = want if mine == _redis(want, namespace, domain) else mine
            else:
                observed[section][key] = got
    where = f"Secret {namespace}/{name}" + (f" [{next(iter(expected))}]" if len(expected) == 1 else "")
    return Outcome.compare(expected, observed, evidence={
        "object": where, "as_written": written,
        "compared": "database HOST as lib/pq connects (default port 5432, service DNS completed); redis "
                    "connection strings where Gitea's redis client connects: scheme://host:port/db "
                    "(nosql.ToRedisURI; credentials ignored)"})
