"""The drift overlays in ``railiance_testbed/kubeapi/dumps/drifted/<scenario>/``: the cluster controls'
fail fixtures (the conformant dump is their pass fixture), as ansible-lint keeps rule-*-pass/fail.

Each scenario directory holds overlay YAML (objects replacing conformant ones, ``delete:``
documents, ``patch:`` documents: RFC 7386 merge patches of conformant objects) and an ``expected.yaml``: a
one-line ``description``, the ``drift`` list of cluster control ids that must drift when the overlay is
layered over ``dumps/conformant``, and for the cross-layer case ``cross_layer``. ``BRIEF`` names the
scenarios written to a brief and what each must drift.

``expected.yaml`` is not a dump document, so the overlay is layered as its dump files
(``overlay_files``): ``load_dump`` reads every ``*.yaml`` of a directory it is given. The tests that
check the scenarios: tests/testbed/test_drift_overlays_scenarios.py, _evaluation.py, _read_back.py.
"""
from __future__ import annotations

import base64
import functools
from pathlib import Path

import yaml

from railiance_conformance.checks import bundled_plan
from railiance_testbed.kubeapi import CONFORMANT_DUMP, DUMPS_DIR, load_dump
from railiance_testbed.kubeapi.dump import DUMP_SUFFIXES

DRIFTED_DIR = DUMPS_DIR / "drifted"
EXPECTED_FILE = "expected.yaml"
PLAN = bundled_plan()
# every cluster control the features state (the catalog's cluster.* ids that are not pending)
CLUSTER_CONTROLS = tuple(sorted(c for c in PLAN.specs if c.startswith("cluster.") and not PLAN.catalog[c].pending))
CONFORMANT_SSH_NODEPORT = 30022
SCENARIOS = sorted(p.name for p in DRIFTED_DIR.iterdir() if p.is_dir())

# The scenarios written to a brief, and what each must drift (new scenarios are held to their expected.yaml).
BRIEF = {
    "cnpg-operator-down": {"cluster.cnpg.operator"},
    "gitea-db-spec-drift": {"cluster.gitea_db.spec", "cluster.gitea_db.status"},  # its WAL archiving fails too
    "gitea-db-degraded": {"cluster.gitea_db.healthy", "cluster.gitea_db.status", "cluster.gitea.db_health"},
    "gitea-db-credentials-missing": {"cluster.gitea_db.credentials"},
    "postgresql-ha-leftover": {"cluster.postgresql_ha.absent"},
    "gitea-on-internal-db": {"cluster.gitea.database"},
    "gitea-unavailable": {"cluster.gitea.available"},
    "redis-cluster-leftover": {"cluster.redis_cluster.absent"},
    "gitea-cache-on-redis-cluster": {"cluster.gitea.cache"},
    "valkey-release-failed": {"cluster.valkey.release"},
    "gitea-ssh-nodeport-changed": set(),
    "gitea-cache-down": {"cluster.gitea.cache_health"},
    "gitea-db-archiving-failing": {"cluster.gitea_db.status"},
}


def overlay_files(scenario_dir: Path) -> list[Path]:
    """The dump files of a scenario directory, in the order load_dump reads a directory."""
    return sorted(p for p in scenario_dir.iterdir()
                  if p.is_file() and p.suffix in DUMP_SUFFIXES and p.name != EXPECTED_FILE)


@functools.cache
def conformant() -> list[dict]:
    """The conformant dump, loaded once; callers only read it."""
    return load_dump(CONFORMANT_DUMP)


@functools.cache
def layered(scenario: str) -> list[dict]:
    """The conformant dump with the scenario's overlay layered on, loaded once; callers only read it."""
    return load_dump([CONFORMANT_DUMP, *overlay_files(DRIFTED_DIR / scenario)])


def expected(scenario: str) -> dict:
    return yaml.safe_load((DRIFTED_DIR / scenario / EXPECTED_FILE).read_text(encoding="utf-8"))


def _secret_text(secret: dict, key: str) -> str:
    return base64.b64decode((secret.get("data") or {}).get(key, "")).decode()


def _ini(secret: dict | None, key: str) -> dict[str, str]:
    if secret is None:
        return {}
    pairs = (line.split("=", 1) for line in _secret_text(secret, key).splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}
