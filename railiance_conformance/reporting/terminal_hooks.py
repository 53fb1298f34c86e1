"""The suite's end of the terminal: pytest's per-item failure blocks of scenario items give way to the
suite's grouped summary, which ends with the verdict (``reporting.terminal.render_summary``).

pytest writes, at the end of a session, the FAILURES section (one block per failed item), the
"short test summary info" (one line per failed item), then the plugins' terminal summaries, then its
counts line (``_pytest.terminal.TerminalReporter.pytest_terminal_summary`` and ``summary_stats``).
A scenario item that failed because its findings drifted or could not be verified says nothing the
suite's summary does not say better (grouped, only the differing fields), so its report is taken out
of the ``failed`` stats while pytest writes those two sections and put back before the counts line
(the exit status never depends on the stats). With ``-v`` or ``--tb=long``/``--tb=native`` pytest's
full detail stays. A failure of the step code itself (a bug: a traceback) is always shown.
"""
from __future__ import annotations

from typing import Any

from railiance_conformance.reporting import load_reporters
from railiance_conformance.reporting.output import OUTPUT_FAILED

DETAIL_TB = ("long", "native")


def hide_finding_failures(terminalreporter: Any, config: Any, nodeids: set[str]) -> list[Any]:
    """Take the failed reports of ``nodeids`` out of the terminal's ``failed`` stats (unless ``-v`` or
    ``--tb=long``/``native`` asks for pytest's detail); the reports taken, to be put back."""
    if config.option.verbose > 0 or config.option.tbstyle in DETAIL_TB or not nodeids:
        return []
    failed = terminalreporter.stats.get("failed", [])
    hidden = [r for r in failed if getattr(r, "nodeid", None) in nodeids and r.when == "call"]
    if hidden:
        terminalreporter.stats["failed"] = [r for r in failed if r not in hidden]
    return hidden


def write_summary(suite: Any, terminalreporter: Any) -> None:
    """The suite's section: grouped problems, fixes, claims, and the verdict block with where the reports are."""
    from dataclasses import replace

    from railiance_conformance.reporting.terminal import render_summary

    if not suite.recorder.findings and not suite.partial:
        return
    terminalreporter.section("railiance conformance")
    run = replace(suite.run(), claims=suite.claims, coverage=suite.coverage, diff=suite.diff)
    s = suite.settings
    names = ", ".join(load_reporters()[f].filename for f in s.formats)
    reports = f"reports: {suite.output_dir or s.report_dir}/ ({names})" + (f"; history: {s.history}" if s.history else "")
    warnings = [f"NOT WRITTEN {failure} (exit status {OUTPUT_FAILED})" for failure in suite.output_failures]
    if suite.deadline is not None and suite.deadline.expired:
        warnings.append(f"run deadline of {suite.deadline.seconds:g} s exceeded: partial run")
    elif suite.interrupts is not None and suite.interrupts.received:
        warnings.append(f"interrupted by {suite.interrupts.received}: partial run")
    terminalreporter.write(render_summary(run, width=terminalreporter._tw.fullwidth, color=terminalreporter.hasmarkup,
                                          warnings=warnings, reports=reports))
