"""Finding.to_dict gives what its previous definition gave (every field by name, containers copied with their
types, a dataclass as asdict gives it, a namedtuple kept), on generated values (hypothesis)."""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from dataclasses import asdict, dataclass, fields, is_dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.finding import Finding, Status


def _copied_before(value):
    if type(value) in {str, int, float, bool, type(None)}:
        return value
    if isinstance(value, dict):
        return type(value)((k, _copied_before(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_copied_before(v) for v in value)
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def to_dict_before(finding: Finding) -> dict:
    data = {f.name: _copied_before(getattr(finding, f.name)) for f in fields(finding)}
    data["status"] = finding.status.value
    data["evidence"] = {key: _copied_before(value) for key, value in finding.evidence}
    return data


@dataclass(frozen=True)
class Port:
    number: int
    names: tuple


Pair = namedtuple("Pair", "a b")
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3).map(OrderedDict)
    | st.builds(Port, st.integers(), st.tuples(inner)) | st.builds(Pair, inner, inner), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(VALUES, VALUES, st.dictionaries(st.text(max_size=3), VALUES, max_size=3), st.sampled_from(list(Status)))
def test_to_dict_is_the_previous_definition(expected, observed, evidence, status):
    finding = Finding("c.x", "title", "T01", "S1", "high", "t", status, expected, observed, "fix",
                      evidence=tuple(evidence.items()), duration_s=0.5, started_at="2026-12-05T00:00:00Z")
    now, before = finding.to_dict(), to_dict_before(finding)
    assert now == before and list(now) == list(before)
    assert repr(now) == repr(before)  # the same container types (an OrderedDict stays one, a tuple a tuple)
