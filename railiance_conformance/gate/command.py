"""``python -m railiance_conformance gate TASK``: run the suite, judge GO/NO-GO, record a signed approval.

Exit codes: 0 GO (and, with --approve, the approval recorded), 1 NO-GO (an --approve on NO-GO is
refused, nothing recorded), 3 usage error (unknown task, bad policy, --approve without a signing
key or allowed_signers; reported before any probe runs). ``--verify-approvals`` exits 0 when the
whole approval chain verifies, 1 naming every forged, edited, deleted, backdated or copied row (and an
empty chain beside GO runs, or a chain without the head given with ``--expect-head``), 3 on bad input.
SIGTERM, SIGINT or SIGHUP stops the suite it runs (its whole session, within seconds) and exits 1
(NO-GO), recording nothing.
Example: ``python -m railiance_conformance gate RAIL-HO-WP-0004-T09 --workplan WP.md --kubeconfig kc
--approve ada@railiance.example --signing-key ~/.ssh/id_ed25519 -- --ansible-inventory hosts.ini``.
"""
from __future__ import annotations

import re
import sys
import tempfile
import uuid
from pathlib import Path

from railiance_conformance.finding import Outcome
from railiance_conformance.gate.cutover import GateInputs, GateVerdict, decide, findings_from_report, parity_outcome
from railiance_conformance.interrupt import run_child
from railiance_conformance.policy import DEFAULT_POLICY_DIR, REPO_ROOT, PolicyError, load_catalog, load_document
from railiance_conformance.recorder import utc_now
from railiance_conformance.reporting import Run, load_reporters, write_reports

GO, NO_GO, USAGE_ERROR = 0, 1, 3
DEFAULT_TIMEOUTS = {"suite_s": 1800.0, "signing_s": 30.0}


def load_gate_policy(policy_dir: Path) -> dict:
    """``policies/gate.yaml`` validated, with ``timeouts`` defaulted; ``PolicyError`` names file and field."""
    document = load_document(policy_dir / "gate.yaml", "gate-policy")
    document["timeouts"] = {**DEFAULT_TIMEOUTS, **(document.get("timeouts") or {})}
    return document


def allowed_signers_path(policy_dir: Path, document: dict, override: Path | None) -> Path | None:
    """``--allowed-signers``, else ``approvals.allowed_signers`` of gate.yaml (relative to the policy dir)."""
    if override is not None:
        return override
    configured = (document.get("approvals") or {}).get("allowed_signers")
    return policy_dir / configured if configured else None


def _backup(task_policy: dict, kubeconfig: str | None, context: str | None):
    backup = task_policy.get("backup")
    if not backup:
        return None

    def check() -> Outcome:
        from railiance_conformance.probes.cluster import ClusterAccess, ClusterSnapshot
        from railiance_conformance.resources.cnpg_backups import backup_recency

        snap = ClusterSnapshot(ClusterAccess(kubeconfig, context))
        return backup_recency(snap, namespace=backup["namespace"], cluster=backup["cluster"],
                              window_hours=backup["window_hours"])
    return check


def _dsns(parity: dict) -> tuple[str, str]:
    from railiance_conformance.gate.pg_session import dsn_from_env

    return dsn_from_env(parity["source_dsn_env"]), dsn_from_env(parity["restored_dsn_env"])


def _parity(task_policy: dict):
    parity = task_policy.get("parity")
    if not parity:
        return None

    def check() -> Outcome:
        from railiance_conformance.gate.drill import DEFAULT_MARKER, marker_schema
        from railiance_conformance.gate.pg_session import DsnNotSet

        try:
            source, restored = _dsns(parity)
        except DsnNotSet as exc:
            return Outcome.error(str(exc), expected="same tables, same row counts")
        marker = (task_policy.get("drill") or {}).get("marker_table", DEFAULT_MARKER)
        return parity_outcome(source, restored, schemas=parity.get("schemas"),
                              exclude=(*parity.get("exclude_schemas", ()), marker_schema(marker)),
                              checksum=parity.get("checksum", False),
                              statement_timeout_ms=parity.get("statement_timeout_ms", 30000),
                              connect_timeout_s=parity.get("connect_timeout_s", 10))
    return check


def _drill(task_policy: dict):
    drill, parity = task_policy.get("drill"), task_policy.get("parity")
    if not drill or not parity:
        return None

    def check() -> Outcome:
        from railiance_conformance.gate.drill import DEFAULT_MARKER, drill_freshness
        from railiance_conformance.gate.pg_session import DsnNotSet, dsn_from_env

        try:
            restored = dsn_from_env(parity["restored_dsn_env"])
        except DsnNotSet as exc:
            return Outcome.error(str(exc), expected={"within_hours": drill["window_hours"]})
        return drill_freshness(restored, marker=drill.get("marker_table", DEFAULT_MARKER),
                               window_hours=drill["window_hours"],
                               statement_timeout_ms=parity.get("statement_timeout_ms", 30000),
                               connect_timeout_s=parity.get("connect_timeout_s", 10))
    return check


def run_gate(task_ref: str, *, workplan_path: Path, suite_args: list[str], report_dir: Path,
             policy_dir: Path = DEFAULT_POLICY_DIR, kubeconfig: str | None = None, context: str | None = None,
             history: Path | None = None, approve: str | None = None, repos: Path | None = None,
             signing_key: Path | None = None, allowed_signers: Path | None = None, out=None) -> int:
    from railiance_conformance.workplan import parse_workplan

    out = out or sys.stdout
    try:
        workplan = parse_workplan(workplan_path)
        catalog = load_catalog(policy_dir)
        document = load_gate_policy(policy_dir)
    except (PolicyError, ValueError, OSError) as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return USAGE_ERROR
    gate_policy, timeouts = document["tasks"], document["timeouts"]
    short = task_ref.rsplit("-", 1)[-1]
    task = workplan.tasks.get(short)
    if task is None or task.id != task_ref and task.short != task_ref:
        print(f"gate: {workplan_path}: no task {task_ref!r} (tasks: {', '.join(workplan.tasks)})", file=sys.stderr)
        return USAGE_ERROR
    if approve is not None:  # bad approval input is refused before any probe runs
        signers = allowed_signers_path(policy_dir, document, allowed_signers)
        problem = ("--approve needs --history" if history is None else
                   "--approve needs --signing-key (your SSH key; the approver is its principal in allowed_signers)"
                   if signing_key is None else
                   f"--signing-key {signing_key}: no such file" if not signing_key.is_file() else
                   "--approve needs an allowed_signers file (approvals.allowed_signers in gate.yaml or "
                   "--allowed-signers)" if signers is None else
                   f"allowed_signers {signers}: no such file" if not signers.is_file() else "")
        if problem:
            print(f"gate: {problem}", file=sys.stderr)
            return USAGE_ERROR
    layers = sorted({c.layer for c in catalog.controls.values() if c.task == short and c.layer != "X"}) or ["X"]
    cluster = _cluster(kubeconfig, context)
    started = utc_now()
    suite_failure = ""
    with tempfile.TemporaryDirectory(prefix="gate-suite-") as tmp:
        extra = [*(["--kubeconfig", kubeconfig] if kubeconfig else []), *(["--context", context] if context else []),
                 *(["--repos", str(repos)] if repos else [])]
        # the suite in a session of its own: a signal to the gate stops it (and its ssh sessions) too
        returncode, _, stderr, interrupted = run_child(
            [sys.executable, "-m", "pytest", "features/", "-q", "-p", "no:randomly", "--policy-dir", str(policy_dir),
             "--report-dir", tmp, "--history", "none", "--report-formats", "json", *extra, *suite_args],
            cwd=REPO_ROOT, capture=True, timeout=timeouts["suite_s"])
        if interrupted:
            print(f"gate: interrupted by {interrupted}: NO-GO for {task_ref}, nothing recorded", file=sys.stderr)
            return NO_GO
        if returncode == 4:
            print(f"gate: the suite refused its input:\n{stderr.strip()}", file=sys.stderr)
            return USAGE_ERROR
        suite_failure = f"exit {returncode}: {stderr.strip()[-300:]}" if returncode is not None else \
            f"it did not finish within {timeouts['suite_s']} s (timeouts.suite_s in gate.yaml)"
        report = Path(tmp) / "findings.json"
        suite = findings_from_report(report) if report.exists() else []
    policy = gate_policy.get(short, {})
    result = decide(GateInputs(task, workplan, suite, layers[0], _backup(policy, kubeconfig, context),
                               _parity(policy), _drill(policy)), catalog)
    if not suite:
        result.go = False
        result.reasons.insert(0, f"the suite produced no findings ({suite_failure})")
    gate = result.verdict(task.id, layers[0], cluster.uid if cluster else None)
    findings = tuple(suite) + tuple(result.findings)
    run = Run(run_id=uuid.uuid4().hex[:12], started_at=started, finished_at=utc_now(), findings=findings,
              targets=tuple(sorted({f.target for f in findings})), workplan=workplan.id, gate=gate)
    if history is not None:
        from railiance_conformance.gate.approvals import ApprovalChain
        from railiance_conformance.history import History

        History(history).record(run)
        ApprovalChain(history)  # the history's identity (and approval table) from its first gate run
    written = write_reports(run, report_dir, list(load_reporters()))
    print(f"{gate.verdict}: {task.id} ({task.title})  run {run.run_id}", file=out)
    for reason in result.reasons:
        print(f"  - {reason}", file=out)
    for finding in result.findings:
        print(f"  {finding.control_id}: {finding.status.value}", file=out)
    _print_tables(gate, out)
    print(f"reports: {', '.join(str(p) for p in written)}", file=out)
    digest = None
    if history is not None and (report_dir / "findings.json").exists():
        from railiance_conformance.gate.archive import store_report

        digest = store_report(history, report_dir / "findings.json")
        print(f"report archived: {digest}", file=out)
    if approve is not None and result.go and cluster is not None and cluster.uid is None:
        print(f"approval refused: the cluster's identity (its kube-system namespace uid) could not be read: "
              f"{cluster.error}; an approval of a run against a cluster carries it; nothing was recorded", file=out)
        return NO_GO
    if approve is not None:
        return _approve(approve, gate.verdict, task.id, run.run_id, digest, history, repos, signing_key,
                        allowed_signers_path(policy_dir, document, allowed_signers), timeouts["signing_s"], out)
    return GO if result.go else NO_GO


def _cluster(kubeconfig: str | None, context: str | None):
    """The targeted cluster's identity (``identity.ClusterIdentity``), None when no cluster is configured."""
    from railiance_conformance.gate.identity import cluster_identity
    from railiance_conformance.probes.cluster import ClusterAccess

    if not ClusterAccess(kubeconfig, context).configured():
        return None
    return cluster_identity(kubeconfig, context)


def _print_tables(gate: GateVerdict, out) -> None:
    tables = gate.parity_tables()
    if not tables:
        return
    parity = gate.evidence["gate.restore.parity"]
    print(f"  tables compared (schemas {', '.join(parity.get('schemas') or [])}; "
          f"{parity.get('sequences_checked', 0)} sequences checked):", file=out)
    width = max(len(name) for name in tables)
    for name, (source, restored) in tables.items():
        mark = "=" if source == restored and source is not None else "≠"
        print(f"    {name:<{width}}  source {source if source is not None else '–':>10}  {mark}  "
              f"restored {restored if restored is not None else '–':>10}", file=out)


def _approve(name: str, verdict: str, task_id: str, run_id: str, digest: str | None, history: Path | None,
             repos: Path | None, signing_key: Path | None, allowed_signers: Path | None, timeout_s: float,
             out) -> int:
    from railiance_conformance.gate.approval import ApprovalRefused, NotApproved
    from railiance_conformance.gate.approvals import ApprovalChain, repo_heads

    if verdict != "GO":
        print(f"approval refused: the gate says NO-GO for {task_id}; nothing was recorded", file=out)
        return NO_GO
    if history is None or digest is None or signing_key is None or allowed_signers is None:
        print("approval refused: no history database or no archived report to record it against", file=out)
        return USAGE_ERROR
    checkouts = sorted(p for p in repos.iterdir() if p.name.startswith("railiance-")) if repos else []
    try:
        approval = ApprovalChain(history).record(task=task_id, run_id=run_id, approver=name, report_digest=digest,
                                                 repo_heads=repo_heads(checkouts), signing_key=signing_key,
                                                 allowed_signers=allowed_signers, timeout_s=timeout_s)
    except (ApprovalRefused, NotApproved, ValueError, RuntimeError) as exc:
        print(f"approval refused: {exc}; nothing was recorded", file=out)
        return NO_GO
    print(f"approved: {task_id} run {run_id} by {approval.approver} at {approval.approved_at_utc} "
          f"(row #{approval.seq}, report {approval.report_digest}, {len(approval.repo_heads)} repo heads, "
          f"history {approval.history_id}, cluster {approval.cluster_id or 'none'}, chain head {approval.row_hash})",
          file=out)
    print(f"keep with the change ticket: gate --verify-approvals --expect-head {approval.row_hash}", file=out)
    return GO


def list_approvals(history: Path, out=None) -> int:
    from railiance_conformance.gate.approvals import ApprovalChain

    out = out or sys.stdout
    if not history.exists():
        print(f"gate: {history}: no such history database", file=sys.stderr)
        return USAGE_ERROR
    for approval in ApprovalChain(history, create=False).list():
        heads = ", ".join(f"{Path(k).name}@{v[:12]}" for k, v in approval.repo_heads.items())
        print(f"#{approval.seq}  {approval.approved_at_utc}  {approval.task}  run {approval.run_id}  {approval.verdict}"
              f"  by {approval.approver}  {approval.report_digest}  {heads}", file=out)
    print("(unverified listing: run gate --verify-approvals to check signatures and the chain)", file=out)
    return 0


def verify_approvals(history: Path, *, policy_dir: Path = DEFAULT_POLICY_DIR, allowed_signers: Path | None = None,
                     expect_head: str | None = None, kubeconfig: str | None = None, context: str | None = None,
                     out=None) -> int:
    """Check the whole approval chain; print each problem with its row, exit 0 only when none.

    ``expect_head``: ``sha256:<64 hex>`` kept elsewhere (printed with each approval); ``kubeconfig``/
    ``context``: every row must name that cluster's kube-system uid."""
    from railiance_conformance.gate.approval import GENESIS
    from railiance_conformance.gate.approval_verify import verify_chain
    from railiance_conformance.gate.identity import cluster_identity

    out = out or sys.stdout
    try:
        document = load_gate_policy(policy_dir)
    except (PolicyError, ValueError, OSError) as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return USAGE_ERROR
    signers = allowed_signers_path(policy_dir, document, allowed_signers)
    if not history.exists() or signers is None or not signers.is_file():
        missing = history if not history.exists() else signers or "approvals.allowed_signers in gate.yaml"
        print(f"gate: {missing}: no such file", file=sys.stderr)
        return USAGE_ERROR
    if expect_head is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", expect_head):
        print(f"gate: --expect-head {expect_head!r} is not 'sha256:' and 64 lowercase hex digits (the chain head "
              "the gate printed with the approval)", file=sys.stderr)
        return USAGE_ERROR
    cluster_id = None
    if kubeconfig or context:
        cluster = cluster_identity(kubeconfig, context)
        if cluster.uid is None:
            print(f"gate: the cluster's identity (kube-system namespace uid) could not be read: {cluster.error}; "
                  "the rows could not be checked against it (drop --kubeconfig to check the chain alone)", file=out)
            return NO_GO
        cluster_id = cluster.uid
    report = verify_chain(history, signers, expect_head=expect_head, cluster_id=cluster_id,
                          timeout_s=document["timeouts"]["signing_s"])
    for problem in report.problems:
        print(f"  - {problem}", file=out)
    if report.legacy_unsigned:
        print(f"note: {report.legacy_unsigned} approvals in the old unsigned table 'approvals' cannot be verified",
              file=out)
    if report.unbound:
        print(f"note: {report.unbound} rows were signed before approvals carried their history's identity and "
              "the run's end: they cannot show that they were made in this history", file=out)
    if report.expected_head_seq:
        later = report.rows - report.expected_head_seq
        print(f"the head kept elsewhere is row #{report.expected_head_seq}"
              + (f"; {later} rows were appended after it" if later else ""), file=out)
    elif expect_head == GENESIS and report.ok:
        print("the head kept elsewhere is the empty chain's" + (f"; {report.rows} rows were appended after it"
                                                               if report.rows else ""), file=out)
    state = "verifies" if report.ok else f"does NOT verify ({len(report.problems)} problems)"
    print(f"approval chain {state}: {report.rows} rows, head {report.head}, history {report.history_id or 'none'}, "
          f"signers {signers}", file=out)
    return 0 if report.ok else NO_GO
