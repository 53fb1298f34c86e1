"""Synthetic runs for the reporter and history tests: several targets, layers S1/S3/S5, every status."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Run

WORKPLAN = "RAIL-HO-WP-0004"


def finding(control_id: str, target: str, status: Status, expected: Any = None, observed: Any = None, *,
            layer: str = "S1", task: str = "T01", severity: str = "high", reason: str = "",
            evidence: dict[str, Any] | None = None, remediation: str = "make converge") -> Finding:
    return Finding(control_id=control_id, title=f"title of {control_id}", task=f"{WORKPLAN}-{task}", layer=layer,
                   severity=severity, target=target, status=status, expected=expected, observed=observed,
                   remediation=remediation, reason=reason, evidence=tuple((evidence or {}).items()),
                   duration_s=0.0125, started_at="2026-11-27T03:27:01Z")


FINDINGS: tuple[Finding, ...] = (
    finding("host.swap.file", "coulombcore", Status.PASS, {"mode": "0600", "size_bytes": 4294967296},
            {"mode": "0600", "size_bytes": 4294967296}, evidence={"path": "/swapfile", "allocated_bytes": 0}),
    finding("host.swap.file", "ampere", Status.DRIFT, {"mode": "0600", "size_bytes": 4294967296},
            {"mode": "0644", "size_bytes": 2147483648}, evidence={"path": "/swapfile"},
            remediation="railiance-infra: make converge (role swapfile | chmod 600)\nthen: swapon -a"),
    finding("host.swappiness.live", "ampere", Status.DRIFT, 10, 60, severity="medium",
            evidence={"source": "/proc/sys/vm/swappiness"}),
    finding("host.swappiness.live", "volta", Status.ERROR, 10, None, severity="medium",
            reason="ssh: connect to host volta port 22: Connection refused"),
    finding("host.limits.nofile", "coulombcore", Status.PASS, "65536", "65536", layer="S3", task="T07",
            severity="low"),
    finding("host.limits.nofile", "ampere", Status.DRIFT, "65536", 'soft "1024" | hard 4096\nfrom \\etc',
            layer="S3", task="T07", severity="low", reason="limits.d | override",
            evidence={"files": ["/etc/security/limits.d/a.conf", "/etc/security/limits.conf"]}),
    finding("cluster.gitea.ssh_nodeport", "railiance-prod", Status.WAIVED, 30022, 30023, layer="S5",
            task="T05", severity="critical", reason="RFC-12: moved port until migration"),
    finding("cluster.backup.schedule", "railiance-prod", Status.PENDING, layer="S5", task="T09",
            severity="info", reason="task T09 is not due yet"),
    finding("cluster.namespaces.labels", "railiance-prod", Status.ERROR, {"team": "platform"}, None, layer="S5",
            task="T03", severity="medium", reason="kubernetes API: 403 Forbidden\nnamespaces is forbidden"),
)


def sample_run(run_id: str = "run-b", findings: tuple[Finding, ...] = FINDINGS, **changes: Any) -> Run:
    run = Run(run_id=run_id, started_at="2026-11-27T03:27:00Z", finished_at="2026-11-27T03:27:05Z",
              findings=findings, targets=tuple(sorted({f.target for f in findings})), workplan=WORKPLAN)
    return replace(run, **changes)


def every_part_run(run_id: str = "run-b", findings: tuple[Finding, ...] = FINDINGS) -> Run:
    """The sample run with every optional part of ``Run`` set (a partial gate run with a history)."""
    from railiance_conformance.claims import Claim
    from railiance_conformance.coverage import ClauseCoverage, TaskCoverage
    from railiance_conformance.gate.cutover import GateVerdict
    from railiance_conformance.history import FindingHistory, RunDiff, RunInfo, StatusChange, Trend
    from railiance_conformance.reporting import FeatureText, OutputFailure

    drift = sorted(f.key for f in findings if f.status is Status.DRIFT)
    return sample_run(
        run_id, findings, partial=True,
        connections={"ampere": {"backend": "ssh", "address": "127.0.0.2", "user": "root", "port": 22,
                                "identity_file": None, "jump_host": None}},
        deadline="run deadline of 3 s exceeded: the checks not yet run have no finding",
        claims=(Claim(f"{WORKPLAN}-T01", "Swap", "done", False, "claimed done, drifted", {"drift": 2, "pass": 1},
                      tuple(drift[:2])),
                Claim(f"{WORKPLAN}-T09", "Cutover", "todo", True, "pending")),
        gate=GateVerdict(f"{WORKPLAN}-T09", go=False, reasons=("gate.backup.recent: drift: 30 h old",), layer="S5",
                         evidence={"gate.restore.parity": {"schemas": ["public"], "sequences_checked": 1,
                                                           "tables": {"public.customers": {"source": 120,
                                                                                           "restored": None}}}}),
        diff=RunDiff("run-a", run_id, tuple(drift[:1]), (), tuple(drift[1:]),
                     (StatusChange(drift[0], "pass", "drift"),)),
        history={key: FindingHistory(key, "run-a", "2026-11-26T03:27:00Z", run_id, "2026-11-27T03:27:00Z", "drift",
                                     2, 2) for key in drift},
        output_failures=(OutputFailure("reports/history.sqlite", "disk full (ENOSPC)"),),
        trend=Trend((RunInfo("run-a", "2026-11-26T03:27:00Z", "2026-11-26T03:27:05Z", False, ("ampere",),
                             {"pass": 1, "drift": 1, "error": 0, "waived": 0, "pending": 0}),
                     RunInfo(run_id, "2026-11-27T03:27:00Z", "2026-11-27T03:27:05Z", True, ("ampere",),
                             {"pass": 0, "drift": 2, "error": 0, "waived": 0, "pending": 0})),
                    {key: ("drift", "drift") for key in drift}),
        features={"host.swap.file": FeatureText("host.swap.file — the swap file", "/swapfile is a regular file of 4 GiB",
                                                "features/S1/T01-swapfile.feature:14")},
        # a task without a claim row: the terminal (which joins coverage to the claims) stays as long as it was
        coverage=(TaskCoverage(f"{WORKPLAN}-T07", (
            ClauseCoverage("git push from CoulombCore to Gitea succeeds over SSH without prompts", "verified",
                           ("host.gitea_ssh.login",)),
            ClauseCoverage("Ansible role deploys the key idempotently", "not verifiable read-only", (),
                           "needs two converges"))),))
