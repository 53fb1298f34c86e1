"""The S1 host controls against a real kernel: one conformant host booted as a QEMU VM (TCG).

The nspawn hosts fake /proc/swaps and /proc/sys/vm/swappiness; this VM fakes nothing: its
4 GiB /swapfile was fallocated, mkswap'd and swapon'd at boot, its swappiness set by
``sysctl --system``, its limits applied by PAM in the SSH session, its user-1000.slice made by
logind and systemd. One VM is booted for the module (30-90 s under TCG) and stopped by its pid.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_testbed.hosts import CONFORMANT, GIB, GITEA_NODEPORT
from tests.suite_runner import copy_features, run_features, run_suite

CATALOG = load_catalog(DEFAULT_POLICY_DIR)
HOST_CONTROLS = {c.id for c in CATALOG.controls.values() if c.id.startswith("host.") and not c.pending}
HOST_PENDING = {c.id for c in CATALOG.controls.values() if c.id.startswith("host.") and c.pending}
T01 = {"host.swap.file", "host.swap.active", "host.swap.fstab", "host.swappiness.live", "host.swappiness.persisted"}
T02 = {"host.user.uid", "host.nproc.configured", "host.nproc.effective", "host.slice.configured",
       "host.slice.effective"}
PAGE_KIB = 4


def vm_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the VM testbed needs root (debootstrap, mke2fs -d of a root-owned tree)"
    for tool in ("qemu-system-x86_64", "qemu-img", "mke2fs", "debootstrap", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return f"{tool} is not installed (run: ./run deps)"
    return None


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    from railiance_testbed.vm import VMHost

    reason = vm_unavailable_reason()
    if reason:
        pytest.fail(f"VM testbed unavailable: {reason}")  # never a silent skip
    with VMHost(CONFORMANT, tmp_path_factory.mktemp("vm")) as host:
        yield host


def timed_suite(label: str, *args: str, report_dir, features=None):
    began = time.monotonic()
    run = run_features(features, *args, report_dir=report_dir) if features else run_suite(*args, report_dir=report_dir)
    print(f"\n{label}: suite run {time.monotonic() - began:.1f}s")
    return run


def test_t01_passes_on_a_real_kernel_with_a_real_swapfile(vm, tmp_path):
    run = timed_suite("real kernel", "-m", "S1", "--hosts", vm.url, "--ssh-config", str(vm.ssh_config),
                      report_dir=tmp_path / "reports")
    target = f"127.0.0.1:{vm.port}"
    by_id = {f["control_id"]: f for f in run.findings(target)}
    assert by_id, run.stdout[-3000:] + run.stderr[-3000:]
    assert {c: by_id[c]["status"] for c in T01} == {c: "pass" for c in T01}, {c: by_id[c] for c in T01}

    # the evidence is the kernel's: a real swapon lists the file's size minus its header page
    swap_bytes = CONFORMANT.swap_bytes
    active = by_id["host.swap.active"]
    assert active["observed"] == {"active": True, "size_kib": swap_bytes // 1024 - PAGE_KIB}
    assert active["evidence"]["page_size"] == PAGE_KIB * 1024
    assert active["evidence"]["file_bytes"] == swap_bytes
    # fallocate really allocated the file (the nspawn hosts' swapfile is sparse: 0 bytes allocated)
    swapfile = by_id["host.swap.file"]
    assert swapfile["observed"] == {"type": "regular file", "owner": "root", "mode": "0600", "size_bytes": 4 * GIB}
    assert swapfile["evidence"]["allocated_bytes"] >= swap_bytes
    assert by_id["host.swappiness.live"]["observed"] == 10
    assert by_id["host.swappiness.persisted"]["evidence"]["winning_source"] == "/etc/sysctl.d/60-swappiness.conf:2"

    # ... and it is another kernel than this machine's, whose own /proc/swaps agrees with the finding
    # (and whose memory accounting counts the swap: nspawn hosts show this machine's SwapTotal)
    seen = vm.ssh("uname -r; grep SwapTotal /proc/meminfo; cat /proc/sys/vm/swappiness; cat /proc/swaps")
    assert seen.returncode == 0, seen.stderr
    release, swap_total, swappiness, *swaps = seen.stdout.strip().splitlines()
    assert release != os.uname().release
    assert swap_total.split() == ["SwapTotal:", str(swap_bytes // 1024 - PAGE_KIB), "kB"]
    assert swappiness == "10"
    assert [line.split()[:3] for line in swaps[1:]] == [["/swapfile", "file", str(swap_bytes // 1024 - PAGE_KIB)]]

    # T02 on real PAM, real logind/systemd, real cgroups; T07's files
    assert {c: by_id[c]["status"] for c in T02} == {c: "pass" for c in T02}, {c: by_id[c] for c in T02}
    assert by_id["host.nproc.effective"]["evidence"]["read_from"] == "this SSH login session"
    assert by_id["host.nproc.effective"]["observed"] == {"soft": 512, "hard": 1024}
    assert by_id["host.slice.effective"]["observed"] == {"MemoryMax": 1500 * 1024 ** 2,
                                                         "MemorySwapMax": 512 * 1024 ** 2}
    assert by_id["host.gitea_ssh.key"]["status"] == "pass"
    assert by_id["host.gitea_ssh.remotes"]["status"] == "pass"
    # with --hosts and no cluster nothing says what Gitea's NodePort is: that is an error by design
    # (the policy-override run below gives it and sees it pass)
    assert by_id["host.gitea_ssh.config"]["status"] == "error"
    assert "NodePort of Service gitea/gitea-ssh is unknown" in by_id["host.gitea_ssh.config"]["reason"]
    assert {c for c, f in by_id.items() if f["status"] == "pending"} == HOST_PENDING
    assert set(by_id) == HOST_CONTROLS | HOST_PENDING


def test_drift_is_detected_on_the_real_kernel(vm, tmp_path):
    """The same live kernel, features that want swappiness 30: both swappiness controls drift, observed 10."""
    features = copy_features(tmp_path)
    t01, t07 = features / "S1" / "T01-swapfile.feature", features / "S1" / "T07-gitea-ssh.feature"
    t01.write_text(t01.read_text().replace("vm.swappiness is 10 now", "vm.swappiness is 30 now")
                   .replace("sets vm.swappiness to 10", "sets vm.swappiness to 30"))
    # no cluster: the feature states the NodePort itself
    t07.write_text(t07.read_text().replace("Port the NodePort of Service gitea/gitea-ssh", f"Port {GITEA_NODEPORT}"))

    run = timed_suite("feature override", "-m", "S1", "--hosts", vm.url, "--ssh-config", str(vm.ssh_config),
                      report_dir=tmp_path / "reports", features=features)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # drift found
    by_id = {f["control_id"]: f for f in run.findings(f"127.0.0.1:{vm.port}")}
    for control in ("host.swappiness.live", "host.swappiness.persisted"):
        assert by_id[control]["status"] == "drift", by_id[control]
        assert (by_id[control]["expected"], by_id[control]["observed"]) == (30, 10)
    assert by_id["host.swappiness.persisted"]["evidence"]["winning_source"] == "/etc/sysctl.d/60-swappiness.conf:2"
    # everything else on the VM passes, the Gitea SSH block included now that its NodePort is known
    # (the VM's image does not start the Gitea SSH server yet: the T07 outcome checks are errors that say
    # "Connection refused", checked on the nspawn testbed instead, tests/e2e/test_outcomes_on_testbed.py)
    git_outcomes = {"host.gitea_ssh.login", "host.gitea_ssh.ls_remote"}
    assert all("Connection refused" in by_id[c]["reason"] for c in git_outcomes if by_id[c]["status"] == "error")
    others = HOST_CONTROLS - {"host.swappiness.live", "host.swappiness.persisted"} - git_outcomes
    assert {c: by_id[c]["status"] for c in others} == {c: "pass" for c in others}, \
        {c: by_id[c] for c in others if by_id[c]["status"] != "pass"}
