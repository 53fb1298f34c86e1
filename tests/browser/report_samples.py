"""A realistic run of every bundled control, recorded several nights over into a history, for the browser tests.

Hosts ``conformant``, ``drifted`` and ``stopped`` get every host control, ``railiance-testbed`` every
cluster and boundary control, ``repos`` the repo controls; each finding says where its expected value
came from (the bundled feature line), as the steps do. The last night has every status; earlier
nights drift less, so the trend moves.
"""
from __future__ import annotations

from pathlib import Path

from railiance_conformance.checks import bundled_plan
from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Run
from railiance_conformance.reporting.output import Publication, publish

HOSTS = ("conformant", "drifted", "stopped")
WAIVER = ("argocd/argocd: waived until 2027-03-31 (end of day UTC), approved by worsch; migration: "
          "railiance-cluster/workplans/RAIL-CL-WP-0007-argocd-to-s4.md")


def _targets(control_id: str) -> tuple[str, ...]:
    if control_id.startswith("host."):
        return HOSTS
    return ("repos",) if control_id.startswith("repo.") else ("railiance-testbed",)


def _status(control_id: str, target: str, night: int, nights: int, pending: str) -> Status:
    if pending:
        return Status.PENDING
    if target == "stopped":
        return Status.ERROR
    if control_id == "boundary.component.manager":
        return Status.WAIVED
    if target == "drifted" or control_id in ("cluster.gitea.database", "cluster.postgresql_ha.absent"):
        # drift starts on different nights per control, so the trend and the streaks move
        return Status.DRIFT if night >= (sum(map(ord, control_id)) % nights) else Status.PASS
    return Status.PASS


def night(n: int, nights: int) -> Run:
    plan = bundled_plan()
    findings = []
    for control_id, spec in sorted(plan.specs.items()):
        control = plan.catalog[control_id]
        for target in _targets(control_id):
            status = _status(control_id, target, n, nights, control.pending or "")
            expected, observed, reason = {"value": 1, "mode": "0600"}, {"value": 1, "mode": "0600"}, ""
            if control_id == "cluster.gitea.database":
                expected = {"DB_TYPE": "postgres", "HOST": "gitea-db-rw.databases.svc.cluster.local:5432",
                            "NAME": "gitea", "USER": "gitea", "PASSWD": "***"}
                observed = {**expected, "HOST": "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432"}
            elif status is Status.DRIFT:
                observed = {"value": 2, "mode": "0600"}
            if status is Status.ERROR:
                observed, reason = None, "ssh: connect to host 127.0.0.9 port 2222: Connection refused"
            elif status is Status.WAIVED:
                reason = WAIVER
            elif status is Status.PENDING:
                expected = observed = None
                reason = control.pending
            findings.append(Finding(control_id, control.title, plan.catalog.task_id(control), control.layer,
                                    control.severity, target, status, expected, observed, control.remediation,
                                    reason, (("expected_from", {"value": spec.source}),), 0.01,
                                    f"2026-11-{10 + n:02d}T03:17:01Z"))
    return Run(f"night-{n:02d}", f"2026-11-{10 + n:02d}T03:17:00Z", f"2026-11-{10 + n:02d}T03:18:00Z",
               tuple(findings), tuple(sorted({f.target for f in findings})), workplan="RAIL-HO-WP-0004")


def recorded_nights(report_dir: Path, nights: int = 8) -> Publication:
    """Publish ``nights`` runs into ``report_dir`` (HTML and JSON, one history); the last publication."""
    published = None
    for n in range(nights):
        published = publish(night(n, nights), report_dir, ["html", "json"], report_dir / "history.sqlite")
        assert not published.failures, published.failures
    return published
