"""The suite's 18 S1 host controls as a testinfra user writes them (the baseline of benchmarks/host_controls.py).

Classic testinfra: one test per control, one remote command per property (``host.file(...).mode``,
``host.run(...)``), every host of ``--hosts`` in turn. Run as a user runs it, e.g.
``pytest --hosts=ssh://tegwick@127.77.1.2:2222 --ssh-config=ssh_config test_host_checks.py`` with a
ControlMaster/ControlPath in the ssh_config (without one, every command is a new SSH connection).
The values are those the features state (4 GiB swap, swappiness 10, nproc 512/1024, MemoryMax
1500M, MemorySwapMax 512M, Gitea on port 30022).
"""
import re

GIB = 1024 ** 3
USER, UID = "tegwick", 1000
REPOS = ("railiance-infra", "railiance-cluster", "railiance-platform", "railiance-apps")
SLICE = "/etc/systemd/system/user-1000.slice.d/50-resource-limits.conf"


def test_swap_file(host):
    swap = host.file("/swapfile")
    assert swap.is_file and swap.user == "root" and swap.mode == 0o600 and swap.size == 4 * GIB


def test_swap_active(host):
    assert re.search(r"^/swapfile\s+file", host.file("/proc/swaps").content_string, re.M)


def test_swap_fstab(host):
    assert re.search(r"^/swapfile\s+\S+\s+swap\s", host.file("/etc/fstab").content_string, re.M)


def test_swappiness_live(host):
    assert int(host.file("/proc/sys/vm/swappiness").content_string) == 10


def test_swappiness_persisted(host):
    assert re.search(r"vm\.swappiness\s*=\s*10\b", host.file("/etc/sysctl.d/60-swappiness.conf").content_string)


def test_swap_total(host):
    meminfo = host.file("/proc/meminfo").content_string
    total_kib = int(re.search(r"^SwapTotal:\s+(\d+) kB", meminfo, re.M).group(1))
    assert abs(total_kib * 1024 - 4 * GIB) <= 4096


def test_user_uid(host):
    assert host.user(USER).uid == UID


def test_nproc_configured(host):
    limits = host.file("/etc/security/limits.conf").content_string
    assert re.search(rf"^{USER}\s+soft\s+nproc\s+512\b", limits, re.M)
    assert re.search(rf"^{USER}\s+hard\s+nproc\s+1024\b", limits, re.M)


def test_nproc_effective(host):
    assert host.check_output("ulimit -Su; ulimit -Hu").split() == ["512", "1024"]


def test_nproc_processes(host):
    pids = host.check_output(f"pgrep -u {USER} || true").split()
    inspected = 0
    for pid in pids:
        limits = host.run(f"cat /proc/{pid}/limits")
        if limits.rc != 0:  # the process has ended since (pgrep's own session, for one)
            continue
        inspected += 1
        assert re.search(r"^Max processes\s+512\s+1024\s", limits.stdout, re.M), pid
    assert inspected


def test_slice_configured(host):
    dropin = host.file(SLICE).content_string
    assert "MemoryMax=1500M" in dropin and "MemorySwapMax=512M" in dropin


def test_slice_effective(host):
    shown = host.check_output("systemctl show user-1000.slice -p MemoryMax -p MemorySwapMax")
    assert "MemoryMax=1572864000" in shown and "MemorySwapMax=536870912" in shown


def test_slice_enforced(host):
    base = "/sys/fs/cgroup/user.slice/user-1000.slice"
    assert host.file(f"{base}/memory.max").content_string.strip() == "1572864000"
    assert host.file(f"{base}/memory.swap.max").content_string.strip() == "536870912"


def test_gitea_key(host):
    key = host.file(f"/home/{USER}/.ssh/id_ed25519_gitea")
    assert key.mode == 0o600 and key.user == USER
    assert host.file(f"/home/{USER}/.ssh/id_ed25519_gitea.pub").content_string.startswith("ssh-ed25519 ")


def test_gitea_config(host):
    resolved = host.check_output("ssh -G gitea-local").splitlines()
    assert {"hostname localhost", "user git", "port 30022"} <= set(resolved)
    assert "identityfile ~/.ssh/id_ed25519_gitea" in resolved or \
        f"identityfile /home/{USER}/.ssh/id_ed25519_gitea" in resolved


def test_gitea_remotes(host):
    for repo in REPOS:
        assert host.check_output(f"git -C ~/{repo} remote get-url origin").startswith("ssh://git@gitea-local/")
        assert host.check_output(f"git -C ~/{repo} remote get-url --push origin").startswith("ssh://git@gitea-local/")


def test_gitea_login(host):
    login = host.run("ssh -T -o BatchMode=yes gitea-local")
    assert login.rc != 255 and "Permission denied" not in login.stderr, login.stderr


def test_gitea_ls_remote(host):
    for repo in REPOS:
        url = host.check_output(f"git -C ~/{repo} remote get-url --push origin")
        assert host.run(f"GIT_SSH_COMMAND='ssh -o BatchMode=yes' git ls-remote {url}").rc == 0, repo
