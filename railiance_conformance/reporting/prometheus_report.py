"""Prometheus textfile-collector metrics: ``railiance_conformance.prom`` for node_exporter.

One series per control and target with value 1 and its current status as a label, totals per
status, the run's finish time and whether it was partial. No sample timestamps (the textfile
collector rejects them); ``write_reports`` writes atomically, as the collector requires.
Example: ``render(run)`` -> ``'...railiance_conformance_control_status{control_id="host.swap.file",...} 1\\n...'``.
"""
from __future__ import annotations

from datetime import datetime, timezone

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register

PREFIX = "railiance_conformance"
# when one control is recorded twice on one target, the worse status is the one exposed
RANK = {Status.PASS: 0, Status.WAIVED: 1, Status.PENDING: 2, Status.ERROR: 3, Status.DRIFT: 4}


def escape_label(value: str) -> str:
    """Label value per the exposition format: ``escape_label('a"b')`` -> ``'a\\\\"b'``."""
    return printable(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{escape_label(str(value))}"' for name, value in labels.items()) + "}"


def _family(name: str, help_text: str, samples: list[str]) -> list[str]:
    return [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} gauge", *samples]


def epoch_seconds(timestamp: str) -> float | None:
    """``epoch_seconds("1970-01-01T00:01:00Z")`` -> ``60.0`` (naive is UTC); None if it does not parse."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def current(findings: tuple[Finding, ...]) -> list[Finding]:
    """One finding per ``control_id@target`` (the worse one if recorded twice), in key order."""
    chosen: dict[str, Finding] = {}
    for finding in findings:
        if finding.key not in chosen or RANK[finding.status] > RANK[chosen[finding.key].status]:
            chosen[finding.key] = finding
    return [chosen[key] for key in sorted(chosen)]


def render(run: Run) -> str:
    status = [f"{PREFIX}_control_status" + _labels(control_id=f.control_id, task=f.task, layer=f.layer,
                                                    target=f.target, status=f.status.value) + " 1"
              for f in current(run.findings)]
    totals = [f"{PREFIX}_findings{_labels(status=s)} {n}" for s, n in run.counts().items()]
    lines = [*_family("control_status", "1 for each control and target, labelled with its current status.",
                      status),
             *_family("findings", "Findings of the last run per status.", totals)]
    finished = epoch_seconds(run.finished_at) or epoch_seconds(run.started_at)
    if finished is not None:
        lines += _family("run_timestamp_seconds", "When the last run finished, in seconds since the epoch.",
                         [f"{PREFIX}_run_timestamp_seconds {finished:.3f}"])
    lines += _family("run_partial", "1 if the last run was interrupted before every control was evaluated.",
                     [f"{PREFIX}_run_partial {int(run.partial)}"])
    gate = run.meta.get("gate")
    if isinstance(gate, dict):
        lines += _family("gate_go", "1 if the cutover gate of the task said GO, 0 for NO-GO.",
                         [f"{PREFIX}_gate_go{_labels(task=gate['task'])} {int(gate['verdict'] == 'GO')}"])
        tables = ((gate.get("evidence") or {}).get("gate.restore.parity") or {}).get("tables") or {}
        rows = [f"{PREFIX}_gate_table_rows{_labels(task=gate['task'], table=name, side=side)} {c[side]}"
                for name, c in tables.items() for side in ("source", "restored") if c.get(side) is not None]
        if rows:
            lines += _family("gate_table_rows", "Exact row count per table of the gate's restore-parity check.", rows)
    changes = run.changes()
    if changes is not None:
        lines += _family("changes", "Findings that changed since the previous run, by kind of change.",
                         [f"{PREFIX}_changes{_labels(change=name)} {n}" for name, n in changes.items()])
    return "\n".join(lines) + "\n"


REPORTER = register(Reporter("prometheus", "railiance_conformance.prom", render))
