"""recorder.sanitize walks a value once for the common shapes; what it gives is its definition's answer,
redact(_escape_bytes(value)), on generated values: secret-named keys (masked or walked), "***", empty and
None values, undecodable bytes as surrogate escapes in values and keys (two keys escaping alike), non-ASCII
and non-string keys, namedtuples, OrderedDicts, and credentials in text."""
from __future__ import annotations

from collections import OrderedDict, namedtuple

from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.recorder import sanitize, sanitize_two_walks

Pair = namedtuple("Pair", "a b")
TEXT = st.sampled_from(["", "***", "plain", "caf\udce9", "caf\\xe9", "é", "https://u:hunter2@h/x", "password=hunter2",
                        "Bearer abcdefghijkl", "0600"]) | st.text(max_size=6)
KEYS = st.sampled_from(["password", "api_token", "secret", "Password", "mode", "name", "caf\udce9", "caf\\xe9",
                        "pässword"]) | st.integers(-2, 2) | st.text(max_size=4)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                      | st.dictionaries(KEYS, inner, max_size=4)
                      | st.dictionaries(KEYS, inner, max_size=3).map(OrderedDict)
                      | st.builds(Pair, inner, inner), max_leaves=12)


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_one_walk_gives_the_two_walks_answer(value):
    now, before = sanitize(value), sanitize_two_walks(value)
    assert now == before
    assert repr(now) == repr(before)  # the same container types and key order
