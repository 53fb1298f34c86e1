"""``python -m railiance_conformance serve``: re-run the suite on an interval and serve its latest good result
(as ``goss serve`` serves its checks).

    python -m railiance_conformance serve --listen 0.0.0.0:9477 --interval 900 -- -m cluster

Endpoints (plain HTTP, GET):

* ``/status``: the result, for a probe or an uptime check (as ``goss serve`` answers): 503 when the last
  completed run has drift or could-not-verify findings of ``--fail-severity`` or louder (default
  ``info``: any), when that run failed (no complete report) and before any run finished; else 200. The
  JSON body says which (``{"status": "drift", "drift": 3, "could_not_verify": 0, "run": ...}``);
* ``/healthz``: liveness only: 200 and a small JSON status while the server runs;
* ``/metrics``: Prometheus exposition (prometheus_client): the last good run's metrics, exactly as the
  ``railiance_conformance.prom`` textfile of that run has them (``…_control_status{…,severity,status}``,
  ``…_findings_by_severity``, ``…_run_timestamp_seconds``, ``…_run_duration_seconds``, …), plus the
  server's own: ``…_serve_runs_total{result}``, ``…_serve_last_run_success``, ``…_serve_running``,
  ``…_serve_last_run_duration_seconds``, ``…_serve_last_run_timestamp_seconds`` (any run),
  ``…_serve_last_good_run_timestamp_seconds`` (the served one), the staleness of what is served
  (``…_serve_served_run_age_seconds``, ``…_serve_runs_since_served``), ``…_serve_status_ok`` (what
  /status says) and ``…_serve_last_failure{reason}`` (1 for the reason of the last failed run, from the
  closed set ``FAILURE_REASONS``; all 0 after a run is taken: never a free-text label);
* ``/`` and ``/report.html``: the last good run's HTML report; ``/findings.json`` its JSON report
  (503 until the first run has finished).

Each run is ``pytest features/`` in a child process (as ``nightly`` runs it) with its own run id, writing
every format and the history into ``--report-dir``; runs never overlap: one worker runs them one after
another, and the next starts ``--interval`` seconds after the previous one finished.

**Which result is served.** A run *fails* when it did not finish with a complete report of its own
(pytest exit other than 0 or 1, a missing or partial report, past ``--run-timeout``), or when it could
verify less than the last good run (more findings *could not verify*: an API server or host that went
away during the run). A failed run is counted (``…_serve_runs_total{result="failed"}``, its reason in
``…_serve_last_failure``) and the last good result stays served on /metrics and the report pages,
while /status answers 503 for it (the suite could not tell) and the staleness metrics grow. A regression that persists for
``--accept-after`` runs in a row (default 3) is no blip: that run becomes the served result (its
could-not-verify findings are then the truth). The first finished run is always taken.

SIGTERM, SIGINT or SIGHUP stops the server cleanly: a run in progress is terminated (its child's process
group), the HTTP server is shut down, exit status 0.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST

from railiance_conformance.levels import SEVERITIES  # the catalog's, loudest first
from railiance_conformance.nightly import this_run_report
from railiance_conformance.policy import REPO_ROOT
from railiance_conformance.serve_metrics import ServeMetrics

GOOD_EXITS = (0, 1)          # pytest: every control passed / drift or could-not-verify found


@dataclass(frozen=True)
class Result:
    """One finished run: its id, its report texts, how many findings could not be verified."""

    run_id: str
    finished_at: float
    errors: int
    metrics: str
    html: bytes
    findings: bytes
    document: dict | None = None


@dataclass(frozen=True)
class Completed:
    """The last run that finished, taken or not: its id, when, its findings.json (None when it wrote
    none), and why it was not taken (``FAILURE_REASONS`` key and text; empty when it was)."""

    run_id: str
    finished_at: float
    document: dict | None
    failure: str = ""
    why: str = ""


def status_answer(completed: Completed | None, fail_severity: str) -> tuple[int, dict]:
    """What ``/status`` answers for the last completed run (as ``goss serve`` answers its checks): 200 when
    nothing at or above ``fail_severity`` drifted or could not be verified; 503 when something did, when
    that run failed (no complete report: the suite could not tell) and before any run finished.
    ``status_answer(None, "info")`` -> ``(503, {"status": "unknown", ...})``."""
    if completed is None:
        return 503, {"status": "unknown", "reason": "no run has finished yet"}
    if completed.document is None or completed.failure in ("partial", "exit_status", "no_report", "timeout",
                                                           "start_failed", "report_missing"):
        return 503, {"status": "could not verify", "run": completed.run_id,
                     "reason": f"the last run failed: {completed.why}"}
    floor = SEVERITIES.index(fail_severity)
    counted = {"drift": 0, "error": 0}
    for finding in completed.document.get("findings", []):
        severity = str(finding.get("severity", "info")).lower()
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1
        if finding.get("status") in counted and rank <= floor:
            counted[finding["status"]] += 1
    body = {"run": completed.run_id, "fail_severity": fail_severity, "drift": counted["drift"],
            "could_not_verify": counted["error"]}
    if counted["drift"]:
        return 503, {"status": "drift", **body}
    if counted["error"]:
        return 503, {"status": "could not verify", **body}
    return 200, {"status": "conformant", **body}


class Server:
    """The serve loop and its HTTP endpoints; ``start()``, then ``stop()`` (or a signal)."""

    def __init__(self, suite_args: list[str], *, report_dir: Path, interval_s: float, listen: tuple[str, int],
                 run_timeout_s: float | None = None, accept_after: int = 3, fail_severity: str = "info"):
        self.suite_args, self.report_dir, self.interval_s = list(suite_args), report_dir, interval_s
        self.listen, self.run_timeout_s, self.accept_after = listen, run_timeout_s, max(1, accept_after)
        self.fail_severity = fail_severity
        self.good: Result | None = None
        self.completed: Completed | None = None   # the last run that finished, taken or not
        self.regressions = 0
        self.last_ok: bool | None = None         # None until the first run has finished
        self.stopping = threading.Event()
        self._run_lock = threading.Lock()        # never two probes at once
        self._child: subprocess.Popen | None = None
        self.metrics = ServeMetrics(self._served_finished_at)
        self.http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    def _served_finished_at(self) -> float | None:
        good = self.good
        return None if good is None else good.finished_at

    # --- one run ------------------------------------------------------------------------------
    def run_once(self) -> bool | None:
        """Run the suite once; True taken, False failed, None when a run is already in progress."""
        if not self._run_lock.acquire(blocking=False):
            return None
        started = time.monotonic()
        self.metrics.running.set(1)
        try:
            kind, reason, result, completed = self._probe()
        finally:
            self.metrics.running.set(0)
            self.metrics.duration.set(time.monotonic() - started)
            self._run_lock.release()
        if self.stopping.is_set():
            return None  # stopped mid-run: neither a result nor a failure
        if result is not None and self.good is not None and result.errors > self.good.errors:
            self.regressions += 1
            if self.regressions < self.accept_after:
                kind, reason = "regression", (f"could not verify {result.errors} findings (the served run "
                                              f"{self.good.run_id}: {self.good.errors}); regression "
                                              f"{self.regressions} of {self.accept_after}")
                result = None
        self.completed = replace(completed, failure=kind, why=reason) if result is None else completed
        self.metrics.completed(self.completed.finished_at,
                               status_answer(self.completed, self.fail_severity)[0] == 200,
                               kind if result is None else "")
        if result is None:
            self.metrics.failed()
            self.last_ok = False
            print(f"railiance-conformance serve: run failed, keeping the last good result: {reason}",
                  file=sys.stderr, flush=True)
            return False
        self.regressions = 0
        self.good = result
        self.metrics.taken(result.finished_at, result.metrics)
        self.last_ok = True
        print(f"railiance-conformance serve: run {result.run_id} served ({result.errors} could not verify)",
              file=sys.stderr, flush=True)
        return True

    def _probe(self) -> tuple[str, str, Result | None, Completed]:
        """One run of the suite: (failure kind, why, the result or None, the run as completed)."""
        run_id = "serve-" + uuid.uuid4().hex[:12]
        command = [sys.executable, "-m", "pytest", "features/", "-q", "-p", "no:randomly", "--report-dir",
                   str(self.report_dir), *self.suite_args, "--run-id", run_id]
        if self.run_timeout_s:
            command += ["--run-timeout", str(self.run_timeout_s)]

        def failed(kind: str, why: str, document: dict | None = None):
            return kind, why, None, Completed(run_id, time.time(), document)

        try:
            self._child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            return failed("start_failed", f"could not start the suite: {exc}")
        try:
            code = self._child.wait(timeout=(self.run_timeout_s or 3600) + 60)
        except subprocess.TimeoutExpired:
            self._kill_child()
            return failed("timeout", "the run did not finish in time and was stopped")
        finally:
            self._child = None
        if self.stopping.is_set():
            return failed("exit_status", "stopped")
        path, document, why = this_run_report(self.report_dir, run_id)
        if code not in GOOD_EXITS:
            return failed("exit_status", f"pytest exit {code}" + (f": {why}" if why else ""))
        if document is None or path is None or path.parent != self.report_dir:
            return failed("no_report", f"no complete report of run {run_id}: {why or 'written elsewhere'}")
        if document["run"].get("partial"):
            return failed("partial", f"run {run_id} is partial: {document['run'].get('deadline') or 'interrupted'}",
                          document)
        try:
            metrics = (self.report_dir / "railiance_conformance.prom").read_text(encoding="utf-8")
            html = (self.report_dir / "report.html").read_bytes()
        except OSError as exc:
            return failed("report_missing", f"a report of run {run_id} is missing: {exc}", document)
        finished = time.time()
        return "", "", Result(run_id, finished, document["summary"].get("error", 0), metrics, html,
                              path.read_bytes(), document), Completed(run_id, finished, document)

    def _kill_child(self) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)  # the suite and its ssh children: its own session
                child.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.wait()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.run_once()
            self.stopping.wait(self.interval_s)

    # --- HTTP ---------------------------------------------------------------------------------
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "railiance-conformance-serve"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                path = self.path.split("?", 1)[0]
                good = server.good
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, server.metrics.page())
                elif path == "/status":
                    code, body = status_answer(server.completed, server.fail_severity)
                    body["served_run"] = good.run_id if good else None
                    self._send(code, "application/json", json.dumps(body).encode())
                elif path == "/healthz":
                    status = {"status": "ok", "running": bool(server._run_lock.locked()),
                              "served_run": good.run_id if good else None,
                              "last_run_success": server.last_ok}
                    self._send(200, "application/json", json.dumps(status).encode())
                elif path in ("/", "/report.html", "/findings.json"):
                    if good is None:
                        self._send(503, "text/plain; charset=utf-8", b"no run has finished yet\n")
                    elif path == "/findings.json":
                        self._send(200, "application/json", good.findings)
                    else:
                        self._send(200, "text/html; charset=utf-8", good.html)
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found\n")

            def _send(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - scrapes every 15 s are noise
                pass

        return Handler

    def start(self) -> str:
        """Listen and start the run loop; the URL served (``--listen`` port 0 picks a free one)."""
        self.http = ThreadingHTTPServer(self.listen, self._handler())
        self.http.daemon_threads = True
        self._threads = [threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.2},
                                          name="serve-http", daemon=True),
                         threading.Thread(target=self._loop, name="serve-runs", daemon=True)]
        for thread in self._threads:
            thread.start()
        host, port = self.http.server_address[:2]
        # an AF_INET socket's name is (str, int); the bytes typeshed allows are AF_UNIX's abstract names
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def stop(self) -> None:
        self.stopping.set()
        self._kill_child()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        for thread in self._threads:
            thread.join(timeout=30)


def parse_listen(text: str) -> tuple[str, int]:
    """``"0.0.0.0:9477"`` -> ``("0.0.0.0", 9477)``; ``":9477"`` listens on every address. ValueError if bad."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT")
    return host or "0.0.0.0", int(port)


def serve(suite_args: list[str], *, report_dir: Path, interval_s: float, listen: str,
          run_timeout_s: float | None = None, accept_after: int = 3, fail_severity: str = "info") -> int:
    """Run until SIGTERM/SIGINT; exit status 0 after a clean stop, 3 for a bad option."""
    try:
        address = parse_listen(listen)
    except ValueError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 3
    if interval_s <= 0:
        print("serve: --interval must be more than 0 seconds", file=sys.stderr)
        return 3
    if fail_severity not in SEVERITIES:
        print(f"serve: --fail-severity must be one of {', '.join(SEVERITIES)}", file=sys.stderr)
        return 3
    server = Server(suite_args, report_dir=report_dir, interval_s=interval_s, listen=address,
                    run_timeout_s=run_timeout_s, accept_after=accept_after, fail_severity=fail_severity)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        url = server.start()
    except OSError as exc:
        print(f"serve: cannot listen on {listen}: {exc}", file=sys.stderr)
        return 3
    print(f"railiance-conformance serve: listening on {url} (pid {os.getpid()})", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    print("railiance-conformance serve: stopped", flush=True)
    return 0
