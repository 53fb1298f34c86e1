"""One catalog entry per control: the catalog, the features' scenarios and tags, and the generated
docs/controls.md must agree; each test fails on a disagreement and names it."""
from __future__ import annotations

from pathlib import Path

from railiance_conformance.checks import bundled_plan
from railiance_conformance.control_table import controls_doc
from railiance_conformance.vocabulary import CHECK_KINDS

REPO = Path(__file__).resolve().parents[2]
TAG_FIELDS = ("task", "layer", "severity")


def test_every_stated_control_is_in_the_catalog_once_and_every_catalog_control_is_stated():
    plan = bundled_plan()
    gate_only = {c for c in plan.catalog.controls if c.startswith("gate.")}  # judged by the gate, not a scenario
    assert set(plan.specs) <= set(plan.catalog.controls)
    assert set(plan.catalog.controls) - gate_only - set(plan.specs) == set(), "catalog controls no feature states"


def test_tags_left_in_features_agree_with_the_catalog():
    plan = bundled_plan()
    values = {field: {getattr(c, field) for c in plan.catalog.controls.values()} for field in TAG_FIELDS}
    for control_id, spec in plan.specs.items():
        control = plan.catalog.controls[control_id]
        for field in TAG_FIELDS:
            stated = spec.tags & values[field]
            assert stated <= {getattr(control, field)}, \
                f"{spec.source}: tag {sorted(stated)} disagrees with the catalog's {field} {getattr(control, field)!r}"


def test_docs_controls_is_the_generated_one():
    plan = bundled_plan()
    assert (REPO / "docs" / "controls.md").read_text() == controls_doc(plan.catalog, plan.specs), \
        "docs/controls.md is stale: run python -m railiance_conformance controls --write"


def test_docs_controls_lists_every_control_and_every_var():
    plan = bundled_plan()
    text = (REPO / "docs" / "controls.md").read_text()
    assert all(f"| {c} |" in text for c in plan.catalog.controls)
    assert all(f"| `{v}` |" in text for v in plan.catalog.vars)


def test_docs_vocabulary_is_the_generated_one():
    from railiance_conformance.control_table import vocabulary_doc

    assert (REPO / "docs" / "vocabulary.md").read_text() == vocabulary_doc(CHECK_KINDS, bundled_plan().specs), \
        "docs/vocabulary.md is stale: run python -m railiance_conformance vocabulary --write"
