"""Cluster kinds about CloudNativePG: a Cluster healthy, and its status (primary, instances, backups).
"""
from __future__ import annotations

from typing import Any, Mapping

from railiance_conformance.controls.cluster import DEFAULT_ENV, ClusterEnv
from railiance_conformance.controls.grammar import NAME, NS, Params
from railiance_conformance.expectations import matches
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.redact import redact_url
from railiance_conformance.resources.cluster_objects import ABSENT
from railiance_conformance.resources.cnpg_backups import BACKUPS, backup_recency
from railiance_conformance.vocabulary import check_kind


@check_kind("cluster.cnpg.healthy",
            rf"Cluster (?P<namespace>{NS})/(?P<name>{NAME}) is in phase \"(?P<phase>[^\"]+)\" with every instance ready",
            target="cluster", schema={"required": ["namespace", "name", "phase"]},
            reads=lambda p: ["clusters.postgresql.cnpg.io"])
def cnpg_healthy(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """A CloudNativePG Cluster's status.phase, and status.readyInstances equal to spec.instances."""
    ref = f"Cluster {params['namespace']}/{params['name']}"
    cluster = next((c for c in snap.list("clusters.postgresql.cnpg.io", namespace=params["namespace"])
                    if c["metadata"]["name"] == params["name"]), None)
    if cluster is None:
        return Outcome.compare(params["phase"], f"no {ref}")
    instances = cluster.get("spec", {}).get("instances", ABSENT)
    status = cluster.get("status", {})
    observed = {"object": ref, "phase": status.get("phase", ABSENT), "readyInstances": status.get("readyInstances", ABSENT)}
    expected = {"object": ref, "phase": params["phase"], "readyInstances": instances}
    if not matches(expected, observed) and status.get("phaseReason"):
        observed["phaseReason"] = status["phaseReason"]
    return Outcome.compare(expected, observed, evidence={"currentPrimary": status.get("currentPrimary")})


_PRIMARY_OK = "an instance of the cluster, no switchover pending"


def _primary(status: Mapping[str, Any]) -> str:
    """``kubectl cnpg status``'s "Current Primary" as a verdict: an instance of the cluster (one of
    status.instanceNames, when the operator lists them) that is also the target primary."""
    current, target = status.get("currentPrimary"), status.get("targetPrimary")
    names = status.get("instanceNames")
    if not current:
        return "none"
    if names and current not in names:
        return f"{current} (not an instance of the cluster: {', '.join(names)})"
    if target and target != current:
        return f"{current} (switching over to {target})"
    return _PRIMARY_OK


def _condition_entry(obj: dict, kind: str) -> Mapping[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == kind), {})


@check_kind("cluster.cnpg.status",
            rf"Cluster (?P<namespace>{NS})/(?P<name>{NAME}) reports every instance ready, a current primary, "
            rf"continuous archiving working and a completed backup in the last (?P<window_hours>[0-9]+) hours",
            target="cluster", convert=lambda g: {**g, "window_hours": int(g["window_hours"])},
            schema={"required": ["namespace", "name", "window_hours"],
                    "properties": {"window_hours": {"type": "integer", "minimum": 1}}},
            reads=lambda p: ["clusters.postgresql.cnpg.io", BACKUPS])
def cnpg_status(snap: ClusterSnapshot, params: Params, env: ClusterEnv = DEFAULT_ENV) -> Outcome:
    """What ``kubectl cnpg status`` reports of a CloudNativePG Cluster, from its status and conditions:
    status.readyInstances equal to spec.instances; status.currentPrimary an instance of the cluster
    and equal to status.targetPrimary (no switchover pending); the condition ContinuousArchiving
    "True" (CNPG sets it from the WAL archiver: ContinuousArchivingSuccess/Failing); and the newest
    Backup of the cluster ``completed`` within ``window_hours`` (``resources.cnpg_backups.backup_recency``: its
    stoppedAt, else startedAt, else creation time)."""
    ns, name = params["namespace"], params["name"]
    ref = f"Cluster {ns}/{name}"
    expected = {"object": ref, "ready instances": ABSENT, "current primary": _PRIMARY_OK,
                "continuous archiving": "True", "newest backup": f"completed within {params['window_hours']} h"}
    cluster = next((c for c in snap.list("clusters.postgresql.cnpg.io", namespace=ns)
                    if c["metadata"]["name"] == name), None)
    if cluster is None:
        return Outcome.compare({k: v for k, v in expected.items() if k != "ready instances"}, f"no {ref}")
    status = cluster.get("status", {})
    expected["ready instances"] = cluster.get("spec", {}).get("instances", ABSENT)
    archiving = _condition_entry(cluster, "ContinuousArchiving")
    backup = backup_recency(snap, namespace=ns, cluster=name, window_hours=params["window_hours"])
    observed = {"object": ref, "ready instances": status.get("readyInstances", ABSENT),
                "current primary": _primary(status),
                "continuous archiving": archiving.get("status", ABSENT),
                "newest backup": expected["newest backup"] if backup.status is Status.PASS
                else backup.reason or str(backup.observed)}
    evidence: dict[str, Any] = {"currentPrimary": status.get("currentPrimary"), "phase": status.get("phase"),
                                "backup": backup.observed if isinstance(backup.observed, Mapping) else None}
    if archiving.get("status") != "True" and archiving:
        evidence["continuous archiving"] = redact_url(f"{archiving.get('reason', '')}: {archiving.get('message', '')}")[:300]
    if status.get("lastFailedBackup"):
        evidence["lastFailedBackup"] = status["lastFailedBackup"]
    return Outcome.compare(expected, observed, evidence=evidence)
