"""Cluster kinds about Secrets: the keys a Secret has, by name only (values are never looked at).
"""
from __future__ import annotations

from railiance_conformance.controls.cluster import DEFAULT_ENV, ClusterEnv
from railiance_conformance.controls.grammar import AND, NAME, NS, Params, and_list
from railiance_conformance.finding import Outcome
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.resources.cluster_objects import secret_keys
from railiance_conformance.vocabulary import check_kind


@check_kind("cluster.secret.keys",
            rf"Secret (?P<namespace>{NS})/(?P<name>{NAME}) has the keys? (?P<keys>[A-Za-z0-9._-]+(?:{AND}[A-Za-z0-9._-]+)*)",
            target="cluster", convert=lambda g: {"namespace": g["namespace"], "name": g["name"], "keys": and_list(g["keys"])},
            schema={"required": ["namespace", "name", "keys"]}, reads=lambda p: ["secrets"])
def secret_has_keys(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """A Secret has the keys, by name only (GET by name; the values are never looked at)."""
    namespace, name, want = params["namespace"], params["name"], params["keys"]
    secret = snap.get("secrets", namespace, name)
    expected = {"secret": name, "keys_present": sorted(want)}
    if secret is None:
        return Outcome.compare(expected, f"no Secret {name} in {namespace}")
    keys = secret_keys(secret)
    return Outcome.compare(expected, {"secret": name, "keys_present": sorted(k for k in want if k in keys)},
                           evidence={"keys": keys})
