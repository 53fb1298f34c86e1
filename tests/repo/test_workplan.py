"""Workplan parsing: the real seed (web rendering) and a markdown-source fixture; bad input."""
from __future__ import annotations

from pathlib import Path

import pytest

from railiance_conformance.workplan import Task, parse_workplan, read_front_matter
from railiance_testbed import SEED_WORKPLAN as SEED  # noqa: E402  (the bundled copy of shared/seed)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "RAIL-XX-WP-0009-markdown-source.md"


@pytest.fixture(scope="module")
def seed():
    if not SEED.is_file():
        pytest.fail(f"the seed workplan is not at {SEED}")  # never a silent skip
    return parse_workplan(SEED)


def test_seed_front_matter(seed):
    assert (seed.id, seed.status, seed.supersedes) == ("RAIL-HO-WP-0004", "active", ["RAIL-PL-WP-0001"])
    assert seed.title == "Railiance Production Readiness — Automated, Reproducible Stack"


def test_seed_tasks(seed):
    assert list(seed.tasks) == [f"T{n:02d}" for n in range(1, 11)]
    assert {t.short: t.status for t in seed.tasks.values()} == {
        **{f"T0{n}": "done" for n in range(1, 9)}, "T09": "todo", "T10": "todo"}
    assert [t.short for t in seed.tasks.values() if t.needs_human] == ["T09", "T10"]
    assert seed.tasks["T09"].intervention_note.startswith("Requires decisions: final hostname/domain")
    assert seed.tasks["T01"] == Task("RAIL-HO-WP-0004-T01", "T01", "Ansible: swapfile role for CoulombCore", "done",
                                     done_when=("Convergence runs without errors", "free -h on CoulombCore shows 4 GB swap",
                                                "Goss verify passes"))


def test_seed_prerequisites(seed):
    # T09: "T04 done (...); T08 done (...). ... CUST-WP-0011-T01 must have passed" -> not the other plan's T01
    assert {t.short: t.prerequisites for t in seed.tasks.values() if t.prerequisites} == {
        "T04": ["T03"], "T06": ["T04"], "T09": ["T04", "T08"], "T10": ["T09"]}


def test_markdown_source():
    wp = parse_workplan(FIXTURE)
    assert (wp.id, wp.status, wp.supersedes) == ("RAIL-XX-WP-0009", "active", ["RAIL-XX-WP-0003", "RAIL-XX-WP-0005"])
    assert wp.tasks == {
        "T01": Task("RAIL-XX-WP-0009-T01", "T01", "Fenced block with a folded note", "done"),
        "T02": Task("RAIL-XX-WP-0009-T02", "T02", "Plain id lines, human needed", "todo", True,
                    "Needs a decision: which registry (unquoted colon)", ["T01"]),
        "T03": Task("RAIL-XX-WP-0009-T03", "T03", "Fenced block with multi-line note and declared dependencies",
                    "in-progress", True, "Approval from the data owner before the cutover.\n", ["T01", "T02"]),
    }
    assert read_front_matter(FIXTURE)["repo"] == "railiance-platform"


@pytest.mark.parametrize(("text", "problem"), [
    ("# no front matter\n\nid: RAIL-XX-WP-0001-T01\nstatus: done\n", "no front matter"),
    ("---\nid: RAIL-XX-WP-0001\nstatus: active\n\n# never closed\n", "never closed"),
    ("---\nid: RAIL-XX-WP-0001\n---\n### T01 — A\n\nid: RAIL-XX-WP-0001-T01\nstatus: done\n", "no 'status'"),
    ("---\nstatus: active\n---\n", "no 'id'"),
    ("---\nid: RAIL-XX-WP-0001\nstatus: active\n---\n# nothing else\n", "no task blocks"),
    ("---\nid: RAIL-XX-WP-0001\nstatus: active\n---\n### T01 — A\n\nid: RAIL-XX-WP-0001-T01\npriority: high\n",
     "task RAIL-XX-WP-0001-T01 (line 7): no status"),
    ("---\nid: RAIL-XX-WP-0001\nstatus: active\n---\nid: RAIL-XX-WP-0001-T01\nstatus: done\n", "no title"),
    (("---\nid: RAIL-XX-WP-0001\nstatus: active\n---\n### T01 — A\nid: RAIL-XX-WP-0001-T01\nstatus: done\n"
      "needs_human: maybe\n"), "needs_human is 'maybe'"),
    ("---\nid: RAIL-XX-WP-0001\nstatus: active\n---\n### T01 — A\nid: RAIL-ZZ-WP-0002-T01\nstatus: done\n",
     "does not belong to workplan RAIL-XX-WP-0001"),
    ("id, type, title, status\nid type title status\nRAIL-XX-WP-0001 workplan\n", "2 values cannot be matched to 4 keys"),
])
def test_malformed_input_names_file_and_what_is_missing(tmp_path, text, problem):
    path = tmp_path / "RAIL-XX-WP-0001-broken.md"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        parse_workplan(path)
    assert str(raised.value).startswith(f"{path}: ") and problem in str(raised.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read workplan"):
        parse_workplan(tmp_path / "missing.md")


def test_the_bundled_workplan_is_the_shared_seed():
    """The tests and the demo use a copy; where shared/seed/ sits beside the checkout, they agree."""
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / SEED.name
    assert SEED.exists()
    if shared.exists():
        assert SEED.read_text() == shared.read_text()
