"""The one immutable result record every reporter reads.

Example: ``Finding(control_id="host.swap.file", target="coulombcore", status=Status.DRIFT, ...)``
"""
from __future__ import annotations

import contextlib
import enum
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Iterator

from railiance_conformance.expectations import matches


class FactUnavailable(Exception):
    """A fact could not be read (permission denied, command missing, host unreachable): the control
    is reported as an error finding (could not verify) with this message as its reason."""


class Status(str, enum.Enum):
    """What a control evaluation concluded; ``ERROR`` means *could not verify*."""

    PASS = "pass"
    DRIFT = "drift"
    ERROR = "error"
    WAIVED = "waived"
    PENDING = "pending"

    @property
    def loudness(self) -> int:
        """Rank in ``LOUDEST_FIRST`` counted from the quiet end: ``Status.DRIFT.loudness`` -> 4,
        ``Status.PASS.loudness`` -> 0. ``max(statuses, key=lambda s: s.loudness)`` is the worst."""
        return len(LOUDEST_FIRST) - 1 - LOUDEST_FIRST.index(self)

    @property
    def holds(self) -> bool:
        """True for PASS and WAIVED: the control holds, or a waiver accepts that it does not.
        ``Status.PENDING.holds`` -> False (not verified yet)."""
        return self in (Status.PASS, Status.WAIVED)


# The one status order of the suite, loudest first: what a reader must see first, and which status
# wins when one control is recorded twice on one target. Drift (known wrong) before could-not-verify
# (unknown), then pending (not due), waived (accepted), pass. Every reporter, the history, the claims
# table and the gate use it.
LOUDEST_FIRST: tuple[Status, ...] = (Status.DRIFT, Status.ERROR, Status.PENDING, Status.WAIVED, Status.PASS)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an evaluator returns: plain data, no pytest, no control metadata."""

    status: Status
    expected: Any = None
    observed: Any = None
    reason: str = ""
    evidence: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def compare(cls, expected: Any, observed: Any, *, evidence: dict[str, Any] | None = None,
                reason: str = "") -> "Outcome":
        """``Outcome.compare(4, 2)`` -> DRIFT; equal values -> PASS; ``{"between": [1, 3]}`` vs 3 -> PASS
        (allowed ranges and sets: ``railiance_conformance.expectations``)."""
        status = Status.PASS if matches(expected, observed) else Status.DRIFT
        return cls(status, expected, observed, reason, tuple((evidence or {}).items()))

    @classmethod
    def error(cls, reason: str, *, expected: Any = None) -> "Outcome":
        """A check that could not run: ``Outcome.error("ssh: connection refused")``."""
        return cls(Status.ERROR, expected, None, reason)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copied(value: Any) -> Any:
    """``value`` with its dicts, lists and tuples copied (same types), its scalars as they are."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    # the exact built-in containers first (what the evaluators return): the same copies as the general
    # branches below give them, without a generator per container
    if kind is dict:
        return {k: v if type(v) in _SCALARS else _copied(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _SCALARS else _copied(v) for v in value]
    if kind is tuple:
        return tuple([v if type(v) in _SCALARS else _copied(v) for v in value])
    if isinstance(value, dict):
        return type(value)((k, _copied(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_copied(v) for v in value)
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


@dataclass(frozen=True, slots=True)
class Finding:
    """One control evaluated on one target; reporters only ever read these."""

    control_id: str
    title: str
    task: str
    layer: str
    severity: str
    target: str
    status: Status
    expected: Any
    observed: Any
    remediation: str
    reason: str = ""
    evidence: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    duration_s: float = 0.0
    started_at: str = ""

    @property
    def key(self) -> str:
        """Stable identity across runs: ``host.swap.file@coulombcore``."""
        return f"{self.control_id}@{self.target}"

    def to_dict(self) -> dict[str, Any]:
        """The fields by name, as ``dataclasses.asdict`` gives them (containers copied, of the same type),
        without its deepcopy of every leaf: a finding's leaves are immutable scalars (asdict was 14% of
        the client's CPU in a 100-host run)."""
        data = {name: value if type(value := getattr(self, name)) in _SCALARS or name in _OWN_FORM else _copied(value)
                for name in _FIELD_NAMES}
        data["status"] = self.status.value  # in the fields' place: the dict keeps the order of its first keys
        data["evidence"] = {key: value if type(value) in _SCALARS else _copied(value) for key, value in self.evidence}
        return data


# Finding's fields in their order (dataclasses.fields(Finding), read once)
_FIELD_NAMES = tuple(f.name for f in fields(Finding))
_OWN_FORM = frozenset({"status", "evidence"})  # to_dict writes these itself


class UnexpectedOutput(ValueError):
    """What a target returned could not be parsed (a corrupt file, an unknown format, a truncated
    answer): the control could not be verified, and the target, not the suite, is the thing to check.
    ``UnexpectedOutput("the passwd entry of tegwick", "3 fields, expected 7")``."""

    def __init__(self, what: str, problem: str):
        self.what, self.problem = what, problem
        super().__init__(f"{what}: {problem}")


@contextlib.contextmanager
def target_output(what: str) -> Iterator[None]:
    """Parse a target's output inside this block: a ValueError, KeyError or IndexError raised in it
    becomes ``UnexpectedOutput(what, ...)``. Outside such a block (and outside the parsers under
    ``resources/`` and ``probes/``) the same exceptions are bugs of the suite (``recorder.build``)."""
    try:
        yield
    except UnexpectedOutput:
        raise
    except (ValueError, KeyError, IndexError) as exc:
        raise UnexpectedOutput(what, f"{type(exc).__name__}: {exc}") from exc
