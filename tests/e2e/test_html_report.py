"""The HTML report renders in headless Chromium (Debian's chromium) with the drift rows visible."""
from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from railiance_testbed.hosts import DRIFTED_CONTROLS

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Rows(HTMLParser):
    """Collect the class and the text of every table row of the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self._row: list | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = [dict(attrs).get("class", ""), ""]

    def handle_data(self, data):
        if self._row is not None:
            self._row[1] += data

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(tuple(self._row))
            self._row = None


def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail("Debian's chromium is not installed (./run deps installs it)")
    return path


def test_the_html_report_renders_with_the_drift_rows(testbed_run, tmp_path):
    page = testbed_run.report_dir / "report.html"
    profile = tmp_path / "profile"
    dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Rows()
    parser.feed(dom.stdout)
    drift = [text for cls, text in parser.rows if cls.split() == ["drift", "finding"]]  # not the matrix's cells
    assert len(drift) == testbed_run.document["summary"]["drift"] == len(DRIFTED_CONTROLS)
    assert any("host.swappiness.persisted" in text and "drifted" in text for text in drift)
    shot = tmp_path / "report.png"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1400,2000", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    shutil.copy(shot, testbed_run.report_dir / "report.png")  # for a human look when debugging
