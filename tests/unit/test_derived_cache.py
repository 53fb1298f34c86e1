"""The cache of what is derived from unchanged files (derived_cache): reused while the files are the same,
derived again when one changes, never a cached error, off with RAILIANCE_CACHE=0."""
from __future__ import annotations

import pytest

from railiance_conformance import derived_cache


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RAILIANCE_CACHE", raising=False)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.yaml").write_text("a: 1\n")
    return tmp_path / "in"


def test_reused_while_the_files_are_unchanged_and_derived_again_when_one_changes(inputs):
    calls = []

    def derive():
        calls.append(1)
        return {"read": (inputs / "a.yaml").read_text()}
    assert derived_cache.cached("t", [inputs], derive) == {"read": "a: 1\n"}
    assert derived_cache.cached("t", [inputs], derive) == {"read": "a: 1\n"} and len(calls) == 1
    (inputs / "a.yaml").write_text("a: 2\n")
    assert derived_cache.cached("t", [inputs], derive) == {"read": "a: 2\n"} and len(calls) == 2
    (inputs / "b.yaml").write_text("")  # a new file is a change too
    derived_cache.cached("t", [inputs], derive)
    assert len(calls) == 3 and len(list((inputs.parent / "cache" / "railiance-conformance").glob("t-*"))) == 1


def test_an_error_is_raised_every_time_never_kept(inputs):
    def broken():
        raise ValueError("bad policy")
    for _ in range(2):
        with pytest.raises(ValueError, match="bad policy"):
            derived_cache.cached("t", [inputs], broken)


def test_a_damaged_cache_file_or_none_at_all_is_the_uncached_path(inputs, monkeypatch):
    derived_cache.cached("t", [inputs], lambda: 1)
    for path in (inputs.parent / "cache" / "railiance-conformance").glob("t-*"):
        path.write_bytes(b"not a pickle")
    assert derived_cache.cached("t", [inputs], lambda: 2) == 2
    monkeypatch.setenv("RAILIANCE_CACHE", "0")
    assert derived_cache.cached("t", [inputs], lambda: 3) == 3


def test_the_suites_own_policy_and_specs_are_kept_and_read_back_equal(inputs):
    """What the plugin caches (suite.SuiteSettings.from_options: the catalog, the features' specs, the
    cluster policy, the layer map) is written to the cache and read back equal, without deriving again:
    a value that cannot be pickled would leave the cache empty and every run deriving (it did: the
    catalog's read-only mappings)."""
    from pathlib import Path

    from railiance_conformance.controls.boundary import load_layer_map
    from railiance_conformance.policy import load_catalog, load_cluster_policy
    from railiance_conformance.vocabulary import load_specs

    root = Path(__file__).resolve().parents[2]
    policies, features = root / "policies", root / "features"
    calls = []

    def derive():
        calls.append(1)
        catalog = load_catalog(policies)
        return catalog, load_specs(features, catalog), load_cluster_policy(policies), load_layer_map(policies)
    first = derived_cache.cached("policy", [policies, features], derive)
    assert list((inputs.parent / "cache" / "railiance-conformance").glob("policy-*.pickle"))
    again = derived_cache.cached("policy", [policies, features], derive)
    assert len(calls) == 1
    assert again[0].controls.keys() == first[0].controls.keys() and again[1].keys() == first[1].keys()
    assert repr(again) == repr(first)


def test_two_checkouts_keep_their_own_entries(inputs, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.yaml").write_text("a: 9\n")
    calls = []
    for _ in range(2):
        for where in (inputs, other):
            derived_cache.cached("t", [where], lambda: calls.append(1) or len(calls))
    assert len(calls) == 2


def test_a_family_with_room_for_several_keeps_the_most_recently_used(inputs):
    """``keep=3``: entries that alternate all stay; a fourth removes the one used longest ago, never one just
    loaded; ``keep=1`` (the default) leaves only the newest."""
    import os
    import time

    family = derived_cache.family("t", [inputs])
    for i, entry in enumerate(("e1", "e2", "e3")):
        derived_cache.store(family, entry, i, keep=3)
        os.utime(derived_cache.cache_dir() / f"{family}-{entry}.pickle", ns=(i * 10**9, i * 10**9))
    assert [derived_cache.load(family, e) for e in ("e1", "e2", "e3")] == [0, 1, 2]  # alternating: all hit
    time.sleep(0.01)
    assert derived_cache.load(family, "e1") == 0  # used again: now the most recent
    derived_cache.store(family, "e4", 3, keep=3)
    assert derived_cache.load(family, "e2") is derived_cache.MISSING  # the least recently used went
    assert [derived_cache.load(family, e) for e in ("e1", "e3", "e4")] == [0, 2, 3]
    assert len(list(derived_cache.cache_dir().glob(f"{family}-*.pickle"))) == 3
    derived_cache.store(family, "e5", 4)
    assert [p.name for p in derived_cache.cache_dir().glob(f"{family}-*.pickle")] == [f"{family}-e5.pickle"]
