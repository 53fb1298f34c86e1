"""Run the suite as an operator does (``pytest features/ ...`` in a subprocess) and read its reports."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class SuiteRun:
    returncode: int
    stdout: str
    stderr: str
    report_dir: Path

    @property
    def document(self) -> dict:
        return json.loads((self.report_dir / "findings.json").read_text())

    def findings(self, target: str | None = None) -> list[dict]:
        return [f for f in self.document["findings"] if target is None or f["target"] == target]

    def statuses(self, target: str) -> dict[str, str]:
        return {f["control_id"]: f["status"] for f in self.findings(target)}


def run_suite(*args: str, report_dir: Path, timeout: float = 300) -> SuiteRun:
    """``pytest features/ ARGS`` in a subprocess, exactly as an operator runs it."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-rA",
                           "--report-dir", str(report_dir), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return SuiteRun(proc.returncode, proc.stdout, proc.stderr, report_dir)
