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
