"""The drift scenario directories (tests/testbed/drift_scenarios.py says what they hold), checked for every
scenario directory found:

* nothing but scenario directories is there, each with overlay files and an ``expected.yaml``;
* ``expected.yaml`` is well formed (the scenarios written to a brief list what the brief says);
* the overlay layers cleanly over the conformant dump and changes something;
* every secret value it adds or changes is a ``DRIFT-SECRET-VALUE-<scenario>-<what>`` marker (the
  cache scenario's Redis URLs carry theirs as the password).
"""
from __future__ import annotations

import re

import pytest

from railiance_testbed.kubeapi import CONFORMANT_DUMP, load_dump
from railiance_testbed.kubeapi.dump import object_key
from railiance_testbed.kubeapi.helm_release import decode_release
from tests.testbed.drift_scenarios import (
    BRIEF,
    CLUSTER_CONTROLS,
    DRIFTED_DIR,
    EXPECTED_FILE,
    SCENARIOS,
    _ini,
    _secret_text,
    conformant,
    expected,
    layered,
    overlay_files,
)

CROSS_LAYER = {"gitea-ssh-nodeport-changed": {"gitea_ssh_nodeport": 30122}}
MARKER = re.compile(r"DRIFT-SECRET-VALUE-[A-Za-z0-9._-]+")
CONFORMANT_MARKER = "CONFORMANT-SECRET-VALUE-"


def _ns(obj: dict) -> str:
    return obj["metadata"].get("namespace") or ""


def _find(objects, kind, namespace, name) -> dict | None:
    return next((o for o in objects if (o["kind"], _ns(o), o["metadata"]["name"]) == (kind, namespace, name)), None)


def _inline_config(objects) -> dict | None:
    return _find(objects, "Secret", "gitea", "gitea-inline-config")


# --- the scenario directories ------------------------------------------------------------------
def test_every_scenario_has_an_overlay_directory_and_nothing_else_is_there():
    assert sorted(p.name for p in DRIFTED_DIR.iterdir()) == SCENARIOS
    assert set(BRIEF) <= set(SCENARIOS)
    for name in SCENARIOS:
        files = {p.name for p in (DRIFTED_DIR / name).iterdir()}
        assert EXPECTED_FILE in files and overlay_files(DRIFTED_DIR / name), name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_expected_yaml_is_well_formed(scenario):
    spec = expected(scenario)
    assert isinstance(spec, dict) and {"description", "drift"} <= set(spec) <= {"description", "drift", "cross_layer"}
    assert isinstance(spec["description"], str) and spec["description"].strip()
    assert "\n" not in spec["description"].strip()
    assert isinstance(spec["drift"], list) and len(set(spec["drift"])) == len(spec["drift"])
    assert set(spec["drift"]) <= set(CLUSTER_CONTROLS), set(spec["drift"]) - set(CLUSTER_CONTROLS)
    if scenario in BRIEF:
        assert set(spec["drift"]) == BRIEF[scenario]
    assert spec.get("cross_layer") == CROSS_LAYER.get(scenario)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlay_layers_over_the_conformant_dump(scenario):
    base = {object_key(o): o for o in conformant()}
    objects = load_dump([CONFORMANT_DUMP, *overlay_files(DRIFTED_DIR / scenario)])  # not the cached copy
    assert objects
    mine = {object_key(o): o for o in objects}
    assert mine != base, "the overlay changes nothing"


def _secret_payloads(secret: dict) -> dict[str, str]:
    """Every secret value of a Secret, decoded; a Helm release contributes its values' strings."""
    if secret.get("type") == "helm.sh/release.v1":
        release = decode_release(secret["data"]["release"])
        found: dict[str, str] = {}

        def walk(node, path):
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value, f"{path}.{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{path}[{i}]")
            elif isinstance(node, str) and re.search(r"password|secret|token|key$", path, re.I):
                found[path] = node

        walk(release.get("config") or {}, "config")
        return found
    return {key: _secret_text(secret, key) for key in secret.get("data") or {}}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secret_values_the_overlay_adds_are_scenario_markers(scenario):
    base = {object_key(o): o for o in conformant() if o["kind"] == "Secret"}
    prefix = f"DRIFT-SECRET-VALUE-{scenario}-"
    for obj in layered(scenario):
        if obj["kind"] != "Secret":
            continue
        before = _secret_payloads(base[object_key(obj)]) if object_key(obj) in base else {}
        for key, value in _secret_payloads(obj).items():
            where = f"{_ns(obj)}/{obj['metadata']['name']}:{key}"
            for marker in MARKER.findall(value):
                assert marker.startswith(prefix) and len(marker) > len(prefix), (where, marker)
            if before.get(key) == value:
                continue  # carried over unchanged from the conformant dump
            if obj.get("type") == "helm.sh/release.v1":
                assert prefix in value or CONFORMANT_MARKER in value, where
            else:
                assert prefix in value, f"{where}: a new or changed secret value without a {prefix}... marker"


def test_the_redis_urls_of_the_cache_scenario_carry_the_password():
    secret = _inline_config(layered("gitea-cache-on-redis-cluster"))
    urls = [_ini(secret, "cache")["HOST"], _ini(secret, "session")["PROVIDER_CONFIG"], _ini(secret, "queue")["CONN_STR"]]
    for url in urls:
        assert re.match(r"redis(\+cluster)?://:DRIFT-SECRET-VALUE-gitea-cache-on-redis-cluster-[a-z-]+@"
                        r"gitea-redis-cluster-headless\.gitea\.svc\.cluster\.local:6379/", url), url
