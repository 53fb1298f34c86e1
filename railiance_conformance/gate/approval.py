"""One signed approval row: its fields, the bytes the approver signs, a problem found with it.

Shape: ``Approval`` (one row of ``approval_chain``), ``payload`` (canonical JSON of the signed fields),
``Problem`` (one thing wrong, naming the row). Times are RFC 3339 UTC text (``parse_time``,
``format_time``). Errors: ``NotApproved`` (not a GO), ``ApprovalRefused`` (not recorded; the reason says).
The format and its rationale: docs/gate.md, "Signed, hash-chained approvals".
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

GO = "GO"
NAMESPACE = "gate-approval@railiance-conformance"
GENESIS = "sha256:" + "0" * 64
FORMAT = 2  # rows that carry the history identity, the cluster identity and the run's end
MAX_CLOCK_SKEW_S = 300.0  # how far a row's time may lie ahead of the verifying machine's clock
BINDING = ("run_finished_at_utc", "history_id", "cluster_id")  # added in format 2 (NULL in older rows)
COLUMNS = ("seq", "task", "run_id", "verdict", "approver", "approved_at_utc", "report_digest", "repo_heads",
            "prev_hash", "signature", "row_hash", *BINDING)


class NotApproved(ValueError):
    """A verdict other than GO was offered for recording."""


class ApprovalRefused(RuntimeError):
    """The approval could not be recorded: bad signer, broken chain, ssh-keygen failed ... (the reason says)."""


@dataclass(frozen=True, slots=True)
class Approval:
    """One signed GO: who approved which gate run of which task, when, against which report and commits."""

    seq: int
    task: str
    run_id: str
    verdict: str
    approver: str
    approved_at_utc: str
    report_digest: str
    repo_heads: dict[str, str]
    prev_hash: str
    signature: str
    row_hash: str
    run_finished_at_utc: str | None = None  # the approved run's end, as the history records it
    history_id: str | None = None           # the history it was made in (None: a row of the first format)
    cluster_id: str | None = None           # the gated cluster's kube-system namespace uid (None: no cluster)

    @property
    def bound(self) -> bool:
        """True for a row of format 2 (it carries its history's identity and the run's end)."""
        return self.history_id is not None

    def payload(self) -> bytes:
        """The bytes the approver signs: canonical JSON of every field but the signature and row hash."""
        return payload(self.seq, self.task, self.run_id, self.verdict, self.approver, self.approved_at_utc,
                       self.report_digest, self.repo_heads, self.prev_hash,
                       **({name: getattr(self, name) for name in BINDING} if self.bound else {}))

    def computed_hash(self) -> str:
        """``sha256:`` of the payload, a newline and the armored signature (what ``row_hash`` must be)."""
        return "sha256:" + hashlib.sha256(self.payload() + b"\n" + self.signature.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the chain; ``seq`` names the row (None: the table as a whole)."""

    seq: int | None
    message: str

    def __str__(self) -> str:
        return f"row #{self.seq}: {self.message}" if self.seq is not None else self.message


def payload(seq: int, task: str, run_id: str, verdict: str, approver: str, approved_at_utc: str,
            report_digest: str, repo_heads: dict[str, str], prev_hash: str, **binding: str | None) -> bytes:
    """Canonical JSON (sorted keys, no blanks) of one row's signed fields, with the namespace.

    ``binding`` (format 2): ``run_finished_at_utc``, ``history_id`` and ``cluster_id`` (None: no
    cluster was targeted), signed together with ``"format": 2``; without it, the first format's bytes.
    """
    fields: dict[str, Any] = {"seq": seq, "task": task, "run_id": run_id, "verdict": verdict, "approver": approver,
                              "approved_at_utc": approved_at_utc, "report_digest": report_digest,
                              "repo_heads": dict(repo_heads), "prev_hash": prev_hash, "namespace": NAMESPACE}
    if binding:
        unknown = set(binding) - set(BINDING)
        if unknown:
            raise TypeError(f"payload: unknown fields {sorted(unknown)}")
        fields |= {"format": FORMAT, **{name: binding.get(name) for name in BINDING}}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def parse_time(value: str) -> datetime | None:
    """An aware UTC datetime from RFC 3339 text; None when it is not one (or has no offset)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo is not None else None


def format_time(value: str | datetime) -> str:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset: give it as RFC 3339 UTC, e.g. 2026-11-27T09:30:00Z")
    return parsed.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
