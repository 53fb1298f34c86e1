"""``serve``'s /metrics page (prometheus_client, one registry per server): the served run's own textfile
metrics re-exposed, then the server's ``railiance_conformance_serve_*`` (listed in serve.py's docstring
and docs/results.md). Every label is from a closed set (``FAILURE_REASONS``, ok/failed), never free text.
"""
from __future__ import annotations

import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

PREFIX = "railiance_conformance_serve"
# why a run was not taken: the closed set of the last_failure metric's reason label
FAILURE_REASONS = ("start_failed", "timeout", "exit_status", "no_report", "partial", "report_missing", "regression")


class _LastGood:
    """A prometheus_client collector re-exposing the last good run's own textfile metrics."""

    def __init__(self) -> None:
        self.text = ""

    def collect(self):
        yield from text_string_to_metric_families(self.text) if self.text else ()


class _Staleness:
    """How old the served result is, computed at each scrape: seconds since the served run finished."""

    def __init__(self, served_finished_at: Callable[[], float | None]) -> None:
        self.served_finished_at = served_finished_at

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        finished_at = self.served_finished_at()
        family = GaugeMetricFamily(f"{PREFIX}_served_run_age_seconds",
                                   "Seconds since the served run finished (alert when it exceeds a few intervals: "
                                   "the served findings are stale).")
        if finished_at is not None:
            family.add_metric([], max(0.0, time.time() - finished_at))
        yield family


class ServeMetrics:
    """The registry behind /metrics and the updates a run makes to it; ``served_finished_at()`` gives
    when the served run finished (epoch seconds), None before one is served."""

    def __init__(self, served_finished_at: Callable[[], float | None]) -> None:
        self.registry = CollectorRegistry()
        self.last_good = _LastGood()
        self.registry.register(self.last_good)
        self.runs = Counter(f"{PREFIX}_runs", "Suite runs by result: ok (served) or failed (the last good result kept).",
                            ["result"], registry=self.registry)
        for result in ("ok", "failed"):
            self.runs.labels(result)
        self.last_success = Gauge(f"{PREFIX}_last_run_success", "1 if the last run finished and was taken, else 0.",
                                  registry=self.registry)
        self.running = Gauge(f"{PREFIX}_running", "1 while a suite run is in progress.", registry=self.registry)
        self.duration = Gauge(f"{PREFIX}_last_run_duration_seconds", "How long the last run took.",
                              registry=self.registry)
        self.good_time = Gauge(f"{PREFIX}_last_good_run_timestamp_seconds",
                               "When the served (last good) run finished, seconds since the epoch.", registry=self.registry)
        self.failure = Gauge(f"{PREFIX}_last_failure", "1 for why the last run was not taken (reason from a closed "
                             "set), 0 for the others; all 0 once a run is taken.", ["reason"], registry=self.registry)
        for reason in FAILURE_REASONS:
            self.failure.labels(reason).set(0)
        self.last_time = Gauge(f"{PREFIX}_last_run_timestamp_seconds",
                               "When the last run finished, taken or not, seconds since the epoch.", registry=self.registry)
        self.behind = Gauge(f"{PREFIX}_runs_since_served",
                            "Runs finished since the served one was taken (0: the served result is the last run's).",
                            registry=self.registry)
        self.result_ok = Gauge(f"{PREFIX}_status_ok", "1 when /status answers 200 (nothing at or above the chosen "
                               "severity drifted or could not be verified in the last run), else 0.",
                               registry=self.registry)
        self.registry.register(_Staleness(served_finished_at))

    def page(self) -> bytes:
        """The /metrics body, Prometheus text exposition format."""
        return generate_latest(self.registry)

    def completed(self, finished_at: float, status_ok: bool, failure: str) -> None:
        """A run finished at ``finished_at``: taken (``failure`` empty) or not (its ``FAILURE_REASONS`` key)."""
        self.last_time.set(finished_at)
        self.result_ok.set(int(status_ok))
        for name in FAILURE_REASONS:
            self.failure.labels(name).set(int(name == failure))

    def failed(self) -> None:
        """The run was not taken: the last good result stays served, one more run behind."""
        self.runs.labels("failed").inc()
        self.last_success.set(0)
        self.behind.inc()

    def taken(self, finished_at: float, metrics: str) -> None:
        """The run (its textfile ``metrics``, finished at ``finished_at``) is the served result now."""
        self.last_good.text = metrics
        self.runs.labels("ok").inc()
        self.last_success.set(1)
        self.behind.set(0)
        self.good_time.set(finished_at)
