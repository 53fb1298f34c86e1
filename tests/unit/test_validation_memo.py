"""policy.validate remembers documents a schema found valid (derived_cache): a remembered one is valid without
jsonschema, an invalid one is validated and refused every time, and the memo tells apart what jsonschema
tells apart (1 and True, 1 and 1.0, a list and a tuple)."""
from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance import policy
from railiance_conformance.policy import PolicyError

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "array"},
                                           "c": {"type": "string", "maxLength": 3}},
          "additionalProperties": {"type": ["boolean", "null", "number"]}}


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RAILIANCE_CACHE", raising=False)
    monkeypatch.setattr(policy, "_VALID", None)


def _validator_must_not_run(monkeypatch):
    def refuse(schema_doc):
        raise AssertionError("validated again")
    monkeypatch.setattr(policy, "_validator", refuse)


def test_a_document_found_valid_is_valid_in_the_next_run_without_the_validator(monkeypatch):
    policy.validate({"a": 1, "b": [1]}, SCHEMA, source="s")
    monkeypatch.setattr(policy, "_VALID", None)  # a new process: read from the cache
    _validator_must_not_run(monkeypatch)
    policy.validate({"a": 1, "b": [1]}, SCHEMA, source="s")


def test_an_invalid_document_is_refused_every_time():
    for _ in range(2):
        with pytest.raises(PolicyError, match="a"):
            policy.validate({"a": -1}, SCHEMA, source="s")
    assert policy._known_valid() == set()


@pytest.mark.parametrize("valid, other", [({"a": 1}, {"a": True}), ({"b": [1]}, {"b": (1,)}), ({"x": 1}, {"x": "1"})])
def test_what_jsonschema_tells_apart_the_memo_tells_apart(valid, other):
    policy.validate(valid, SCHEMA, source="s")
    assert policy._valid_key(valid, SCHEMA) != policy._valid_key(other, SCHEMA)
    assert jsonschema.Draft202012Validator(SCHEMA).is_valid(other) is False
    with pytest.raises(PolicyError):
        policy.validate(other, SCHEMA, source="s")


def test_equal_values_of_other_types_are_other_keys():
    """1 and 1.0 are both integers to jsonschema; the memo keeps them apart all the same (never less strict)."""
    assert policy._valid_key({"a": 1}, SCHEMA) != policy._valid_key({"a": 1.0}, SCHEMA)


def test_another_schema_is_another_key():
    policy.validate({"c": "abc"}, SCHEMA, source="s")
    stricter = {**SCHEMA, "properties": {**SCHEMA["properties"], "c": {"type": "string", "maxLength": 2}}}
    with pytest.raises(PolicyError):
        policy.validate({"c": "abc"}, stricter, source="s")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False),
                     st.text(max_size=4))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.tuples(inner), st.dictionaries(st.text(max_size=2), inner, max_size=3)),
                       max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _values, max_size=4))
def test_the_memo_gives_jsonschemas_verdict(document):
    """Validated twice (the second time from the memo when the first found it valid): both verdicts are
    jsonschema's own."""
    expected = jsonschema.Draft202012Validator(SCHEMA).is_valid(document)
    for _ in range(2):
        try:
            policy.validate(document, SCHEMA, source="s")
            verdict = True
        except PolicyError:
            verdict = False
        assert verdict is expected


def test_a_host_with_a_vaulted_value_is_never_remembered(monkeypatch):
    """No digest of a document holding a vault's value is written (a digest of a short secret can be guessed
    offline); the same host without a vaulted value is remembered."""
    from railiance_conformance.targets import HostTarget, validate_targets

    desired = {"operator_user": "tegwick", "swap_file": "/swapfile"}
    validate_targets([HostTarget("h", "ssh://h", desired, secret_keys=frozenset({"operator_user"}))])
    monkeypatch.setattr(policy, "_VALID", None)
    assert not policy._known_valid()
    validate_targets([HostTarget("h", "ssh://h", desired)])
    monkeypatch.setattr(policy, "_VALID", None)
    assert len(policy._known_valid()) == 1
