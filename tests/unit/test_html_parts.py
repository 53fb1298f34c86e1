"""report.html's escape() and value_html() keep their answers for one page: what they return is what the
uncached definitions return, whatever came before in the same page (generated values: lists and tuples,
int and str keys, text with markup and control characters, which print alike in JSON or after escaping)."""
from __future__ import annotations

import json
from html import escape as html_escape

from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.reporting import printable
from railiance_conformance.reporting.html_parts import escape, forget, value_html

TEXT = st.text(st.sampled_from(["a", "1", "<", "&", '"', "\\", "\x1b", "\u202e", "é"]), max_size=6)
VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | TEXT,
                      lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                      | st.dictionaries(TEXT, inner, max_size=3) | st.dictionaries(st.integers(-3, 3), inner, max_size=3),
                      max_leaves=8)


def value_html_uncached(value) -> str:
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True, default=str)
    return f"<pre>{html_escape(printable(text))}</pre>"


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=8), st.lists(TEXT | st.integers(), max_size=8))
def test_answers_within_a_page_are_the_uncached_ones(values, texts):
    forget()
    try:
        for value in values * 2:  # each value again, after the others: answered from what was kept
            assert value_html(value) == value_html_uncached(value)
        for text in texts * 2:
            assert escape(text) == html_escape(printable(str(text)))
    finally:
        forget()
