"""The newest CloudNativePG Backup of a cluster completed within a window: the cutover gate's
``gate.backup.recent`` and the ``cluster.cnpg.status`` kind both read it from here.

Reads ``backups.postgresql.cnpg.io`` (one cached LIST, like every cluster control). A Backup's time
is ``status.stoppedAt``, else ``status.startedAt``, else ``metadata.creationTimestamp`` (RFC 3339,
UTC; the cluster's clock, compared with this machine's, so more than ``MAX_CLOCK_SKEW_S`` ahead of it
is DRIFT naming the skew); its ``status.phase`` is one of CNPG's ``pending``, ``started``, ``running``, ``completed``,
``failed``, ``walArchivingFailing``.
Example: ``backup_recency(snap, namespace="databases", cluster="gitea-db", window_hours=26).status``
-> ``Status.PASS``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from railiance_conformance.finding import Outcome, Status
from railiance_conformance.redact import redact_url

BACKUPS = "backups.postgresql.cnpg.io"
MAX_CLOCK_SKEW_S = 300.0  # how far a Backup's time may lie ahead of this machine's clock (two clocks)
COMPLETED = "completed"
_TIME_FIELDS = (("status", "stoppedAt"), ("status", "startedAt"), ("metadata", "creationTimestamp"))


class Snapshot(Protocol):
    def list(self, kind: str, *, namespace: str | None = None) -> list[dict]: ...


def backup_recency(snap: Snapshot, *, namespace: str, cluster: str, window_hours: float,
                   now: datetime | None = None) -> Outcome:
    """``backup_recency(snap, namespace="databases", cluster="gitea-db", window_hours=26)`` -> PASS or DRIFT."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    expected = {"cluster": cluster, "phase": COMPLETED, "within_hours": window_hours}
    backups = [b for b in snap.list(BACKUPS, namespace=namespace)
               if ((b.get("spec") or {}).get("cluster") or {}).get("name") == cluster]
    if not backups:
        return Outcome(Status.DRIFT, expected, f"no Backup of cluster {cluster} in namespace {namespace}",
                       reason="no backup at all: take one (kubectl cnpg backup) before the cutover")
    try:
        dated = sorted(((_when(b), b["metadata"]["name"], b) for b in backups), key=lambda d: d[:2])
    except ValueError as exc:
        return Outcome.error(str(exc), expected=expected)
    when, name, newest = dated[-1]
    status = newest.get("status") or {}
    phase = status.get("phase") or "(no phase yet)"
    age_hours = round((now - when).total_seconds() / 3600, 1)
    observed = {"backup": name, "phase": phase, "age_hours": age_hours}
    completed = [(w, n) for w, n, b in dated if (b.get("status") or {}).get("phase") == COMPLETED]
    evidence: dict[str, Any] = {"backups_of_cluster": len(backups), "newest_at": _iso(when),
                                "newest_completed": f"{completed[-1][1]} at {_iso(completed[-1][0])}"
                                if completed else None}
    if status.get("error"):
        evidence["error"] = redact_url(str(status["error"]))[:300]
    if phase != COMPLETED:
        return Outcome(Status.DRIFT, expected, observed, f"the newest backup {name} is {phase}, not {COMPLETED}",
                       tuple(evidence.items()))
    if (when - now).total_seconds() > MAX_CLOCK_SKEW_S:
        return Outcome(Status.DRIFT, expected, observed,
                       f"the newest backup {name} is dated {_iso(when)}, {-age_hours} h ahead of this machine's clock "
                       f"({_iso(now)}; {MAX_CLOCK_SKEW_S:g} s of skew allowed): a backup from the future cannot show "
                       "a recent one; check the clocks", tuple(evidence.items()))
    if age_hours > window_hours:
        return Outcome(Status.DRIFT, expected, observed,
                       f"the newest backup {name} is {age_hours} h old, older than the {window_hours} h window",
                       tuple(evidence.items()))
    return Outcome(Status.PASS, expected, observed, evidence=tuple(evidence.items()))


def _when(backup: dict) -> datetime:
    """The backup's time: stoppedAt, else startedAt, else creationTimestamp, as an aware UTC datetime."""
    name = (backup.get("metadata") or {}).get("name", "?")
    for section, key in _TIME_FIELDS:
        value = (backup.get(section) or {}).get(key)
        if value:
            try:
                parsed = datetime.fromisoformat(str(value))
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise ValueError(f"backup {name}: {section}.{key} {value!r} is not an RFC 3339 timestamp")
            return parsed.astimezone(timezone.utc)
    raise ValueError(f"backup {name} has no stoppedAt, startedAt or creationTimestamp")


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
