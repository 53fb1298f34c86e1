"""markdown_report: a GitHub-flavoured summary (tables parsed with markdown-it's GFM table rule)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from markdown_it import MarkdownIt

from railiance_conformance.finding import Status
from railiance_conformance.history import RunDiff, StatusChange
from railiance_conformance.reporting import REPORTERS, markdown_report
from railiance_conformance.reporting.markdown_report import cell, code, render
from tests.unit.reporting_samples import FINDINGS, finding, sample_run

DIFF = RunDiff("run-a", "run-b", new_drift=("host.limits.nofile@ampere",), fixed=("host.swap.file@coulombcore",),
               persisting=("host.swap.file@ampere",),
               status_changes=(StatusChange("host.limits.nofile@ampere", "pass", "drift"),
                               StatusChange("host.swap.file@coulombcore", "drift", "pass"),
                               StatusChange("host.swappiness.live@volta", "pass", "error")))


def tables(text: str) -> list[list[list[str]]]:
    """Every table as rows of cell texts (inline content, escapes resolved)."""
    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(text)
    found, row = [], None
    for token in tokens:
        if token.type == "table_open":
            found.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type == "tr_close":
            found[-1].append(row)
            row = None
    return found


def test_registered() -> None:
    assert REPORTERS["markdown"].filename == "summary.md"
    assert REPORTERS["markdown"].render is markdown_report.render


def test_the_verdict_is_the_first_heading_then_the_counts_and_partial() -> None:
    text = render(sample_run(partial=True))
    assert text.splitlines()[0] == "## Railiance conformance: DRIFT — 3 drift, 2 could not verify"
    counts = tables(text)[0]
    assert counts[0] == ["pass", "drift", "could not verify", "waived", "pending"]
    assert counts[1] == ["2", "3", "2", "1", "1"]
    assert "Partial run" in text and "4 targets · 9 findings" in text


@pytest.mark.parametrize("findings, first", [
    ((FINDINGS[0],), "## Railiance conformance: CONFORMANT"),
    ((FINDINGS[0], FINDINGS[3]), "## Railiance conformance: COULD NOT VERIFY — 1 could not verify")])
def test_the_verdict_without_drift(findings, first) -> None:
    text = render(sample_run(findings=findings))
    assert text.splitlines()[0] == first
    assert "### Drift" not in text


def test_drift_then_could_not_verify_grouped() -> None:
    text = render(sample_run())
    headings = [line for line in text.splitlines() if line.startswith("###")]
    assert headings == ["### Drift: 3 controls, 3 findings", "### Could not verify: 2 causes, 2 findings",
                        "### Pending (1)", "### Waived (1)"]


def test_one_row_per_drift_group_naming_its_targets_and_the_differing_fields() -> None:
    same = [replace(FINDINGS[1], target=f"ns-drifted{i}") for i in (10, 2, 1)]
    drift, errors = tables(render(sample_run(findings=(*same, FINDINGS[2], FINDINGS[3], FINDINGS[8]))))[1:]
    assert drift[0] == ["control", "drifted on", "expected → observed", "drifting since", "fix"]
    assert drift[1][:3] == ["`host.swap.file` · S1 T01", "3: `ns-drifted1`, `ns-drifted2`, `ns-drifted10`",
                            "mode: 0600 → 0644<br>size\\_bytes: 4294967296 → 2147483648"]
    assert drift[2][:3] == ["`host.swappiness.live` · S1 T01", "1: `ampere`", "10 → 60"]
    assert errors[0] == ["targets", "controls", "cause", "fix"]
    assert [row[:3] for row in errors[1:]] == [
        ["1: `railiance-prod`", "1: `cluster.namespaces.labels`", "kubernetes API: 403 Forbidden<br>namespaces is forbidden"],
        ["1: `volta`", "1: `host.swappiness.live`", "ssh: connect to host volta port 22: Connection refused"]]


def test_could_not_verify_is_grouped_by_cause_per_target() -> None:
    down = [finding(f"host.c{i}", "stopped", Status.ERROR, reason="connection refused") for i in range(18)]
    text = render(sample_run(findings=tuple(down)))
    rows = tables(text)[1]
    assert len(rows) == 2 and rows[1][0] == "1: `stopped`" and rows[1][1].startswith("18: ")


def test_long_values_are_cut_at_a_word_boundary_with_a_marker() -> None:
    long = replace(FINDINGS[1], remediation="systemctl set-property user-1000.slice " * 20)
    row = tables(render(sample_run(findings=(long,))))[1][1]
    assert row[4].endswith("… (cut; whole in findings.json)")
    assert row[4].split(" … (cut")[0].endswith("user-1000.slice")


def test_a_drift_folds_the_fields_as_expected() -> None:
    gitea = finding("cluster.gitea.database", "railiance-prod", Status.DRIFT,
                    {"DB_TYPE": "postgres", "HOST": "gitea-db-rw.databases.svc.cluster.local:5432", "NAME": "gitea",
                     "USER": "gitea", "PASSWD": "***"},
                    {"DB_TYPE": "postgres", "HOST": "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432",
                     "NAME": "gitea", "USER": "gitea", "PASSWD": "***"}, layer="S5", task="T04")
    row = tables(render(sample_run(findings=(gitea,))))[1][1]
    assert row[2] == ("HOST: gitea-db-rw.databases.svc.cluster.local:5432 → "
                      "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432<br>\\_4 more fields as expected\\_") \
        or row[2] == ("HOST: gitea-db-rw.databases.svc.cluster.local:5432 → "
                      "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432<br>_4 more fields as expected_")


def test_pipes_and_newlines_are_escaped() -> None:
    text = render(sample_run())
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "65536 → soft &quot;1024&quot; | hard 4096<br>from \\etc<br>(limits.d | override)" in html
    assert "railiance-infra: make converge (role swapfile | chmod 600)<br>then: swapon -a" in html
    assert "kubernetes API: 403 Forbidden<br>namespaces is forbidden" in html
    assert all(line.startswith("|") == line.endswith("|") for line in text.splitlines())


@pytest.mark.parametrize("value, expected", [
    ("a|b", "a\\|b"), ("a\nb\r\nc", "a<br>b<br>c"), (None, "–"), ("", "–"), (4, "4"),
    ({"b": 1, "a": [1]}, '{"a": \\[1\\], "b": 1}'), ("<script>", "\\<script\\>"), ("*x* _y_", "\\*x\\* \\_y\\_"),
])
def test_cell(value, expected) -> None:
    assert cell(value) == expected


def test_cell_truncates_long_values() -> None:
    assert cell("x" * 500) == "x" * 159 + "…"


def test_code_spans() -> None:
    assert code("a|b") == "`a\\|b`"
    assert code("a|b", in_table=False) == "`a|b`"
    assert code("a`b") == "a\\`b"


def test_pending_and_waived_are_brief() -> None:
    pending = [finding("cluster.backup.schedule", t, Status.PENDING, reason="not due") for t in ("x", "y", "z")]
    text = render(sample_run(findings=(*pending, FINDINGS[6])))
    assert "- `cluster.backup.schedule` on `x`, `y`, `z`: not due" in text
    assert "- `cluster.gitea.ssh_nodeport` on `railiance-prod`: RFC-12: moved port until migration" in text
    assert len(tables(text)) == 1  # the counts only


def test_since_the_previous_run() -> None:
    text = render(sample_run(workplan="W", diff=DIFF))
    section = text[text.index("### Since the previous run"):]
    assert "Compared with run `run-a`." in section
    assert "- **New drift** (1): `host.limits.nofile@ampere`" in section
    assert "- **Fixed** (1): `host.swap.file@coulombcore`" in section
    assert "- **Persisting drift** (1): `host.swap.file@ampere`" in section
    assert "- **Other status changes** (1): `host.swappiness.live@volta` pass → error" in section


def test_no_diff_section_without_diff() -> None:
    assert "Since the previous run" not in render(sample_run())


def test_empty_diff() -> None:
    assert "- **New drift** (0)\n" in render(sample_run(diff=RunDiff("a", "b", (), (), (), ())))


def test_at_100_hosts_every_drifted_control_and_every_cause_is_named_under_1_mib() -> None:
    swap = tuple(replace(FINDINGS[1], target=f"ns{i}") for i in range(100))             # one group of 100
    sizes = tuple(replace(FINDINGS[2], target=f"ns{i}", observed=i) for i in range(100))  # 100 different groups
    others = tuple(finding(f"host.c{c}", f"ns{i}", Status.DRIFT, "a", "b " * 300, task=f"T0{c}")
                   for c in range(8) for i in range(20))
    errors = tuple(finding(f"host.e{c}", f"down{i}", Status.ERROR, reason=f"cause {i % 7}: " + "x " * 200)
                   for c in range(18) for i in range(30))
    text = render(sample_run(findings=swap + sizes + others + errors))
    assert len(text.encode()) < 1_048_576
    for control in ("host.swap.file", "host.swappiness.live", *(f"host.c{c}" for c in range(8))):
        assert f"`{control}`" in text
    for i in range(30):
        assert f"`down{i}`" in text
    assert "more targets, drifted in" in text  # the 100 swappiness values did not eat the budget
