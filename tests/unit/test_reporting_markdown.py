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


def test_headline_counts_and_partial() -> None:
    text = render(sample_run(partial=True))
    assert text.splitlines()[0] == "## Railiance conformance: 3 drift, 2 could not verify"
    counts = tables(text)[0]
    assert counts[0] == ["pass", "drift", "could not verify", "waived", "pending"]
    assert counts[1] == ["2", "3", "2", "1", "1"]
    assert "Partial run" in text and "4 targets · 9 findings" in text


def test_headline_without_problems() -> None:
    text = render(sample_run(findings=(FINDINGS[0],)))
    assert text.splitlines()[0] == "## Railiance conformance: no drift"
    assert "### Drift" not in text and "Could not verify" not in text


def test_drift_before_errors_grouped_by_layer_and_task() -> None:
    text = render(sample_run())
    headings = [line for line in text.splitlines() if line.startswith("###")]
    assert headings == ["### Drift (3)", "#### S1 · RAIL-HO-WP-0004-T01", "#### S3 · RAIL-HO-WP-0004-T07",
                        "### Could not verify (2)", "#### S1 · RAIL-HO-WP-0004-T01", "#### S5 · RAIL-HO-WP-0004-T03",
                        "### Pending (1)", "### Waived (1)"]


def test_table_rows_hold_control_target_the_differing_fields_and_fix() -> None:
    drift_s1, drift_s3, error_s1, error_s5 = tables(render(sample_run()))[1:]
    assert drift_s1[0] == ["control", "target", "expected → observed", "fix"]
    assert error_s1[0] == ["control", "target", "expected", "reason", "fix"]
    assert drift_s1[2] == ["`host.swappiness.live`", "`ampere`", "10 → 60", "make converge"]
    # only the differing fields of the mapping, one per line
    assert drift_s1[1][2] == "mode: 0600 → 0644<br>size\\_bytes: 4294967296 → 2147483648"
    assert error_s1[1][:4] == ["`host.swappiness.live`", "`volta`", "10",
                               "ssh: connect to host volta port 22: Connection refused"]
    assert all(len(row) == 4 for table in (drift_s1, drift_s3) for row in table)
    assert all(len(row) == 5 for table in (error_s1, error_s5) for row in table)


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


def test_large_run_fits_an_issue_comment() -> None:
    many = tuple(replace(FINDINGS[1], target=f"host{i:04d}", observed="x" * 400, reason="r" * 300)
                 for i in range(3000))
    errors = tuple(replace(FINDINGS[3], target=f"host{i:04d}") for i in range(3000))
    text = render(sample_run(findings=many + errors))
    assert len(text) < 65_536
    assert "more rows (see findings.json)" in text and "more in S1 · RAIL-HO-WP-0004-T01" in text
    assert sum(len(t) - 1 for t in tables(text)[1:]) == markdown_report.MAX_ROWS
