"""Nightly mode: run the suite, write every format, update the history, publish the JSON report.

Exit codes (``VERDICT``): 0 conformant, 1 drift, 2 could not verify (errors, an interrupted run,
or no findings), 3 usage error (bad policy, inventory or option), 4 the webhook publish failed on
an otherwise conformant run (a drift or could-not-verify code wins over a failed publish),
5 the run's own output failed: a report or the history could not be written, or no report of
*this* run exists (5 wins over every other code: the findings may be visible nowhere; the
verdict they stand for is printed too).
The local reports and history are written before publishing and never depend on it. The run is
judged by its own report only: nightly passes ``--run-id`` and reads back the ``findings.json``
whose ``run.id`` is that id (in ``--report-dir``, or the fallback directory the suite names when
the report directory could not take it), never a file left from an earlier run.
SIGTERM, SIGINT or SIGHUP to nightly (its pid or its process group) is forwarded to the suite, which
stops within seconds and writes a partial report (every control not finished is an error
"interrupted by SIGTERM"); nightly waits for it (``interrupt.GRACE_S`` at most, then kills what is
left), does not publish it, and exits with its verdict: 2, or 1 when a drift was already found,
5 when no report of the run was written. Nothing of the run outlives nightly.
Example: ``python -m railiance_conformance nightly --webhook https://hooks.example/drift -- -m S1``.
"""
from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from railiance_conformance.finding import LOUDEST_FIRST, Status
from railiance_conformance.interrupt import run_child
from railiance_conformance.policy import REPO_ROOT
from railiance_conformance.redact import redact_text
from railiance_conformance.reporting.output import OUTPUT_FAILED as OUTPUT_FAILED_PYTEST

CONFORMANT, DRIFT, COULD_NOT_VERIFY, USAGE_ERROR, PUBLISH_FAILED, OUTPUT_FAILED = 0, 1, 2, 3, 4, 5
PYTEST_USAGE_ERROR = 4
NO_FINDINGS_EXITS = (2, 5)  # interrupted before any finding, or nothing collected: no report to judge
NAMES = {CONFORMANT: "conformant", DRIFT: "drift", COULD_NOT_VERIFY: "could not verify"}


def verdict(document: dict | None) -> int:
    """The exit code a ``findings.json`` stands for, by its loudest status (``finding.LOUDEST_FIRST``):
    drift beats could-not-verify beats conformant; a partial run or one without findings could not verify.
    ``verdict({"summary": {"drift": 0, "error": 1}, "run": {"partial": False}, "findings": [...]})`` -> 2."""
    if not document or not document.get("findings"):
        return COULD_NOT_VERIFY
    loudest = next((s for s in LOUDEST_FIRST if document["summary"].get(s.value)), Status.PASS)
    if loudest is Status.DRIFT:
        return DRIFT
    if loudest is Status.ERROR or document["run"].get("partial"):
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


def this_run_report(report_dir: Path, run_id: str) -> tuple[Path | None, dict | None, str]:
    """The ``findings.json`` of run ``run_id``: (path, document, "") or (None, None, why not)."""
    from railiance_conformance.reporting.output import fallback_dir

    why = []
    for directory in (report_dir, fallback_dir(run_id)):
        path = directory / "findings.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            why.append(f"{path}: missing")
            continue
        except (OSError, ValueError) as exc:
            why.append(f"{path}: unreadable ({exc})")
            continue
        found = (document.get("run") or {}).get("id") if isinstance(document, dict) else None
        if found == run_id:
            return path, document, ""
        why.append(f"{path}: is run {found!r}, left from an earlier run")
    return None, None, "; ".join(why)


def run_nightly(pytest_args: list[str], *, report_dir: Path, webhook: Webhook | None) -> int:
    run_id = uuid.uuid4().hex[:12]
    command = [sys.executable, "-m", "pytest", "features/", "--report-dir", str(report_dir), *pytest_args,
               "--run-id", run_id]
    returncode, _, _, interrupted = run_child(command, cwd=REPO_ROOT)
    proc = SimpleNamespace(returncode=returncode if returncode is not None else "killed")
    if proc.returncode == PYTEST_USAGE_ERROR and not interrupted:
        return USAGE_ERROR
    findings, document, why = this_run_report(report_dir, run_id)
    code = verdict(document)
    own_failure = ""
    if interrupted:
        print(f"railiance-conformance: interrupted by {interrupted}: run {run_id} stopped "
              f"(pytest exit {proc.returncode}); "
              + (f"its partial report is {findings}, not published" if findings is not None
                 else "no report of it was written"), file=sys.stderr)
        if findings is None:
            return OUTPUT_FAILED
        return OUTPUT_FAILED if proc.returncode == OUTPUT_FAILED_PYTEST else DRIFT if code == DRIFT \
            else COULD_NOT_VERIFY
    if findings is None and proc.returncode in NO_FINDINGS_EXITS:
        print(f"railiance-conformance: run {run_id} recorded no finding (pytest exit {proc.returncode}): "
              f"could not verify", file=sys.stderr)
        return COULD_NOT_VERIFY
    if findings is None or document is None:  # this_run_report gives both or neither
        own_failure = f"no report of this run ({run_id}, pytest exit {proc.returncode}): {why}"
    elif proc.returncode == OUTPUT_FAILED_PYTEST or findings.parent != report_dir:
        failures = document["run"].get("output_failures") or ["(see the suite's output)"]
        own_failure = f"the run's own output failed: {'; '.join(failures)}; its reports are in {findings.parent}"
    if own_failure:
        print(f"railiance-conformance: {own_failure}", file=sys.stderr)
        print(f"railiance-conformance: the findings of run {run_id} say: "
              f"{NAMES.get(code, code) if document else 'nothing (no report)'}; exit {OUTPUT_FAILED}",
              file=sys.stderr)
    if findings is None:
        return OUTPUT_FAILED
    if webhook is not None and document is not None:
        problem = webhook.publish(findings.read_bytes())
        if problem:
            print(f"railiance-conformance: publishing {findings} to the webhook failed: {redact_text(problem)} "
                  f"(the local reports are complete)", file=sys.stderr)
            return OUTPUT_FAILED if own_failure else code or PUBLISH_FAILED
        print("railiance-conformance: report published to the webhook", file=sys.stderr)
    return OUTPUT_FAILED if own_failure else code
