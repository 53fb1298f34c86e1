"""Turn evaluations into Findings: time them, catch could-not-verify, keep them in order.

Example: ``recorder.evaluate("host.swap.file", "coulombcore", lambda: swap_file(facts, desired))``
-> the recorded ``Finding``. Nothing here knows pytest; the plugin decides what a status means
for the test outcome.
"""
from __future__ import annotations

import functools
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from railiance_conformance.finding import FactUnavailable, Finding, Outcome, Status, UnexpectedOutput
from railiance_conformance.policy import Catalog
from railiance_conformance.redact import MASK, NOT_CONTAINERS, masked_entry, redact, redact_text
from railiance_conformance.remedies import remedy_for_error
from railiance_conformance.waivers import apply_outcome


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class FindingRecorder:
    def __init__(self, catalog: Catalog, waivers: list | None = None):
        self.catalog = catalog
        self.waivers = list(waivers or [])
        self.findings: list[Finding] = []
        self._lock = threading.Lock()

    def evaluate(self, control_id: str, target: str, evaluation: Callable[[], Outcome]) -> Finding:
        """Build the Finding (see ``build``) and record it."""
        return self.add(self.build(control_id, target, evaluation))

    def add(self, finding: Finding) -> Finding:
        """Record a finding built with ``build`` (the run's findings, in order)."""
        with self._lock:
            self.findings.append(finding)
        return finding

    def replace(self, update: Callable[[Finding], Finding]) -> None:
        """Replace each recorded finding by ``update(finding)`` (settle: the last attempt's result), in order."""
        with self._lock:
            self.findings = [update(f) for f in self.findings]

    def build(self, control_id: str, target: str, evaluation: Callable[[], Outcome]) -> Finding:
        """Evaluate one control on one target into a Finding, without recording it: timed, pending when its
        task is not due, any exception an error finding, waivers applied, every value sanitized."""
        control = self.catalog[control_id]
        started_at, started = utc_now(), time.monotonic()
        try:
            # a control whose task is not due yet is pending: reported, never evaluated, never a pass
            outcome = Outcome(Status.PENDING, reason=control.pending) if control.pending else evaluation()
        except FactUnavailable as exc:
            outcome = Outcome.error(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in an evaluator is still a finding, never a gap
            outcome = Outcome.error(describe_exception(exc))
        # still evaluated; a waived drift keeps its observed value. A waiver only ever changes a drift:
        # apply_outcome returns any other Status as it is (it is not asked: the clock and the waivers per finding)
        if self.waivers and not (type(outcome.status) is Status and outcome.status is not Status.DRIFT):
            outcome = apply_outcome(outcome, control_id, target, self.waivers, datetime.now(timezone.utc))
        # an error's fix addresses why it could not verify; the catalog's drift fix only where there is drift
        remediation = _remedy(outcome.reason) if outcome.status is Status.ERROR else control.remediation
        finding = Finding(
            control_id=control.id, title=control.title, task=self.catalog.task_id(control), layer=control.layer,
            severity=control.severity, target=target, status=outcome.status, expected=sanitize(outcome.expected),
            observed=sanitize(outcome.observed), remediation=remediation, reason=sanitize(outcome.reason),
            evidence=sanitize(outcome.evidence), duration_s=round(time.monotonic() - started, 6),
            started_at=started_at)
        return finding


def _remedy(reason: str) -> str:
    """``remedy_for_error(reason)``; the answers for reasons of up to 4096 characters kept (the same reasons
    repeat on every host: "systemd is not running"; 27 regular expressions each, ~25 us)."""
    return _remedy_short(reason) if isinstance(reason, str) and len(reason) <= 4096 else remedy_for_error(reason)


@functools.lru_cache(maxsize=4096)
def _remedy_short(reason: str) -> str:
    return remedy_for_error(reason)


# The modules that parse what a target returned (files, command output, API objects): a ValueError,
# KeyError or IndexError raised there means the target's output did not parse.
PARSER_PACKAGES = (Path(__file__).parent / "resources", Path(__file__).parent / "probes")


def describe_exception(exc: BaseException) -> str:
    """The error reason for an exception an evaluation raised: the target's fault only when its output
    did not parse (``UnexpectedOutput``, or a ValueError/KeyError/IndexError raised inside a parser
    under ``resources/`` or ``probes/``); anything else, a KeyError in an evaluator included, is a bug
    of this suite and says so, with the place it was raised (file:line, no values of the target)."""
    name = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, UnexpectedOutput):
        return f"unexpected output from the target: {exc}"
    frame = _innermost_own_frame(exc)
    if isinstance(exc, (ValueError, KeyError, IndexError)) and frame is not None \
            and any(Path(frame.f_code.co_filename).is_relative_to(p) for p in PARSER_PACKAGES):
        return f"unexpected output from the target (it did not parse): {name}"
    where = ""
    if frame is not None:
        where = f" at {Path(frame.f_code.co_filename).relative_to(Path(__file__).parent.parent).as_posix()}:" \
                f"{_innermost_own_line(exc)}"
    return f"internal error: this is a bug in railiance-conformance ({name}{where}); the target was not judged"


def _own_tracebacks(exc: BaseException) -> list:
    package = Path(__file__).parent
    out, tb = [], exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).is_relative_to(package):
            out.append(tb)
        tb = tb.tb_next
    return out


def _innermost_own_frame(exc: BaseException):
    own = _own_tracebacks(exc)
    return own[-1].tb_frame if own else None


def _innermost_own_line(exc: BaseException) -> int:
    own = _own_tracebacks(exc)
    return own[-1].tb_lineno if own else 0


def sanitize(value: Any) -> Any:
    """The one step every value passes before it becomes part of a Finding.

    Undecodable bytes from a target (kept as surrogate escapes by the fact decoder) become
    visible ``\\xNN`` escapes, then every secret form is masked (``redact.redact``). Shapes are
    kept: dicts stay dicts (keys escaped too), tuples tuples, lists lists.
    """
    # One walk for the common shapes (what redact(_escape_bytes(value)) gives, see sanitize_two_walks): scalars,
    # strings, exact tuples and lists, and dicts whose keys are ASCII strings (escaping leaves them as they are,
    # so no two keys can become one). Anything else takes the two walks.
    kind = type(value)
    if kind in NOT_CONTAINERS:
        return value
    if kind is str:
        return redact_text(value if value.isascii() else _escape_bytes(value))
    if kind is tuple:
        return tuple([v if type(v) in NOT_CONTAINERS else sanitize(v) for v in value])
    if kind is list:
        return [v if type(v) in NOT_CONTAINERS else sanitize(v) for v in value]
    if kind is dict and all(type(k) is str and k.isascii() for k in value):
        # a value is masked or not alike before and after _escape_bytes (it keeps None, "", "***" and the
        # container kinds the test looks at): the test can look at the value as it comes
        return {k: MASK if masked_entry(k, v) else v if type(v) in NOT_CONTAINERS else sanitize(v)
                for k, v in value.items()}
    return sanitize_two_walks(value)


def sanitize_two_walks(value: Any) -> Any:
    """``sanitize`` as its definition: the bytes escaped in one walk, then the secrets masked in another."""
    return redact(_escape_bytes(value))



def _escape_bytes(value: Any) -> Any:
    kind = type(value)
    if kind in NOT_CONTAINERS:
        return value
    if kind is tuple:  # the exact built-in containers first (evidence is a tuple of pairs): as the branches below
        return tuple([v if type(v) in NOT_CONTAINERS else _escape_bytes(v) for v in value])
    if kind is list:
        return [v if type(v) in NOT_CONTAINERS else _escape_bytes(v) for v in value]
    if isinstance(value, str):
        if value.isascii():  # no surrogate escape in it: the encode below would succeed
            return value
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_escape_bytes(k): _escape_bytes(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_escape_bytes(v) for v in value)
    if isinstance(value, list):
        return [_escape_bytes(v) for v in value]
    return value


def describe(finding: Finding) -> str:
    """One line for a test failure message: what was expected, what was seen, how to fix."""
    if finding.status is Status.ERROR:
        return f"{finding.control_id} on {finding.target}: could not verify: {finding.reason}"
    text = (f"{finding.control_id} on {finding.target}: {finding.status.value}: "
            f"expected {finding.expected!r}, observed {finding.observed!r}")
    if finding.reason:
        text += f" ({finding.reason})"
    return f"{text}; fix: {finding.remediation}"
