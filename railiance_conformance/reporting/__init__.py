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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from railiance_conformance.finding import Finding, Status


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
class Run:
    """One run of the suite: when, against what, and every Finding in order."""

    run_id: str
    started_at: str
    finished_at: str
    findings: tuple[Finding, ...]
    targets: tuple[str, ...] = ()
    partial: bool = False
    meta: Mapping[str, object] = field(default_factory=dict)  # workplan, diff against the previous run

    def counts(self) -> dict[str, int]:
        counter = Counter(f.status.value for f in self.findings)
        return {status.value: counter.get(status.value, 0) for status in Status}

    def changes(self) -> dict[str, int] | None:
        """How many findings changed since the previous run (from ``meta["diff"]``), or None."""
        diff = self.meta.get("diff")
        if not isinstance(diff, dict):
            return None
        return {name: len(diff.get(name, [])) for name in ("new_drift", "fixed", "persisting", "status_changes")}


@dataclass(frozen=True, slots=True)
class Reporter:
    name: str
    filename: str
    render: Callable[[Run], str]


REPORTERS: dict[str, Reporter] = {}


def register(reporter: Reporter) -> Reporter:
    REPORTERS[reporter.name] = reporter
    return reporter


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
        html_report, json_report, junit_report, markdown_report, policyreport_report, prometheus_report)

    return REPORTERS


def write_reports(run: Run, directory: Path, names: Iterable[str]) -> list[Path]:
    load_reporters()
    written = []
    for name in names:
        reporter = REPORTERS[name]
        path = directory / reporter.filename
        atomic_write(path, reporter.render(run))
        written.append(path)
    return written
