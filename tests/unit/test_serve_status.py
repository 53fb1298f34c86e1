"""serve's /status answer for the last completed run, as goss serve answers: 503 on drift or could-not-verify
at or above the chosen severity, when the run failed, and before any run; 200 only when nothing is known wrong."""
from __future__ import annotations

import pytest

from railiance_conformance.serve import Completed, status_answer


def run(*findings: tuple[str, str], failure: str = "") -> Completed:
    document = {"findings": [{"status": status, "severity": severity} for status, severity in findings]}
    return Completed("serve-1", 0.0, document, failure, "why" if failure else "")


@pytest.mark.parametrize("completed, severity, code, status", [
    (None, "info", 503, "unknown"),
    (run(("pass", "critical")), "info", 200, "conformant"),
    (run(("pass", "high"), ("drift", "low")), "info", 503, "drift"),
    (run(("pass", "high"), ("drift", "low")), "medium", 200, "conformant"),     # below the chosen severity
    (run(("drift", "critical")), "critical", 503, "drift"),
    (run(("error", "medium")), "medium", 503, "could not verify"),
    (run(("error", "medium")), "high", 200, "conformant"),
    (run(("waived", "critical"), ("pending", "critical")), "info", 200, "conformant"),
    (run(("drift", "low"), ("error", "critical")), "info", 503, "drift"),
    (run(("pass", "low"), failure="partial"), "info", 503, "could not verify"),  # the run could not tell
    (Completed("serve-2", 0.0, None, "exit_status", "pytest exit 3"), "info", 503, "could not verify"),
])
def test_status(completed, severity, code, status) -> None:
    answered, body = status_answer(completed, severity)
    assert (answered, body["status"]) == (code, status)


def test_a_held_regression_is_answered_from_its_own_findings() -> None:
    """A run not taken because it verified less (a regression) still is the last completed run: its
    could-not-verify findings make /status 503 although /metrics keeps serving the previous result."""
    code, body = status_answer(run(("error", "high"), failure="regression"), "info")
    assert code == 503 and body["could_not_verify"] == 1
