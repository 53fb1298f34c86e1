"""The textfile as Prometheus's own linter reads it: ``promtool check metrics`` finds nothing to say about
railiance_conformance.prom (naming, units, HELP, TYPE). promtool comes with Debian's prometheus package
(./run installs it)."""
from __future__ import annotations

import shutil
import subprocess

from railiance_conformance.reporting.prometheus_report import render
from tests.unit.reporting_samples import every_part_run, sample_run


def promtool(text: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: ./run deps installs Debian's prometheus package, which has it"
    return subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)


def test_promtool_finds_nothing_in_the_textfile() -> None:
    for run in (sample_run(), every_part_run()):
        done = promtool(render(run))
        assert done.returncode == 0 and done.stdout == done.stderr == "", done.stdout + done.stderr


def test_promtool_would_say_so_if_it_found_something() -> None:
    done = promtool("# HELP x_total a counter\n# TYPE x_total gauge\nx_total 1\n")
    assert done.returncode != 0 or done.stdout or done.stderr
