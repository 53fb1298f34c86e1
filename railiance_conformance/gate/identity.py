"""Where an approval was made: the history's own identity, and the identity of the cluster it gated.

**History identity.** Each history file gets one random identity (a UUID 4) the first time the gate
uses it, in the table ``history_identity`` (one row, append-only triggers; never re-made once there).
Every approval signed afterwards carries it, so a signed row copied into another history (with its
run and archived report) names a history that is not the one it sits in. A history made before this
identity existed gets it on first use, together with ``unbound_through_seq``: the last approval row
already there. Those older rows were signed without the identity and are counted as "not bound"
(they verify as before); any row after them must carry it.

**Cluster identity.** When the gate targets a cluster, the ``metadata.uid`` of its ``kube-system``
namespace: a UUID the API server assigns when the namespace is created, i.e. when the cluster is
installed, and which no later API call can change (Kubernetes API conventions, "ObjectMeta.uid":
"unique in time and space ... populated by the system. Read-only"). It is what ``kubectl get ns
kube-system -o jsonpath='{.metadata.uid}'`` prints, the usual stand-in for a cluster id (Kubernetes
has no cluster-id field). Read with one LIST of namespaces through ``ClusterSnapshot``, like every
cluster control (request timeout ``ClusterAccess.timeout_s``).

Example: ``with open_database(path) as con: ensure(con).history_id`` -> ``"0b6c…-…"``;
``cluster_identity("kubeconfig", None)`` -> ``ClusterIdentity(uid="d8fb827e-…", error="")``.
"""
from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

TABLE = "history_identity"
CHAIN_TABLE = "approval_chain"
TRIGGERS = ("history_identity_no_update", "history_identity_no_delete")
STATEMENTS = (
    f"""CREATE TABLE {TABLE} (
  one INTEGER PRIMARY KEY CHECK (one = 1), history_id TEXT NOT NULL, created_at_utc TEXT NOT NULL,
  unbound_through_seq INTEGER NOT NULL)""",
    f"""CREATE TRIGGER history_identity_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'the history identity is fixed when the history is created: UPDATE refused'); END""",
    f"""CREATE TRIGGER history_identity_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'the history identity is fixed when the history is created: DELETE refused'); END""",
)


@dataclass(frozen=True, slots=True)
class HistoryIdentity:
    """``history_id`` (UUID 4 text), when it was made (RFC 3339 UTC), and the last approval row signed
    before it existed (0: every row carries it)."""

    history_id: str
    created_at_utc: str
    unbound_through_seq: int


@dataclass(frozen=True, slots=True)
class ClusterIdentity:
    """The kube-system namespace uid, or why it could not be read (``uid`` None, ``error`` says why)."""

    uid: str | None
    error: str = ""


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def read(con: sqlite3.Connection) -> HistoryIdentity | None:
    """The history's identity, None when it has none (yet, or because its table was dropped)."""
    if not _has_table(con, TABLE):
        return None
    row = con.execute(f"SELECT history_id, created_at_utc, unbound_through_seq FROM {TABLE}").fetchone()
    return HistoryIdentity(str(row[0]), str(row[1]), int(row[2])) if row else None


def ensure(con: sqlite3.Connection) -> HistoryIdentity:
    """The identity, made now if the history has none: call inside a write transaction (``BEGIN
    IMMEDIATE``). Approval rows already in the file are recorded as signed before it."""
    found = read(con)
    if found is not None:
        return found
    if not _has_table(con, TABLE):
        for statement in STATEMENTS:  # triggers only with the table: never silently re-made
            con.execute(statement)
    high = 0
    if _has_table(con, CHAIN_TABLE):
        last = con.execute(f"SELECT max(seq) FROM {CHAIN_TABLE}").fetchone()[0] or 0
        counter = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (CHAIN_TABLE,)).fetchone()
        high = max(int(last), int(counter[0]) if counter else 0)
    made = HistoryIdentity(str(uuid.uuid4()), datetime.now(timezone.utc).isoformat(timespec="seconds")
                           .replace("+00:00", "Z"), high)
    con.execute(f"INSERT INTO {TABLE} (one, history_id, created_at_utc, unbound_through_seq) VALUES (1, ?, ?, ?)",
                (made.history_id, made.created_at_utc, made.unbound_through_seq))
    return made


def missing_triggers(con: sqlite3.Connection) -> list[str]:
    """The identity's append-only triggers that are gone (none when the table itself is absent)."""
    if not _has_table(con, TABLE):
        return []
    present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return [name for name in TRIGGERS if name not in present]


def cluster_identity(kubeconfig: str | None, context: str | None) -> ClusterIdentity:
    """``metadata.uid`` of the ``kube-system`` namespace of the cluster the kubeconfig/context names."""
    from railiance_conformance.probes.cluster import ClusterAccess, ClusterSnapshot, ClusterUnavailable

    try:
        namespaces = ClusterSnapshot(ClusterAccess(kubeconfig, context)).list("namespaces")
    except ClusterUnavailable as exc:
        return ClusterIdentity(None, f"the namespaces could not be listed: {exc}")
    uid = next((str((n.get("metadata") or {}).get("uid") or "") for n in namespaces
                if (n.get("metadata") or {}).get("name") == "kube-system"), None)
    if uid is None:
        return ClusterIdentity(None, "the cluster has no kube-system namespace")
    if not uid:
        return ClusterIdentity(None, "the kube-system namespace has no metadata.uid")
    return ClusterIdentity(uid)
