"""Reporters: one module per format behind one interface, chosen by name.

Each reporter is ``render(run: Run) -> str`` plus a file name; ``write_reports`` writes them
atomically (temp file + rename), so a killed run never leaves a truncated report behind.
Example: ``write_reports(run, Path("reports"), ["json", "junit"])``.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from railiance_conformance.run import FeatureText, OutputFailure, Run  # noqa: F401 - re-exported: the reporters' record

if TYPE_CHECKING:
    import threading

# C0 and C1 controls (tab and newline stay: every format handles them), DEL, lone surrogates, the
# noncharacters U+FFFE and U+FFFF (no XML 1.0 Char, §2.2: junit-xml's re-parse raised on them and wrote no
# junit.xml), and the invisible/bidirectional format characters that reorder or hide text ("Trojan Source")
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e"
                     "\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff\ufffe\uffff]")
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
