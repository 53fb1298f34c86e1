"""docs/results.md shows what an operator sees, with one small screenshot of report.html (made by the browser
tier: RAILIANCE_SCREENSHOTS=docs/img ./run test tests/e2e/test_reports_at_many_hosts.py -k html)."""
from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs"


def test_the_operating_doc_links_its_one_small_screenshot() -> None:
    text = (DOCS / "results.md").read_text(encoding="utf-8")
    assert "![report.html" in text and "(img/report.png)" in text
    shot = DOCS / "img" / "report.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size < 150_000
    for seen in ("VERDICT: DRIFT", "/status", "findings_by_severity", "ClusterPolicyReport", "the host key of"):
        assert seen in text, seen
