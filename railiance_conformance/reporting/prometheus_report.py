"""Prometheus textfile-collector metrics: ``railiance_conformance.prom`` for node_exporter.

One series per control and target with value 1 and its current status and the control's severity as
labels, totals per status and per status and severity (zeros included), the verdict, the run's finish
time, duration and whether it was partial; every label value is an identifier from a closed set or a
name (control, task, layer, target, table), never free text; a gate run adds its verdict and the
restore-parity row counts, a run with a history what changed since the previous run. Written by
prometheus_client (a private ``CollectorRegistry`` and ``generate_latest``: the exposition format,
HELP/TYPE lines and label escaping are the client library's); no sample timestamps (the textfile
collector rejects them); ``write_reports`` writes the file atomically, as the collector requires.
Example: ``render(run)`` -> ``'...railiance_conformance_control_status{control_id="host.swap.file",...} 1.0\\n...'``.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Gauge

from railiance_conformance.finding import Status
from railiance_conformance.levels import SEVERITIES  # the catalog's, loudest first
from railiance_conformance.reporting import Reporter, Run, printable, register

PREFIX = "railiance_conformance"


def epoch_seconds(timestamp: str) -> float | None:
    """``epoch_seconds("1970-01-01T00:01:00Z")`` -> ``60.0`` (naive is UTC); None if it does not parse."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _gauge(registry: CollectorRegistry, name: str, documentation: str, *labels: str) -> Gauge:
    from prometheus_client import Gauge

    return Gauge(f"{PREFIX}_{name}", documentation, labels, registry=registry)


def severity_label(severity: str) -> str:
    """A control's severity as a label value from the closed set ``SEVERITIES`` (anything else: ``info``)."""
    return severity.lower() if severity.lower() in SEVERITIES else "info"


def _label(value: object) -> str:
    """Target text made inert (control and bidi characters as escapes, ``printable``); the client
    escapes backslash, quote and newline as the exposition format requires."""
    return printable(str(value))


class _Fixed:
    """A collector of one metric family whose samples are already known."""

    def __init__(self, family) -> None:
        self.family = family

    def collect(self) -> list:
        return [self.family]


def registry_of(run: Run) -> CollectorRegistry:
    """Every metric of ``run`` in a fresh registry (nothing process-global is touched)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    registry = CollectorRegistry()
    chosen = run.one_per_key()  # a control recorded twice on one target: its louder status
    # one series per finding: a metric family of fixed samples rather than a Gauge child per label set (the
    # client validates and stores each child; the exposition is the same). Label sets in first-seen order,
    # each once, as Gauge.labels() keeps its children (two targets may print alike).
    series = dict.fromkeys((_label(f.control_id), _label(f.task), _label(f.layer), _label(f.target),
                            severity_label(f.severity), f.status.value) for f in chosen)
    status = GaugeMetricFamily(f"{PREFIX}_control_status", "1 for each control and target, labelled with its current "
                               "status and the control's severity.",
                               labels=("control_id", "task", "layer", "target", "severity", "status"))
    for labels in series:
        status.add_metric(labels, 1.0)
    registry.register(_Fixed(status))
    totals = _gauge(registry, "findings", "Findings of the last run per status.", "status")
    for name, count in run.counts().items():
        totals.labels(name).set(count)
    by_severity = _gauge(registry, "findings_by_severity", "Findings of the last run per status and control severity "
                         "(every pair, zeros included: alert on drift{severity=\"critical\"} > 0).", "status", "severity")
    pairs = Counter((f.status, severity_label(f.severity)) for f in chosen)
    for each in Status:
        for severity in SEVERITIES:
            by_severity.labels(each.value, severity).set(pairs[each, severity])
    verdict = _gauge(registry, "run_verdict", "The last run's verdict: 1 for the one that holds "
                     "(conformant, drift, could_not_verify).", "verdict")
    for name in ("conformant", "drift", "could not verify"):
        verdict.labels(name.replace(" ", "_")).set(int(run.verdict() == name))
    finished = epoch_seconds(run.finished_at) or epoch_seconds(run.started_at)
    started = epoch_seconds(run.started_at)
    if finished is not None:
        _gauge(registry, "run_timestamp_seconds", "When the last run finished, in seconds since the epoch.").set(finished)
        complete = finished if not run.partial else next(
            (epoch_seconds(r.finished_at) for r in reversed((run.trend.runs if run.trend else ())[:-1])
             if not r.partial and epoch_seconds(r.finished_at) is not None), None)
        if complete is not None:  # a partial run keeps the last complete one's time (from the history)
            _gauge(registry, "last_complete_run_timestamp_seconds",
                   "When the last run that evaluated every selected control finished, seconds since the epoch "
                   "(a partial run: the last complete one in the history).").set(complete)
    if finished is not None and started is not None:
        _gauge(registry, "run_duration_seconds", "How long the last run took, from start to its findings.") \
            .set(max(0.0, finished - started))
    _gauge(registry, "run_partial", "1 if the last run was interrupted before every control was evaluated.") \
        .set(int(run.partial))
    if run.gate is not None:
        task = _label(run.gate.task)
        _gauge(registry, "gate_go", "1 if the cutover gate of the task said GO, 0 for NO-GO.", "task") \
            .labels(task).set(int(run.gate.go))
        rows = [(name, side, count) for name, counts in run.gate.parity_tables().items()
                for side, count in (("source", counts.source), ("restored", counts.restored)) if count is not None]
        if rows:
            table_rows = _gauge(registry, "gate_table_rows",
                                "Exact row count per table of the gate's restore-parity check.", "task", "table", "side")
            for name, side, count in rows:
                table_rows.labels(task, _label(name), side).set(count)
    changes = run.changes()
    if changes is not None:
        changed = _gauge(registry, "changes", "Findings that changed since the previous run, by kind of change.",
                         "change")
        for name, count in changes.items():
            changed.labels(name).set(count)
    if run.coverage:
        clauses = _gauge(registry, "done_when_clauses",
                         "The workplan tasks' Done-when clauses in the last run, by task and state "
                         "(verified, drifted, not verifiable read-only, ...).", "task", "state")
        for row in run.coverage:
            for state in sorted({c.state for c in row.clauses}):
                clauses.labels(row.task, state).set(sum(c.state == state for c in row.clauses))
    return registry


def render(run: Run) -> str:
    from prometheus_client import generate_latest  # imported only when this format is written

    return generate_latest(registry_of(run)).decode("utf-8")


REPORTER = register(Reporter("prometheus", "railiance_conformance.prom", render))
