"""The report encoder (reporting.encode) against the standard library: the same values from json.loads
and from a YAML parser, on generated JSON-like values (hypothesis)."""
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.reporting.encode import json_text, yaml_json_text

pytestmark = pytest.mark.unit

# every code point but lone surrogates (not encodable as UTF-8; the recorder escapes them before a finding exists)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
SCALARS = st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | TEXT
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                      max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_json_text_reads_back_as_the_standard_library_writes(value):
    text = json_text(value)
    assert text.isascii()
    assert json.loads(text) == json.loads(json.dumps(value, indent=2))


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_yaml_json_text_is_yaml_with_the_same_values(value):
    text = yaml_json_text(value)
    assert text.isascii()
    loaded = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert loaded == json.loads(json.dumps(value))
    assert yaml.safe_load(text) == loaded  # the pure-Python parser reads the same


def test_astral_characters_are_one_code_point_in_yaml():
    # a JSON surrogate pair would be read by YAML parsers as two code points
    assert yaml_json_text("😀") == '"\\U0001f600"' and yaml.safe_load(yaml_json_text("😀")) == "😀"
    assert json_text("😀") == '"\\ud83d\\ude00"' and json.loads(json_text("😀")) == "😀"


def test_values_json_has_no_type_for_are_their_text_as_the_standard_library_writes_them():
    import dataclasses
    import datetime
    import enum
    from pathlib import Path

    @dataclasses.dataclass
    class Stat:
        mode: str

    class Level(str, enum.Enum):
        HIGH = "high"

    value = {"p": Path("/x"), 3: "int key", "when": datetime.datetime(2026, 12, 5, 3, 0, tzinfo=datetime.timezone.utc),
             "day": datetime.date(2026, 1, 2), "stat": Stat("0600"), "level": Level.HIGH}
    assert json.loads(json_text(value)) == json.loads(json.dumps(value, default=str))
    assert json.loads(json_text(value))["when"] == "2026-12-05 03:00:00+00:00"


def _has_float_recursive(value) -> bool:  # the definition the one-walk version replaced
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float_recursive(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_float_recursive(v) for v in value)
    return False


ANY_VALUES = st.recursive(SCALARS | st.floats() | st.tuples(SCALARS),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4)
                          | st.tuples(inner, inner), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(ANY_VALUES)
def test_has_float_answers_as_the_recursive_definition(value):
    from railiance_conformance.reporting.encode import _has_float

    assert _has_float(value) is _has_float_recursive(value)


@settings(max_examples=400, deadline=None)
@given(ANY_VALUES | st.sampled_from([True, False, None, 0, -1, 2**70]))
def test_a_policyreport_property_text_is_json_dumps(value):
    from railiance_conformance.reporting.policyreport_report import text

    assert text(value) == (value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))


# Every code point class the escaping treats differently: ASCII, DEL, U+0080..U+00FF, the rest of the BMP, past it.
MIXED = st.text(st.sampled_from(["a", "x", '"', "\\", "\x7f", "\x85", "é", "ÿ", "Ā", "—", "\u202e", "\ufffd",
                                 "\U0001f600", "\U0010ffff"]) | st.characters(blacklist_categories=("Cs",)), max_size=20)
MIXED_VALUES = st.recursive(SCALARS | MIXED, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(MIXED, inner, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(MIXED_VALUES)
def test_the_escaping_fast_path_writes_what_the_regex_wrote(value):
    import re

    from railiance_conformance.reporting.encode import _encode, _yaml_escape

    text = _encode(value)  # the previous definitions: every non-ASCII character through the regex
    assert json_text(value) == re.sub(r"[^\x00-\x7f]", lambda m: json.dumps(m.group())[1:-1], text)
    if not _has_float_recursive(value):
        assert yaml_json_text(value) == re.sub(r"[^\x00-\x7e]", _yaml_escape, text)
