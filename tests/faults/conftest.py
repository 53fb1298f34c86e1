"""Shared parts of the fault tests: the API stand-in (conformant or drifted), nightly, timing."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from tests.suite_runner import REPO


@pytest.fixture
def standin(tmp_path):
    """``standin("gitea-unavailable", fault=..., ...)`` -> (api, kubeconfig path); stopped after the test."""
    started = []

    def start(*overlays: str, **kwargs):
        layers = [f for name in overlays for f in drift_overlay(name)]
        api = KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *layers]), **kwargs).start()
        started.append(api)
        return api, api.write_kubeconfig(tmp_path / f"kc{len(started)}")

    yield start
    for api in started:
        api.stop()


def nightly(report_dir: Path, *suite_args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """``python -m railiance_conformance nightly --report-dir DIR -- ARGS`` and its wall time (s)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "railiance_conformance", "nightly", "--report-dir", str(report_dir),
                           "--", "-p", "no:randomly", *suite_args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    return done, time.monotonic() - started


def suite(report_dir: Path, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """``pytest features/ --report-dir DIR ARGS`` and its wall time (s)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "features/", "-p", "no:randomly", "-q",
                           "--report-dir", str(report_dir), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    return done, time.monotonic() - started


def document(path: Path) -> dict:
    return json.loads(path.read_text())
