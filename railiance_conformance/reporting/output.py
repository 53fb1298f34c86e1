"""Write one run's reports and record it in the history so that the two never disagree (``publish``).

The history insert is an open transaction while every format is staged beside its final name; only
when all are staged is it committed and each file renamed over the old one, else it is rolled back and
the reports go to ``fallback_dir(run_id)``; an unusable history does not stop the reports. The order
and each failure's outcome: docs/faults.md ("The suite's own output"). Every failure is an
``OutputFailure`` naming the file and the cause (the plugin's exit status ``OUTPUT_FAILED``).
Example: ``publish(run, Path("reports"), ["json"], Path("reports/history.sqlite")).failures`` -> ``()``.
"""
from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping

from railiance_conformance.reporting import REPORT_MODE, REPORTERS, OutputFailure, Run, atomic_write, load_reporters

OUTPUT_FAILED = 6  # the suite's exit status when a report or the history could not be written
TREND_RUNS = 30    # recorded runs the HTML report's trend shows


@dataclass(frozen=True, slots=True)
class Publication:
    """Where this run's reports ended up, whether the history has it, and what failed."""

    report_dir: Path
    written: tuple[Path, ...]
    recorded: bool
    failures: tuple[OutputFailure, ...]
    run: Run


def fallback_dir(run_id: str) -> Path:
    """Where a run's reports go when the report directory cannot take them:
    ``fallback_dir("ab12")`` -> ``/tmp/railiance-conformance-ab12`` (``$TMPDIR`` honoured)."""
    return Path(tempfile.gettempdir()) / f"railiance-conformance-{run_id}"


def os_cause(exc: BaseException) -> str:
    """``os_cause(OSError(28, "No space left on device"))`` -> ``"No space left on device (ENOSPC)"``."""
    if isinstance(exc, OSError) and exc.errno:
        return f"{exc.strerror or os.strerror(exc.errno)} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return f"{type(exc).__name__}: {exc}"


def _stage(run: Run, directory: Path, names: Iterable[str]) -> tuple[list[tuple[Path, Path]], list[OutputFailure]]:
    """Render and write every format to a temp file beside its final path; (tmp, final) pairs."""
    staged, failures = [], []
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [], [OutputFailure(str(directory), os_cause(exc))]
    for name in names:
        final = directory / REPORTERS[name].filename
        tmp = None
        try:
            text = REPORTERS[name].render(run)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=directory)
            os.fchmod(fd, REPORT_MODE)  # mkstemp makes 0600: a collector running as its own user reads it
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            staged.append((Path(tmp), final))
        except OSError as exc:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            failures.append(OutputFailure(str(final), os_cause(exc)))
    return staged, failures


def _discard(staged: list[tuple[Path, Path]]) -> None:
    for tmp, _ in staged:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _with_failures(run: Run, failures: list[OutputFailure]) -> Run:
    return replace(run, output_failures=tuple(failures))


def _annotate(run: Run, pending) -> Run:
    """The diff against the previous run and each finding's first/last seen, from the history."""
    found = pending.finding_histories(f.key for f in run.findings)
    seen = {f.key: found[f.key] for f in run.findings if f.key in found}
    return replace(run, diff=pending.diff_latest(), history=seen, trend=pending.trend(TREND_RUNS))


def step_summary(run: Run, environ: Mapping[str, str] = os.environ) -> OutputFailure | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub and Gitea Actions
    render that file as the job summary and expect it appended to, never replaced); the failure, if any."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(REPORTERS["markdown"].render(run) + "\n")
    except OSError as exc:
        return OutputFailure(path, os_cause(exc))
    return None


def publish(run: Run, report_dir: Path, names: Iterable[str], history_path: Path | None,
            busy_timeout_s: float = 60.0) -> Publication:
    """Record ``run`` and write its reports (see the module docstring); never raises for I/O."""
    from railiance_conformance.history import History, error_cause
    from railiance_conformance.reporting.features import feature_texts

    load_reporters()
    names = list(names)
    failures: list[OutputFailure] = []
    pending = None
    if history_path is not None:
        try:
            pending = History(history_path, busy_timeout_s).begin_record(run)
            run = _annotate(run, pending)
        except (sqlite3.Error, OSError, ValueError) as exc:
            if pending is not None:
                pending.rollback()
                pending = None
            failures.append(OutputFailure(str(history_path),
                                          error_cause(exc, busy_timeout_s)))
    if run.features is None:  # after the history's insert: the history keeps no copy of the features
        run = replace(run, features=feature_texts(run.findings))
    staged, stage_failures = _stage(_with_failures(run, failures), report_dir, names)
    if not stage_failures and pending is not None:
        try:
            pending.commit()
        except (sqlite3.Error, OSError) as exc:
            failures.append(OutputFailure(str(history_path),
                                          error_cause(exc, busy_timeout_s)))
            _discard(staged)  # the staged reports do not yet say the history failed
            staged, stage_failures = _stage(_with_failures(run, failures), report_dir, names)
        pending = None
    if stage_failures:
        _discard(staged)
        if pending is not None:
            pending.rollback()  # the report directory keeps the previous run: so does the history
            pending = None
            failures.append(OutputFailure(str(history_path), "this run is not recorded: its reports could not "
                                                             f"be written to {report_dir}"))
        failures[:0] = stage_failures
        return _to_fallback(run, names, failures, recorded=False)
    written = []
    for tmp, final in staged:
        try:
            os.replace(tmp, final)
            written.append(final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            failures.append(OutputFailure(str(final), os_cause(exc)))
    recorded = history_path is not None and not any(f.path == str(history_path) for f in failures)
    if (summary := step_summary(_with_failures(run, failures))) is not None:
        failures.append(summary)
    return Publication(report_dir, tuple(written), recorded, tuple(failures), _with_failures(run, failures))


def _to_fallback(run: Run, names: list[str], failures: list[OutputFailure], *, recorded: bool) -> Publication:
    directory = fallback_dir(run.run_id)
    run = _with_failures(run, failures)
    written = []
    for name in names:
        path = directory / REPORTERS[name].filename
        try:
            atomic_write(path, REPORTERS[name].render(run))
            written.append(path)
        except OSError as exc:
            failures.append(OutputFailure(str(path), os_cause(exc)))
    if (summary := step_summary(run)) is not None:
        failures.append(summary)
    return Publication(directory, tuple(written), recorded, tuple(failures), run)
