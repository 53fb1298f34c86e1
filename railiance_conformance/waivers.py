"""Waivers: a known violation accepted until a date, with its approver and migration stub.

Example: ``apply(Status.DRIFT, "boundary.component.layer", "argocd/argocd", load_waivers(path, ids, None), now)``
-> ``(Status.WAIVED, "waived until 2027-03-31 (end of day UTC), approved by worsch; migration: …")``.

Expiry is a date compared in UTC: a waiver expiring 2026-12-31 is active through
2026-12-31T23:59:59Z and expired from 2027-01-01T00:00:00Z, wherever the suite runs. ``now`` must
be timezone-aware (a naive datetime is refused rather than guessed). Only DRIFT is ever waived:
a could-not-verify (ERROR) stays an error, a pass stays a pass.
"""
from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from railiance_conformance.finding import Outcome, Status
from railiance_conformance.policy import PolicyError, read_yaml_file, schema, validate


class _DatesAsText(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: ``expires: 2027-02-30`` stays text for a clear error."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _read(path: Path) -> Any:
    """The waiver file, parsed within the bounds of ``policy.read_yaml_file`` (size, depth, aliases)."""
    return read_yaml_file(Path(path), loader=_DatesAsText)


@dataclass(frozen=True, slots=True)
class Waiver:
    """One accepted violation: control id + target, until ``expires`` (inclusive, UTC)."""

    control: str
    target: str
    justification: str
    approved_by: str
    expires: date
    link: str

    def active(self, now: datetime) -> bool:
        """``Waiver(expires=date(2026, 12, 31), ...).active(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))`` -> True."""
        return _utc_day(now) <= self.expires


def _utc_day(now: datetime) -> date:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    return now.astimezone(UTC).date()


def load_waivers(path: Path, known_controls: set[str], known_targets: Container[str] | None = None) -> list[Waiver]:
    """``load_waivers(Path("policies/waivers.yaml"), {"boundary.component.layer"}, None)`` -> [Waiver, ...]."""
    source = str(path)
    data = _read(Path(path))
    validate(data, schema("waivers"), source=source)
    waivers: list[Waiver] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(data["waivers"]):
        where = f"waivers[{index}]"
        if item["control"] not in known_controls:
            raise PolicyError(source, f"{where}.control", f"unknown control id {item['control']!r}")
        if known_targets is not None and item["target"] not in known_targets:
            raise PolicyError(source, f"{where}.target", f"unknown target {item['target']!r} for {item['control']}")
        if (item["control"], item["target"]) in seen:
            raise PolicyError(source, where, f"a second waiver for {item['control']} on {item['target']}")
        seen.add((item["control"], item["target"]))
        try:
            expires = date.fromisoformat(item["expires"])
        except ValueError:
            raise PolicyError(source, f"{where}.expires", f"{item['expires']!r} is not a calendar date") from None
        waivers.append(Waiver(item["control"], item["target"], item["justification"].strip(), item["approved_by"],
                              expires, item["link"]))
    return waivers


def apply(outcome_status: Status, control_id: str, target: str, waivers: Iterable[Waiver],
          now: datetime) -> tuple[Status, str]:
    """A DRIFT with an active waiver -> (WAIVED, reason); with only an expired one -> (DRIFT, "waiver expired on …")."""
    status = Status(outcome_status)
    day = _utc_day(now)
    if status is not Status.DRIFT:
        return status, ""
    mine = sorted((w for w in waivers if w.control == control_id and w.target == target), key=lambda w: w.expires)
    if not mine:
        return status, ""
    newest = mine[-1]
    if newest.expires >= day:
        return Status.WAIVED, (f"waived until {newest.expires.isoformat()} (end of day UTC), approved by "
                               f"{newest.approved_by}; migration: {newest.link}")
    return Status.DRIFT, (f"waiver expired on {newest.expires.isoformat()} (approved by {newest.approved_by}; "
                          f"migration: {newest.link})")


def apply_outcome(outcome: Outcome, control_id: str, target: str, waivers: Iterable[Waiver],
                  now: datetime) -> Outcome:
    """Waive an Outcome: a waiver on the finding ``target`` covers it all; otherwise, when ``observed`` is keyed
    by violation (the boundary controls), each key needs its own active waiver for the Outcome to be WAIVED."""
    waivers = list(waivers)
    status, reason = apply(outcome.status, control_id, target, waivers, now)
    observed: Any = outcome.observed
    if status is Status.DRIFT and not reason and isinstance(observed, Mapping) and observed:
        results = {key: apply(Status.DRIFT, control_id, str(key), waivers, now) for key in observed}
        open_ = {key: why for key, (st, why) in results.items() if st is Status.DRIFT}
        waived = {key: why for key, (st, why) in results.items() if st is Status.WAIVED}
        status = Status.DRIFT if open_ else Status.WAIVED
        parts = [f"{key}: {why}" if why else f"{key}: not waived" for key, why in open_.items()]
        parts += [f"{key}: {why}" for key, why in waived.items()]
        reason = "; ".join(parts) if waived or any(open_.values()) else ""
    if status is outcome.status and not reason:
        return outcome
    return replace(outcome, status=status, reason="; ".join(r for r in (outcome.reason, reason) if r))


def summary(waivers: Iterable[Waiver], now: datetime) -> dict[str, Any]:
    """``{"active": [...], "expired": [...]}`` as ``control@target`` keys, for reports."""
    day = _utc_day(now)
    items = list(waivers)
    return {"active": [f"{w.control}@{w.target}" for w in items if w.expires >= day],
            "expired": [f"{w.control}@{w.target}" for w in items if w.expires < day]}
