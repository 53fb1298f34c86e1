"""Identical findings across targets as one group, the run's verdict, and the natural order of targets.

Every human-facing format (terminal, summary.md, report.html) shows a group once, naming its targets;
the machine formats (findings.json, junit.xml: one case per control@target) keep one record each.

* a **drift group** is one control whose differing fields (``reporting.diff``) and reason are the same
  on every target in it: ``host.swap.file drifted on 20 hosts — mode: 0600 → 0644``;
* a **cause group** (could not verify) is one reason and the controls it stopped, per target, targets
  with the same controls and reason merged: ``stopped: 18 controls, connection refused``.

Targets sort naturally (``ns-drifted2`` before ``ns-drifted10``): ``natural_key``.
Example: ``[(g.control_id, g.targets) for g in drift_groups(findings)]`` -> ``[("host.swap.file", ["h1", "h2"])]``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting.diff import finding_diff
from railiance_conformance.run import CONFORMANT, DRIFT, UNVERIFIED, Run, verdict_of  # noqa: F401 - verdicts re-exported

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: ``sorted(["h10", "h2"], key=natural_key)`` -> ``["h2", "h10"]``."""
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part.lower()) for part in _DIGITS.split(str(text)))


def natural_sorted(texts: Iterable[str]) -> list[str]:
    return sorted(texts, key=natural_key)


@dataclass(frozen=True, slots=True)
class DriftGroup:
    """One control drifted the same way on ``targets`` (naturally sorted)."""

    control_id: str
    changes: tuple[str, ...]          # ``field: expected → observed`` lines (plain text, not yet inert)
    reason: str
    findings: tuple[Finding, ...]

    @property
    def targets(self) -> list[str]:
        return natural_sorted(f.target for f in self.findings)

    @property
    def first(self) -> Finding:
        return self.findings[0]



@dataclass(frozen=True, slots=True)
class CauseGroup:
    """Controls that could not be verified for one reason on ``targets``."""

    reason: str
    controls: tuple[str, ...]
    targets: tuple[str, ...]
    findings: tuple[Finding, ...]


def drift_groups(findings: Sequence[Finding]) -> list[DriftGroup]:
    """The drifted findings grouped by control, differing fields and reason, largest group of a control
    first; controls in (layer, task, control id) order."""
    buckets: dict[tuple, list[Finding]] = {}
    for f in findings:
        if f.status is Status.DRIFT:
            diff = finding_diff(f)
            buckets.setdefault((f.control_id, tuple(diff.lines()) or (f"values: {f.observed!r}",), f.reason), []).append(f)
    groups = [DriftGroup(cid, changes, reason, tuple(sorted(fs, key=lambda f: natural_key(f.target))))
              for (cid, changes, reason), fs in buckets.items()]
    return sorted(groups, key=lambda g: (g.first.layer, g.first.task, g.control_id, -len(g.findings),
                                         natural_key(g.targets[0])))


def cause_groups(findings: Sequence[Finding]) -> list[CauseGroup]:
    """Could-not-verify findings per target and reason, then targets with the same controls and reason
    merged; the most findings first."""
    per_target: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        if f.status is Status.ERROR:
            per_target.setdefault((f.target, f.reason), []).append(f)
    merged: dict[tuple[str, tuple[str, ...]], list[tuple[str, list[Finding]]]] = {}
    for (target, reason), fs in per_target.items():
        controls = tuple(sorted({f.control_id for f in fs}))
        merged.setdefault((reason, controls), []).append((target, fs))
    groups = []
    for (reason, controls), entries in merged.items():
        targets = tuple(natural_sorted(t for t, _ in entries))
        groups.append(CauseGroup(reason, controls, targets, tuple(f for _, fs in entries for f in fs)))
    return sorted(groups, key=lambda g: (-len(g.findings), natural_key(g.targets[0]), g.reason))


def target_list(targets: Sequence[str], limit: int = 6) -> str:
    """``a, b, c`` or, past ``limit``, the first and last few: ``ns1, ns2, ns3 … ns20 (20)``."""
    targets = list(targets)
    if len(targets) <= limit:
        return ", ".join(targets)
    head = limit // 2
    return f"{', '.join(targets[:head])} … {', '.join(targets[-(limit - head - 1):])} ({len(targets)})"


@dataclass(frozen=True, slots=True)
class Streak:
    """A finding's current drift streak: the first run of it (id and start time) and its length in runs;
    ``at_least`` when the streak is older than the recorded trend window."""

    run_id: str
    started_at: str
    runs: int
    at_least: bool = False


def drifting_since(run: Run, key: str) -> Streak | None:
    """The first run of ``key``'s current drift streak, from ``Run.trend`` (this run is its last entry);
    ``Run.history``'s streak length when the trend window is shorter than the streak. None when the key
    is not drifting now or there is no trend."""
    trend = run.trend
    if trend is None or not trend.runs:
        return None
    statuses = list(trend.statuses.get(key, ()))
    if not statuses or statuses[-1] != "drift":
        return None
    first = len(statuses) - 1
    while first > 0 and statuses[first - 1] == "drift":
        first -= 1
    runs = len(statuses) - first
    seen = (run.history or {}).get(key)
    if first == 0 and seen is not None and seen.consecutive_drift > runs:  # older than the trend window
        return Streak(trend.runs[first].run_id, trend.runs[first].started_at, seen.consecutive_drift, True)
    return Streak(trend.runs[first].run_id, trend.runs[first].started_at, runs, False)


def clip(text: str, limit: int, where: str = "findings.json") -> str:
    """``text`` cut to about ``limit`` characters at a word or field boundary (a blank or one of ``,;|``),
    never inside a word, with a marker naming where the whole value is:
    ``clip("hard 4096 soft 512", 10)`` -> ``"hard 4096 … (cut; whole in findings.json)"``."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind(c) for c in " ,;|\n")
    head = head[:cut] if cut > limit // 3 else head
    return head.rstrip(" ,;|\n") + f" … (cut; whole in {where})"
