"""Kind 4: deadlines are deadlines. A host whose sshd accepts and never answers (or one line every
5 s) costs --command-timeout once, not once per lookup: the ssh child is killed. A LIST whose
continue token repeats, or that goes past the page budget, ends with an error finding. A body
trickled one byte every 2 s times out within --api-timeout in total. The whole run has a deadline."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.faults.conftest import document, suite
from tests.faults.fake_hosts import BannerThenSilence, LoopbackSshd

COMMAND_TIMEOUT = 15


@pytest.fixture
def client_key(tmp_path) -> Path:
    key = tmp_path / "client_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def ssh_processes(port: int) -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"Port={port}"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def test_stalled_hosts_cost_the_command_timeout_once_and_are_killed(tmp_path, client_key):
    sleeper = LoopbackSshd(tmp_path / "sleep", client_key, "sleep 3600")
    dripper = LoopbackSshd(tmp_path / "drip", client_key, "sh -c 'while :; do echo x; sleep 5; done'")
    bystander = LoopbackSshd(tmp_path / "bystander", client_key)
    banner = BannerThenSilence()
    try:
        known = tmp_path / "known_hosts"
        known.write_text("".join(f"{h.known_host()}\n" for h in (sleeper, dripper, bystander)))
        config = tmp_path / "ssh_config"
        config.write_text("".join(
            f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  IdentityFile {client_key}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  StrictHostKeyChecking no\n"
            for name, port in (("sleeper", sleeper.port), ("dripper", dripper.port),
                               ("bystander", bystander.port), ("banner", banner.port))))
        done, took = suite(tmp_path / "r", "-m", "S1", "--hosts",
                           "ssh://root@sleeper,ssh://root@dripper,ssh://root@bystander,ssh://root@banner",
                           "--ssh-config", str(config), "--command-timeout", str(COMMAND_TIMEOUT),
                           "--connect-timeout", "60", timeout=300)
        leftovers = [p for h in (sleeper, dripper, banner) for p in ssh_processes(h.port)]
    finally:
        for host in (sleeper, dripper, bystander):
            host.stop()
        banner.stop()
    assert done.returncode == 1, done.stdout[-3000:]
    assert took < COMMAND_TIMEOUT + 20, f"the run took {took:.0f} s"  # one wave of 15 s, not 15 per lookup
    assert not leftovers, leftovers  # every stuck ssh child was killed
    doc = document(tmp_path / "r" / "findings.json")
    for name in ("sleeper", "dripper", "banner"):
        findings = [f for f in doc["findings"] if f["target"] == name and f["status"] != "pending"]
        assert findings and all(f["status"] == "error" for f in findings), name
        if name != "banner":  # a banner and then silence: ssh's own keepalive may give up first (~6 s)
            assert all(f"no answer within {COMMAND_TIMEOUT}s (--command-timeout): the ssh session was killed"
                       in f["reason"] for f in findings), findings[0]["reason"]
        else:
            assert all(f"no answer within {COMMAND_TIMEOUT}s" in f["reason"] or f["reason"].startswith("ssh failed")
                       for f in findings), findings[0]["reason"]
    stalled_controls = {f["control_id"] for f in doc["findings"] if f["target"] == "sleeper"}
    bystander_findings = [f for f in doc["findings"] if f["target"] == "bystander"]
    assert {f["control_id"] for f in bystander_findings} == stalled_controls  # no result lost
    assert not [f for f in bystander_findings if "no answer" in f["reason"]]
    assert sum(1 for f in bystander_findings if f["status"] in ("pass", "drift")) >= 5  # it was really probed


def cluster_errors(doc: dict) -> list[dict]:
    """The cluster findings that needed a LIST (the named-Secret GETs are not paged)."""
    return [f for f in doc["findings"] if f["control_id"].startswith("cluster.") and f["status"] != "pending"
            and f["control_id"] not in GET_ONLY]


GET_ONLY = {"cluster.gitea_db.credentials", "cluster.gitea.database", "cluster.gitea.cache",
            "cluster.gitea.db_health", "cluster.gitea.cache_health"}  # read by GET (or the service proxy), never a LIST


def test_a_repeated_continue_token_ends_the_list_with_an_error(standin, conformant_repos, tmp_path):
    api, kubeconfig = standin(fault="repeat-continue")
    done, took = suite(tmp_path / "r", "-m", "cluster or repos", "--kubeconfig", str(kubeconfig),
                       "--repos", str(conformant_repos), "--api-page-size", "2")
    doc = document(tmp_path / "r" / "findings.json")
    errors = cluster_errors(doc)
    assert done.returncode == 1 and errors
    assert all(f["status"] == "error" and "repeated a continue token (paging would never end)" in f["reason"]
               for f in errors), [f["reason"] for f in errors]
    assert len(api.requests()) < 100 and took < 60  # not 5,296 requests
    repos = [f for f in doc["findings"] if f["control_id"].startswith("repo.")]
    assert repos and all(f["status"] != "error" for f in repos)  # the other target kept its results


def test_endless_pages_stop_at_the_page_budget(standin, conformant_repos, tmp_path):
    api, kubeconfig = standin(fault="endless-continue")
    done, took = suite(tmp_path / "r", "-m", "cluster or repos", "--kubeconfig", str(kubeconfig),
                       "--repos", str(conformant_repos), "--api-page-size", "1", "--api-page-budget", "5")
    doc = document(tmp_path / "r" / "findings.json")
    errors = cluster_errors(doc)
    assert done.returncode == 1 and errors and all(f["status"] == "error" for f in errors)
    assert any("more than 5 pages" in f["reason"] and "--api-page-budget" in f["reason"] for f in errors)
    assert max(int(r.query.get("limit", 0)) for r in api.requests()) == 1
    assert len(api.requests()) <= 5 * 15 and took < 60
    assert [f for f in doc["findings"] if f["control_id"].startswith("repo.") and f["status"] != "error"]


def test_a_trickled_body_times_out_within_the_api_timeout_in_total(standin, conformant_repos, tmp_path):
    api, kubeconfig = standin(fault="trickle-body", trickle_interval_s=2.0)
    done, took = suite(tmp_path / "r", "-m", "cluster or repos", "--kubeconfig", str(kubeconfig),
                       "--repos", str(conformant_repos), "--api-timeout", "3")
    doc = document(tmp_path / "r" / "findings.json")
    errors = [f for f in doc["findings"] if f["control_id"].startswith("cluster.") and f["status"] != "pending"]
    assert done.returncode == 1 and errors and all(f["status"] == "error" for f in errors)
    assert all("timed out" in f["reason"] for f in errors), {f["reason"] for f in errors}
    requests = len(api.requests())
    assert took < requests * (3 + 1) + 30, (took, requests)  # each request ended at ~3 s, not at 2 s per byte
    assert [f for f in doc["findings"] if f["control_id"].startswith("repo.") and f["status"] != "error"]


def test_the_whole_run_has_a_deadline(standin, tmp_path):
    _, kubeconfig = standin(latency_s=1.0)
    done, took = suite(tmp_path / "r", "-m", "cluster", "--kubeconfig", str(kubeconfig), "--run-timeout", "3")
    assert done.returncode == 2, done.stdout[-2000:]
    assert took < 3 + 15
    doc = document(tmp_path / "r" / "findings.json")
    assert doc["run"]["partial"] is True and "run deadline of 3 s exceeded" in doc["run"]["deadline"]
    assert "run deadline of 3 s exceeded" in done.stdout


def test_the_default_run_deadline_is_derived_from_the_options():
    from types import SimpleNamespace

    from railiance_conformance.settings import default_run_timeout

    options = SimpleNamespace(probe_workers=16, command_timeout=60, api_timeout=10.0)
    assert default_run_timeout(1, options) == 65 + 200 + 120
    assert default_run_timeout(33, options) == 3 * 65 + 200 + 120  # three waves of 16 hosts


def test_a_host_that_closes_the_session_is_an_error_that_says_so(tmp_path, client_key):
    # the session's own sshd is killed by the forced command: ssh exits 255 saying the connection was
    # closed; every control of the host is an error with that reason and the connection's remedy
    closer = LoopbackSshd(tmp_path / "closer", client_key, "kill -KILL $PPID")
    try:
        known = tmp_path / "known_hosts"
        known.write_text(f"{closer.known_host()}\n")
        config = tmp_path / "ssh_config"
        config.write_text(f"Host closer\n  HostName 127.0.0.1\n  Port {closer.port}\n  IdentityFile {client_key}\n"
                          f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n")
        done, _ = suite(tmp_path / "r", "-m", "S1", "--hosts", "ssh://root@closer", "--ssh-config", str(config),
                        timeout=120)
    finally:
        closer.stop()
    assert done.returncode == 1, done.stdout[-3000:]
    findings = [f for f in document(tmp_path / "r" / "findings.json")["findings"] if f["status"] != "pending"]
    assert findings and all(f["status"] == "error" for f in findings)
    assert all("closed by remote host" in f["reason"] for f in findings), findings[0]["reason"]
    assert all("did not accept an SSH connection" in f["remediation"] for f in findings), findings[0]["remediation"]
