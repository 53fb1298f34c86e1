"""-k selects hosts as pytest's own -k would: keyword_match's reading of the grammar equals pytest's
(_pytest.mark.expression.Expression, the real component) on generated expressions and names, and
item_names gives the names pytest's KeywordMatcher.from_item gives for a real collected item."""
from __future__ import annotations

import textwrap

import pytest
from _pytest.mark import KeywordMatcher
from _pytest.mark.expression import Expression
from hypothesis import given, settings
from hypothesis import strategies as st

from railiance_conformance.keyword_match import item_names, keyword_matches, selected_hosts

pytest_plugins = ["pytester"]

WORDS = ["swap", "coulomb", "core", "legacy01", "T01", "S1", "host.swap.file", "a-b", "x/y", "and", "or", "not"]
NAMES = st.sets(st.sampled_from(["swap", "coulombcore", "legacy01", "T01", "S1", "host.swap.file", "a-b",
                                 "x/y", "android", "ORACLE", "notice"]), max_size=5)


def expressions(depth: int = 3) -> st.SearchStrategy[str]:
    name = st.sampled_from([w for w in WORDS if w not in ("and", "or", "not")] + ["SWAP", "oid", "tic"])
    return st.recursive(name, lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"({a})", inner)), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(expressions(), NAMES)
def test_the_expression_is_read_as_pytest_reads_it(expression, names):
    matcher = KeywordMatcher(frozenset(names))
    assert keyword_matches(expression, lambda word: any(word.lower() in n.lower() for n in names)) \
        == Expression.compile(expression).evaluate(matcher)


@pytest.mark.parametrize("expression", ["swap and", "(swap", "swap)", "and swap", "swap swap", "sw@p"])
def test_a_malformed_expression_is_refused_as_pytest_refuses_it(expression):
    with pytest.raises(SyntaxError):  # pytest 9 raises SyntaxError for a malformed -k
        Expression.compile(expression)
    with pytest.raises(ValueError, match="-k"):
        keyword_matches(expression, lambda word: True)


def test_item_names_are_pytests_and_hosts_are_selected_by_name(pytester):
    pytester.makepyfile(test_swap=textwrap.dedent("""
        import pytest

        @pytest.mark.hosts
        def test_swap_file():
            pass
        test_swap_file.extra = 1
    """))
    items, _ = pytester.inline_genitems()
    [item] = items
    assert item_names(item) == set(KeywordMatcher.from_item(item)._names)
    hosts = ["coulombcore", "legacy01", "ampere"]
    assert selected_hosts(item, hosts, "swap and not legacy01") == ["coulombcore", "ampere"]
    assert selected_hosts(item, hosts, "core or amp") == ["coulombcore", "ampere"]
    assert selected_hosts(item, hosts, "") == hosts
    assert selected_hosts(item, hosts, "nothing") == []
