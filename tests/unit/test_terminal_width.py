"""The terminal summary in a real terminal (tmux, Debian's package) at 80 and 200 columns: no line is
wrapped by the terminal, no control id, target or finding key is broken, a drift shows its differing field,
a waiver one line per reference."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from tests.suite_runner import REPO

RUN = """
import shutil
from railiance_conformance.finding import Status
from railiance_conformance.reporting.terminal import render_summary
from tests.unit.reporting_samples import finding, sample_run

WAIVED = ("argocd/argocd: waived until 2027-03-31 (end of day UTC), approved by worsch; migration: "
          "railiance-cluster/workplans/RAIL-CL-WP-0007-argocd-to-s4.md; cnpg-system/cnpg: waived until 2027-03-31 "
          "(end of day UTC), approved by worsch; migration: railiance-platform/workplans/RAIL-PL-WP-0002-cnpg-operator-to-s3.md")
findings = (
    finding("cluster.gitea.database", "railiance-testbed-production-cluster", Status.DRIFT,
            {"DB_TYPE": "postgres", "HOST": "gitea-db-rw.databases.svc.cluster.local:5432", "NAME": "gitea"},
            {"DB_TYPE": "postgres", "HOST": "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432", "NAME": "gitea"},
            layer="S5", task="T04", remediation="railiance-apps: make gitea-deploy (values: database.HOST); "
            "then check that the postgresql-ha release is gone: helm -n gitea uninstall gitea-postgresql-ha"),
    finding("boundary.component.manager", "railiance-testbed-production-cluster", Status.WAIVED,
            {"argocd/argocd": "helm"}, {"argocd/argocd": "kubectl apply"}, layer="X", task="T04", reason=WAIVED),
    finding("host.gitea_ssh.remotes", "coulombcore-with-a-rather-long-inventory-name", Status.DRIFT,
            {"~/railiance-apps": "ssh://git@gitea-local/...", "~/railiance-infra": "ssh://git@gitea-local/..."},
            {"~/railiance-apps": "https://tegwick:***@gitea.example.invalid/coulomb/railiance-apps.git",
             "~/railiance-infra": "ssh://git@gitea-local/..."}, task="T07"),
    *(finding(f"host.swappiness.persisted.{n}", "stopped-host-that-never-answers", Status.ERROR, 10, None,
              reason="ssh: connect to host 127.0.0.9 port 2222: Connection refused") for n in range(6)),
    finding("cluster.state_hub.deployment", "railiance-testbed-production-cluster", Status.PENDING, layer="S5",
            task="T09", reason="RAIL-HO-WP-0004-T09 is todo and needs_human"),
)
print(render_summary(sample_run(findings=findings), width=shutil.get_terminal_size().columns, color=True))
"""
IDS = ["cluster.gitea.database", "boundary.component.manager", "host.gitea_ssh.remotes",
       "railiance-testbed-production-cluster", "coulombcore-with-a-rather-long-inventory-name",
       "stopped-host-that-never-answers", "cluster.state_hub.deployment",
       *(f"host.swappiness.persisted.{n}" for n in range(6))]


def tmux_capture(tmp_path, columns: int) -> tuple[list[str], list[str]]:
    """Run the summary in a detached tmux pane ``columns`` wide; (lines as shown, lines re-joined)."""
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed (./run deps installs it)")
    script = tmp_path / "summary.py"
    script.write_text(textwrap.dedent(RUN))
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")
    socket = tmp_path / "tmux.sock"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    tmux = ["tmux", "-S", str(socket), "-f", str(conf)]
    subprocess.run([*tmux, "new-session", "-d", "-x", str(columns), "-y", "400",
                    f"{sys.executable} {script}"], check=True, env=env, cwd=REPO, timeout=30)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([*tmux, "display", "-p", "#{pane_dead}"], capture_output=True, text=True,
                             timeout=10).stdout.strip() != "1":
            assert time.monotonic() < deadline, "the summary did not finish in 30 s"
            time.sleep(0.05)
        shown = subprocess.run([*tmux, "capture-pane", "-p", "-S", "-", "-E", "-"], capture_output=True,
                               text=True, check=True, timeout=10).stdout
        joined = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-S", "-", "-E", "-"], capture_output=True,
                                text=True, check=True, timeout=10).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
    def output(text: str) -> list[str]:  # the program's lines: without tmux's own "Pane is dead" line
        lines = [line for line in text.splitlines() if not line.startswith("Pane is dead")]
        while lines and not lines[-1].strip():
            lines.pop()
        return lines
    return output(shown), output(joined)


@pytest.mark.parametrize("columns", [80, 200])
def test_the_summary_fits_the_terminal_and_breaks_no_id(tmp_path, columns) -> None:
    shown, joined = tmux_capture(tmp_path, columns)
    body = [line for line in shown if line.strip() and "Pane is dead" not in line]
    assert len(body) > 20
    assert shown == joined, "the terminal wrapped a line: it was longer than the pane"
    assert max(len(line.rstrip()) for line in body) <= columns
    for name in IDS:
        assert any(name in line for line in body), f"{name} is broken or missing at {columns} columns"
    text = "\n".join(body)
    # the differing field only, expected → observed
    assert "HOST: gitea-db-rw.databases.svc.cluster.local:5432" in text
    assert "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432" in text
    assert "DB_TYPE" not in text and "2 more fields as expected" in text
    # one line per waiver reference, not the waiver's whole text
    assert any(line.strip() == "argocd/argocd waived until 2027-03-31: RAIL-CL-WP-0007-argocd-to-s4.md"
               for line in body)
    assert "end of day UTC" not in text
    assert "6 controls @ stopped-host-that-never-answers" in text
    if columns == 200:  # wide enough: each change on one line
        assert any("HOST: gitea-db-rw.databases.svc.cluster.local:5432 → gitea-postgresql-ha-pgpool" in line
                   for line in body)
