"""The S1 host controls against real sshd hosts: conformant, drifted, and one that is down."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_testbed.hosts import CGROUP2_CONTROLS, DRIFTED_CONTROLS, REMOTE_SECRET_SENTINEL, cgroup2_memory
from tests.suite_runner import run_suite

CATALOG = load_catalog(DEFAULT_POLICY_DIR)
HOST_CONTROLS = {c.id for c in CATALOG.controls.values() if c.id.startswith("host.") and not c.pending}
HOST_PENDING = {c.id for c in CATALOG.controls.values() if c.id.startswith("host.") and c.pending}
# the cluster side of the testbed run (conformant dump): every non-pending cluster/boundary control
# passes except the two waived boundary violations; the repo controls pass on the conformant checkouts
CLUSTER = {c.id for c in CATALOG.controls.values() if c.id.startswith(("cluster.", "boundary.")) and not c.pending
           and c.id != "boundary.values.location"}
CLUSTER_PENDING = {c.id for c in CATALOG.controls.values() if c.id.startswith("cluster.") and c.pending}
REPO = {c.id for c in CATALOG.controls.values() if c.id.startswith("repo.") or c.id == "boundary.values.location"}
WAIVED = 2
# the kernel's cgroup v2 caps: an error that says so where this machine's containers get no cgroup v2
NO_CGROUP2 = frozenset() if cgroup2_memory() else CGROUP2_CONTROLS


def test_every_host_control_passes_on_the_conformant_host(testbed_run):
    assert testbed_run.statuses("conformant") == {**{c: "pass" for c in HOST_CONTROLS},
                                                  **{c: "error" for c in NO_CGROUP2},
                                                  **{c: "pending" for c in HOST_PENDING}}


def test_exactly_the_expected_controls_drift_on_the_drifted_host(testbed_run):
    statuses = testbed_run.statuses("drifted")
    assert {c for c, s in statuses.items() if s == "drift"} == DRIFTED_CONTROLS
    assert {c for c, s in statuses.items() if s not in ("drift", "pending")} == HOST_CONTROLS - DRIFTED_CONTROLS
    for finding in testbed_run.findings("drifted"):
        if finding["status"] == "pending" or (finding["control_id"] in CGROUP2_CONTROLS and finding["status"] == "error"):
            continue  # the drifted user has uid 1001: user-1000.slice has no cgroup (or the machine no cgroup v2)
        assert finding["expected"] is not None and finding["observed"] is not None, finding
        assert finding["expected"] != finding["observed"], finding
        assert finding["remediation"] and finding["task"].startswith("RAIL-HO-WP-0004-T")


def test_drift_names_the_values_and_where_they_come_from(testbed_run):
    by_id = {f["control_id"]: f for f in testbed_run.findings("drifted")}
    assert by_id["host.swappiness.persisted"]["observed"] == 60
    assert by_id["host.swappiness.persisted"]["evidence"]["winning_source"] == "/etc/sysctl.d/99-zz-tuning.conf:2"
    assert by_id["host.nproc.configured"]["observed"] == {"soft": 4096, "hard": 4096}
    assert by_id["host.nproc.effective"]["observed"] == {"soft": 4096, "hard": 4096}
    assert by_id["host.slice.configured"]["expected"] == {"MemoryMax": 1572864000, "MemorySwapMax": 536870912}
    assert by_id["host.slice.effective"]["observed"] == {"MemoryMax": 2147483648, "MemorySwapMax": 1073741824}
    assert by_id["host.user.uid"]["observed"] == 1001
    assert by_id["host.gitea_ssh.config"]["observed"]["port"] == 30023
    assert by_id["host.swap.file"]["observed"]["mode"] == "0644"


def test_every_control_of_the_stopped_host_is_an_error_with_the_reason(testbed_run):
    findings = [f for f in testbed_run.findings("stopped") if f["status"] != "pending"]
    assert {f["control_id"] for f in findings} == HOST_CONTROLS
    for finding in findings:
        assert finding["status"] == "error"
        assert "Connection refused" in finding["reason"], finding["reason"]


def test_the_run_fails_and_reports_every_target(testbed_run):
    assert testbed_run.returncode == 1  # drift and errors fail the run
    assert testbed_run.document["run"]["targets"] == ["conformant", "drifted", "railiance-testbed", "repos",
                                                      "stopped"]
    # hosts: every host control passes on conformant, drifts on drifted, is an error on stopped (the cgroup v2
    # caps: an error on drifted, whose uid has no user-1000.slice, and where containers get no cgroup v2);
    # the cluster controls pass but 2 waived boundary violations; the repo controls pass;
    # pending: the host's pending control on every host, the cluster's
    hosts = len(HOST_CONTROLS)
    assert testbed_run.document["summary"] == {"pass": hosts - len(NO_CGROUP2) + len(CLUSTER) - WAIVED + len(REPO),
                                               "drift": len(DRIFTED_CONTROLS),
                                               "error": hosts + len(CGROUP2_CONTROLS) + len(NO_CGROUP2), "waived": WAIVED,
                                               "pending": 3 * len(HOST_PENDING) + len(CLUSTER_PENDING)}
    assert "could not verify" in testbed_run.stdout and f"{len(DRIFTED_CONTROLS)} drift" in testbed_run.stdout


def test_junit_has_one_unique_testcase_per_control_and_target(testbed_run):
    root = ET.parse(testbed_run.report_dir / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert len(names) == len(set(names)) == 3 * (len(HOST_CONTROLS) + len(HOST_PENDING)) + len(CLUSTER) \
        + len(CLUSTER_PENDING) + len(REPO)
    drift = root.find(".//testcase[@name='host.swap.fstab@drifted']/failure")
    assert "make converge" in drift.get("message")
    assert root.find(".//testcase[@name='host.swap.fstab@stopped']/error") is not None


def test_no_secret_reaches_a_report_the_terminal_or_a_test_id(testbed_run):
    remote = {f["control_id"]: f for f in testbed_run.findings("drifted")}["host.gitea_ssh.remotes"]
    assert remote["observed"]["~/railiance-apps"] == "https://tegwick:***@gitea.example.invalid/coulomb/railiance-apps.git"
    for path in testbed_run.report_dir.iterdir():  # every format and the history database
        assert REMOTE_SECRET_SENTINEL.encode() not in path.read_bytes(), path
    assert REMOTE_SECRET_SENTINEL not in testbed_run.stdout + testbed_run.stderr


def test_the_ssh_block_port_is_compared_with_the_clusters_nodeport(testbed, tmp_path):
    from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump

    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, *drift_overlay("gitea-ssh-nodeport-changed")])) as api:
        run = run_suite("--ansible-inventory", str(testbed.inventory), "--ssh-config", str(testbed.ssh_config),
                        "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")), "--limit", "conformant",
                        "-k", "gitea_ssh", report_dir=tmp_path / "r")
    finding = {f["control_id"]: f for f in run.findings("conformant")}["host.gitea_ssh.config"]
    assert finding["status"] == "drift"
    assert (finding["expected"]["port"], finding["observed"]["port"]) == (30122, 30022)


def test_one_ssh_connection_and_one_command_per_host(testbed, tmp_path):
    logs = {h.state.name: h.sshd_log for h in testbed.hosts}
    before = {name: len(log.read_text().splitlines()) for name, log in logs.items()}
    run = run_suite(
        "--ansible-inventory", str(testbed.inventory), "--ssh-config", str(testbed.ssh_config), report_dir=tmp_path)
    assert run.findings("conformant")
    for name, log in logs.items():
        new = log.read_text().splitlines()[before[name]:]
        assert sum("Accepted publickey" in line for line in new) == 1, (name, new)
        assert sum("Starting session: command" in line for line in new) == 1, (name, new)


def test_a_changed_host_key_is_refused_not_accepted(testbed, tmp_path):
    conformant = next(h for h in testbed.hosts if h.state.name == "conformant")
    known = tmp_path / "known_hosts"
    known.write_text(f"[{conformant.address}]:2222 ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"IdentityFile {testbed.client_key}\nUserKnownHostsFile {known}\n")
    run = run_suite(
        "--hosts", conformant.url, "--ssh-config", str(config), "-m", "S1", report_dir=tmp_path / "r")
    findings = [f for f in run.findings() if f["status"] != "pending"]
    assert findings and all(f["status"] == "error" for f in findings)
    # ssh's own banner read as what it says: the host key of that host changed, never an observed value
    assert findings[0]["reason"].startswith(f"ssh failed: the host key of [{conformant.address}]:2222 changed "
                                            f"(ssh: REMOTE HOST IDENTIFICATION HAS CHANGED; the old key is {known}:1)")
    assert "ssh-keygen -R" in findings[0]["remediation"]
    assert "@@@" not in (tmp_path / "r" / "findings.json").read_text()
    assert "@@@" not in (tmp_path / "r" / "summary.md").read_text() + (tmp_path / "r" / "report.html").read_text()
    assert known.read_text().count("\n") == 1  # nothing was added
