"""Reporters: one module per format behind one interface, chosen by name.

Each reporter is ``render(run: Run) -> str`` plus a file name; ``write_reports`` writes them
atomically (temp file + rename), so a killed run never leaves a truncated report behind.
Example: ``write_reports(run, Path("reports"), ["json", "junit"])``.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from railiance_conformance.finding import Finding, Status

if TYPE_CHECKING:  # for the annotations only: the modules that make the parts are never imported here
    # (history imports this one); reporters only read the parts' attributes
    import threading

    from railiance_conformance.claims import Claim
    from railiance_conformance.coverage import TaskCoverage
    from railiance_conformance.gate.cutover import GateVerdict
    from railiance_conformance.history import FindingHistory, RunDiff, Trend


# C0 and C1 controls (tab and newline stay: every format handles them), DEL, lone surrogates,
# and the invisible/bidirectional format characters that reorder or hide text ("Trojan Source")
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e"
                     "\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]")
_NAMED = {"\r": "\\r", "\x1b": "\\x1b"}


def printable(text: str) -> str:
    """Text from a target made inert for a terminal or a document: every control, bidi and
    invisible character shown as its escape, ``printable("a\x1b[31mb\r")`` -> ``"a\\x1b[31mb\\r"``
    (tab and newline are kept). Each format then applies its own escaping (markup, HTML, Markdown)."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: _NAMED.get(m[0]) or (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                                     else f"\\u{ord(m[0]):04x}"), text)


@dataclass(frozen=True, slots=True)
class OutputFailure:
    """A report or the history that could not be written, and why:
    ``OutputFailure("reports/findings.json", "No space left on device (ENOSPC)")``."""

    path: str
    cause: str

    def __str__(self) -> str:
        return f"{self.path}: {self.cause}"


@dataclass(frozen=True, slots=True)
class FeatureText:
    """Where a control's desired state is stated: its scenario, its Then sentence and ``file:line``.
    ``FeatureText("host.swap.file — ...", "/swapfile is a regular file of 4 GiB, ...",
    "features/S1/T01-swapfile.feature:14")``."""

    scenario: str
    sentence: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"scenario": self.scenario, "sentence": self.sentence, "source": self.source}


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the suite: when, against what, every Finding in order, and what else the
    reports show. Every reporter reads only this record. Each optional part is None when it does
    not apply to the run (no workplan given, not a gate run, no history) and is made by its own
    module: ``claims`` by ``claims.claims_table``, ``gate`` by ``gate.cutover.GateResult.verdict``,
    ``diff``, ``history`` and ``trend`` by ``history.History`` and ``features`` by
    ``reporting.features.feature_texts`` (both added in ``reporting.output.publish``).
    Example: ``Run("ab12", "2026-11-27T03:27:00Z", "2026-11-27T03:27:05Z", findings, ("ampere",))``.
    """

    run_id: str
    started_at: str                    # ISO 8601, UTC
    finished_at: str
    findings: tuple[Finding, ...]
    targets: tuple[str, ...] = ()
    partial: bool = False              # interrupted before every control was evaluated
    workplan: str | None = None        # the workplan id, "RAIL-HO-WP-0004"
    # host name -> how it was reached (targets.HostTarget.connection_evidence; never a secret)
    connections: Mapping[str, Mapping[str, Any]] | None = None
    deadline: str | None = None        # why a partial run stopped, "run deadline of 300 s exceeded: ..."
    claims: tuple[Claim, ...] | None = None       # the workplan's claims, loudest first (--workplan)
    gate: GateVerdict | None = None               # a cutover gate run's verdict
    diff: RunDiff | None = None                   # against the previous run in the history
    history: Mapping[str, FindingHistory] | None = None   # finding key -> its past, from the history
    output_failures: tuple[OutputFailure, ...] = ()          # what of this run's own output failed
    trend: Trend | None = None                    # the last recorded runs, this one included (history.Trend)
    features: Mapping[str, FeatureText] | None = None        # control id -> the feature sentence stating it
    # per workplan task, each Done-when clause's state in this run (coverage.coverage_table; --workplan)
    coverage: tuple[TaskCoverage, ...] | None = None

    def counts(self) -> dict[str, int]:
        """Findings per status, every status (zero included), in ``Status`` order."""
        counter = Counter(f.status for f in self.findings)
        return {status.value: counter.get(status, 0) for status in Status}

    def verdict(self) -> str:
        """``conformant``, ``drift`` or ``could not verify`` (``reporting.groups.verdict_of``)."""
        from railiance_conformance.reporting.groups import verdict_of

        return verdict_of(self.counts(), self.partial)

    def changes(self) -> dict[str, int] | None:
        """How many findings changed since the previous run, or None without a diff:
        ``{"new_drift": 1, "fixed": 0, "persisting": 2, "status_changes": 1}``."""
        if self.diff is None:
            return None
        return {name: len(getattr(self.diff, name)) for name in ("new_drift", "fixed", "persisting", "status_changes")}

    def one_per_key(self) -> list[Finding]:
        """One finding per ``control_id@target``, the loudest (``Status.loudness``) when a control
        was recorded twice on one target, in key order."""
        chosen: dict[str, Finding] = {}
        for finding in self.findings:
            if finding.key not in chosen or finding.status.loudness > chosen[finding.key].status.loudness:
                chosen[finding.key] = finding
        return [chosen[key] for key in sorted(chosen)]

    def details(self) -> dict[str, Any]:
        """The optional parts as plain JSON data, in a fixed order, parts that do not apply left
        out: ``{"workplan": "RAIL-HO-WP-0004", "connections": {...}, "diff": {...}}``. The JSON
        report's ``run`` object (findings.schema.json) and the history's ``runs.meta`` column."""
        parts: dict[str, Any] = {}
        if self.workplan is not None:
            parts["workplan"] = self.workplan
        if self.connections is not None:
            parts["connections"] = {name: dict(how) for name, how in self.connections.items()}
        if self.deadline is not None:
            parts["deadline"] = self.deadline
        if self.claims is not None:
            parts["claims"] = [claim.to_dict() for claim in self.claims]
        if self.gate is not None:
            parts["gate"] = self.gate.to_dict()
        if self.diff is not None:
            parts["diff"] = self.diff.to_dict()
        if self.history is not None:
            parts["history"] = {key: seen.to_dict() for key, seen in self.history.items()}
        if self.output_failures:
            parts["output_failures"] = [str(failure) for failure in self.output_failures]
        if self.trend is not None:
            parts["trend"] = self.trend.to_dict()
        if self.features is not None:
            parts["features"] = {control_id: text.to_dict() for control_id, text in self.features.items()}
        if self.coverage is not None:
            parts["coverage"] = [row.to_dict() for row in self.coverage]
        return parts


@dataclass(frozen=True, slots=True)
class Reporter:
    name: str
    filename: str
    render: Callable[[Run], str]


REPORTERS: dict[str, Reporter] = {}


def register(reporter: Reporter) -> Reporter:
    REPORTERS[reporter.name] = reporter
    return reporter


# Reports are written 0644, as a plain open() under the usual umask 022 makes them: node_exporter's textfile
# collector (its own user) must read railiance_conformance.prom; no report holds a secret value (redact.py).
REPORT_MODE = 0o644


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode ``REPORT_MODE``) so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, REPORT_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_reporters() -> dict[str, Reporter]:
    """Every format, by name: json, junit, markdown, html, prometheus, policyreport."""
    from railiance_conformance.reporting import (  # noqa: F401  (each module registers itself)
        html_report,
        json_report,
        junit_report,
        markdown_report,
        policyreport_report,
        prometheus_report,
    )

    return REPORTERS


# The libraries a format renders with, imported when it is written (besides the reporter modules)
FORMAT_LIBRARIES = {"junit": ("junit_xml",), "html": ("pygal", "pygal.style"), "prometheus": ("prometheus_client",)}
# what every run's end uses whatever the formats: the history, the feature texts, the terminal summary
RUN_END_MODULES = ("railiance_conformance.history", "railiance_conformance.reporting.output",
                   "railiance_conformance.reporting.features", "railiance_conformance.reporting.terminal")


def warm_up(names: Iterable[str]) -> "threading.Thread":
    """Import, in a daemon thread, what the end of the run will need to write the formats ``names``:
    the reporters, their libraries (``FORMAT_LIBRARIES``) and ``RUN_END_MODULES``. Nothing is rendered
    or written. A run spends most of its time waiting on SSH or the API, which releases the GIL, so
    these imports (about 0.1 s: pygal, prometheus_client, rich, ...) move out of the run's tail. An
    import that fails here is left for the report writer to raise where it is handled. Returns the
    thread (started)."""
    import importlib
    import threading

    modules = [*RUN_END_MODULES, *(m for name in names for m in FORMAT_LIBRARIES.get(name, ()))]

    def run() -> None:
        try:
            load_reporters()
        except Exception:  # noqa: BLE001 - raised again, and reported, when the reports are written
            pass
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - as above
                pass

    thread = threading.Thread(target=run, name="report-warm-up", daemon=True)
    thread.start()
    return thread


def write_reports(run: Run, directory: Path, names: Iterable[str]) -> list[Path]:
    load_reporters()
    written = []
    for name in names:
        reporter = REPORTERS[name]
        path = directory / reporter.filename
        atomic_write(path, reporter.render(run))
        written.append(path)
    return written
