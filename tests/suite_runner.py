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


STEP_PLUGINS = ("railiance_conformance.plugin", "steps.host_steps", "steps.cluster_steps", "steps.repo_steps")


def copy_features(destination: Path) -> Path:
    """A copy of the bundled features/ (with its test module) under ``destination``/features, to edit."""
    import shutil

    target = destination / "features"
    shutil.copytree(REPO / "features", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def run_features(features: Path, *args: str, report_dir: Path, timeout: float = 300) -> SuiteRun:
    """``pytest FEATURES ARGS`` for a features directory outside the repo (its parent is the rootdir),
    with the suite's plugin and steps, as an operator with their own copy of the features would run it."""
    plugins = [a for p in STEP_PLUGINS for a in ("-p", p)]
    proc = subprocess.run([sys.executable, "-m", "pytest", str(features), "--rootdir", str(features.parent),
                           "-c", "/dev/null", "-p", "no:cacheprovider", "-p", "no:randomly", *plugins, "-rA",
                           "--report-dir", str(report_dir), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return SuiteRun(proc.returncode, proc.stdout, proc.stderr, report_dir)
