"""``python -m railiance_conformance gate TASK``: run the suite, judge GO/NO-GO, record an approval.

Exit codes: 0 GO, 1 NO-GO, 3 usage error (unknown task, bad policy, an --approve on NO-GO is
refused and exits 1 having recorded nothing).
Example: ``python -m railiance_conformance gate RAIL-HO-WP-0004-T09 --workplan WP.md --kubeconfig kc
--approve "A. Operator" -- --ansible-inventory hosts.ini``.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from railiance_conformance.finding import Outcome
from railiance_conformance.gate.cutover import GateInputs, decide, findings_from_report, parity_outcome
from railiance_conformance.policy import (DEFAULT_POLICY_DIR, REPO_ROOT, PolicyError, load_catalog,
                                          load_document)
from railiance_conformance.recorder import utc_now
from railiance_conformance.reporting import Run, load_reporters, write_reports

GO, NO_GO, USAGE_ERROR = 0, 1, 3


def _backup(task_policy: dict, kubeconfig: str | None, context: str | None):
    backup = task_policy.get("backup")
    if not backup:
        return None

    def check() -> Outcome:
        from railiance_conformance.gate.backups import backup_recency
        from railiance_conformance.probes.cluster import ClusterAccess, ClusterSnapshot

        snap = ClusterSnapshot(ClusterAccess(kubeconfig, context))
        return backup_recency(snap, namespace=backup["namespace"], cluster=backup["cluster"],
                              window_hours=backup["window_hours"])
    return check


def _parity(task_policy: dict):
    parity = task_policy.get("parity")
    if not parity:
        return None

    def check() -> Outcome:
        from railiance_conformance.gate.parity import DsnNotSet, dsn_from_env

        try:
            source, restored = dsn_from_env(parity["source_dsn_env"]), dsn_from_env(parity["restored_dsn_env"])
        except DsnNotSet as exc:
            return Outcome.error(str(exc), expected="same tables, same row counts")
        return parity_outcome(source, restored, schemas=tuple(parity.get("schemas", ["public"])),
                              statement_timeout_ms=parity.get("statement_timeout_ms", 30000))
    return check


def run_gate(task_ref: str, *, workplan_path: Path, suite_args: list[str], report_dir: Path,
             policy_dir: Path = DEFAULT_POLICY_DIR, kubeconfig: str | None = None, context: str | None = None,
             history: Path | None = None, approve: str | None = None, repos: Path | None = None,
             out=sys.stdout) -> int:
    from railiance_conformance.workplan import parse_workplan

    try:
        workplan = parse_workplan(workplan_path)
        catalog = load_catalog(policy_dir)
        gate_policy = load_document(policy_dir / "gate.yaml", "gate-policy")["tasks"]
    except (PolicyError, ValueError, OSError) as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return USAGE_ERROR
    short = task_ref.rsplit("-", 1)[-1]
    task = workplan.tasks.get(short)
    if task is None or task.id != task_ref and task.short != task_ref:
        print(f"gate: {workplan_path}: no task {task_ref!r} (tasks: {', '.join(workplan.tasks)})", file=sys.stderr)
        return USAGE_ERROR
    layers = sorted({c.layer for c in catalog.controls.values() if c.task == short and c.layer != "X"}) or ["X"]
    started = utc_now()
    with tempfile.TemporaryDirectory(prefix="gate-suite-") as tmp:
        extra = [*(["--kubeconfig", kubeconfig] if kubeconfig else []), *(["--context", context] if context else []),
                 *(["--repos", str(repos)] if repos else [])]
        proc = subprocess.run([sys.executable, "-m", "pytest", "features/", "-q", "-p", "no:randomly",
                               "--policy-dir", str(policy_dir), "--report-dir", tmp, "--history", "none",
                               "--report-formats", "json", *extra, *suite_args],
                              cwd=REPO_ROOT, capture_output=True, text=True)
        if proc.returncode == 4:
            print(f"gate: the suite refused its input:\n{proc.stderr.strip()}", file=sys.stderr)
            return USAGE_ERROR
        report = Path(tmp) / "findings.json"
        suite = findings_from_report(report) if report.exists() else []
    policy = gate_policy.get(short, {})
    result = decide(GateInputs(task, workplan, suite, layers[0], _backup(policy, kubeconfig, context),
                               _parity(policy)), catalog)
    if not suite:
        result.go = False
        result.reasons.insert(0, f"the suite produced no findings (exit {proc.returncode}): "
                                 f"{proc.stderr.strip()[-300:]}")
    verdict = "GO" if result.go else "NO-GO"
    gate_meta = {"task": task.id, "verdict": verdict, "reasons": result.reasons, "layer": layers[0]}
    findings = tuple(suite) + tuple(result.findings)
    run = Run(run_id=uuid.uuid4().hex[:12], started_at=started, finished_at=utc_now(), findings=findings,
              targets=tuple(sorted({f.target for f in findings})), meta={"workplan": workplan.id, "gate": gate_meta})
    if history is not None:
        from railiance_conformance.history import History

        History(history).record(run)
    written = write_reports(run, report_dir, list(load_reporters()))
    print(f"{verdict}: {task.id} ({task.title})", file=out)
    for reason in result.reasons:
        print(f"  - {reason}", file=out)
    for finding in result.findings:
        print(f"  {finding.control_id}: {finding.status.value}", file=out)
    print(f"reports: {', '.join(str(p) for p in written)}", file=out)
    if approve is not None:
        return _approve(approve, result.go, task.id, report_dir / "findings.json", history, repos, out)
    return GO if result.go else NO_GO


def _approve(name: str, go: bool, task_id: str, report: Path, history: Path | None, repos: Path | None, out) -> int:
    from railiance_conformance.gate.approvals import Approvals, file_digest, repo_heads

    if not go:
        print(f"approval refused: the gate says NO-GO for {task_id}; nothing was recorded", file=out)
        return NO_GO
    if history is None:
        print("approval refused: no history database to record it in (--history)", file=out)
        return USAGE_ERROR
    checkouts = sorted(p for p in repos.iterdir() if p.name.startswith("railiance-")) if repos else []
    approval = Approvals(history).record(task_id, name, datetime.now(timezone.utc), file_digest(report),
                                         repo_heads(checkouts))
    print(f"approved: {task_id} by {approval.approver} at {approval.decided_at_utc} "
          f"(report {approval.report_digest}, {len(approval.repo_heads)} repo heads)", file=out)
    return GO


def list_approvals(history: Path, out=sys.stdout) -> int:
    from railiance_conformance.gate.approvals import Approvals

    for approval in Approvals(history).list():
        heads = ", ".join(f"{Path(k).name}@{v[:12]}" for k, v in approval.repo_heads.items())
        print(f"{approval.decided_at_utc}  {approval.task}  GO  by {approval.approver}  {approval.report_digest}  {heads}",
              file=out)
    return 0
