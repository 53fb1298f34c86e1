"""The shared sentence grammar (controls/grammar.py): ``and_list`` splits the lists every kind writes
out, and every Then sentence of the bundled features parses to the kind and params recorded in
``sentence_parses.json`` (recorded from the kinds before their tokens and list splitting were merged
into one module), so moving a kind between modules cannot change what a sentence means."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from railiance_conformance.controls.grammar import and_list
from railiance_conformance.vocabulary import match

RECORDED = json.loads((Path(__file__).parent / "sentence_parses.json").read_text())


@pytest.mark.parametrize(("text", "items"), [
    ("a", ["a"]),
    ("a and b", ["a", "b"]),
    ("a, b and c", ["a", "b", "c"]),
    ("a, b, and c", ["a", "b", "c"]),
    ("Helm, Argo CD or k3s", ["Helm", "Argo CD", "k3s"]),
    ("MemoryMax 2G, MemorySwapMax to 0 and CPUQuota 50%", ["MemoryMax 2G", "MemorySwapMax to 0", "CPUQuota 50%"]),
    ("~/src/a and /srv/b", ["~/src/a", "/srv/b"]),
    ("its operator", ["its operator"]),
    ("", []),
])
def test_and_list(text: str, items: list[str]) -> None:
    assert and_list(text) == items


def test_every_recorded_sentence_exists() -> None:
    assert len(RECORDED) >= 40, "the recording covers the bundled features' Then sentences"


@pytest.mark.parametrize("sentence", sorted(RECORDED))
def test_sentence_parses_as_recorded(sentence: str) -> None:
    found = match(sentence)
    assert found is not None, f"no check kind states {sentence!r} any more"
    kind, params = found
    assert json.loads(json.dumps([kind.name, params], default=str)) == RECORDED[sentence]
