"""Nightly mode: run the suite, write every format, update the history, publish the JSON report.

Exit codes (``VERDICT``): 0 conformant, 1 drift, 2 could not verify (errors, an interrupted run,
or no findings), 3 usage error (bad policy, inventory or option), 4 the webhook publish failed on
an otherwise conformant run (a drift or could-not-verify code wins over a failed publish).
The local reports and history are written before publishing and never depend on it.
Example: ``python -m railiance_conformance nightly --webhook https://hooks.example/drift -- -m S1``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from railiance_conformance.policy import REPO_ROOT

CONFORMANT, DRIFT, COULD_NOT_VERIFY, USAGE_ERROR, PUBLISH_FAILED = 0, 1, 2, 3, 4
PYTEST_USAGE_ERROR = 4


def verdict(document: dict | None) -> int:
    """The exit code a report stands for: drift beats could-not-verify beats conformant."""
    if not document or not document.get("findings"):
        return COULD_NOT_VERIFY
    summary = document["summary"]
    if summary.get("drift"):
        return DRIFT
    if summary.get("error") or document["run"].get("partial"):
        return COULD_NOT_VERIFY
    return CONFORMANT


@dataclass(frozen=True)
class Webhook:
    url: str
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 1.0

    def publish(self, body: bytes) -> str:
        """POST the report; '' on success, else why it failed (after retries with backoff)."""
        import urllib3  # the kubernetes client's HTTP library: timeouts, retries and backoff built in

        retry = urllib3.Retry(total=self.retries, backoff_factor=self.backoff_s, allowed_methods=None,
                              status_forcelist=(408, 425, 429, 500, 502, 503, 504), raise_on_status=False)
        headers = {"Content-Type": "application/json"}
        token = os.environ.get("RAILIANCE_WEBHOOK_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = urllib3.PoolManager().request(
                "POST", self.url, body=body, headers=headers, retries=retry,
                timeout=urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s))
        except urllib3.exceptions.HTTPError as exc:
            return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        if not 200 <= response.status < 300:
            return f"HTTP {response.status} after {self.retries} retries"
        return ""


def run_nightly(pytest_args: list[str], *, report_dir: Path, webhook: Webhook | None) -> int:
    command = [sys.executable, "-m", "pytest", "features/", "--report-dir", str(report_dir), *pytest_args]
    proc = subprocess.run(command, cwd=REPO_ROOT)
    if proc.returncode == PYTEST_USAGE_ERROR:
        return USAGE_ERROR
    findings = report_dir / "findings.json"
    document = json.loads(findings.read_text()) if findings.exists() else None
    code = verdict(document)
    if webhook is not None and document is not None:
        problem = webhook.publish(findings.read_bytes())
        if problem:
            print(f"railiance-conformance: publishing {findings} to the webhook failed: {problem} "
                  f"(the local reports are complete)", file=sys.stderr)
            return code or PUBLISH_FAILED
        print("railiance-conformance: report published to the webhook", file=sys.stderr)
    return code
