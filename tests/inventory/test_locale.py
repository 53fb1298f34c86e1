"""A non-UTF-8 locale (LC_ALL=C, as in many CI images and cron jobs) with an inventory: ansible-core's
CLI module would exit at import ("Ansible requires the locale encoding to be UTF-8"), which pytest
reported as an INTERNALERROR. The suite sets C.UTF-8 for itself and ansible-core; without any
UTF-8 locale it is a usage error naming LC_ALL/LANG."""
from __future__ import annotations

import locale
import os
import subprocess
import sys

import pytest

from railiance_conformance import ansible_config
from railiance_conformance.policy import PolicyError
from tests.suite_runner import REPO


@pytest.mark.testbed  # the suite end to end
def test_lc_all_c_with_an_inventory_reads_it_instead_of_an_internalerror(tmp_path):
    hosts = tmp_path / "hosts.ini"
    hosts.write_text("[railiance]\ncore ansible_host=127.0.0.9 ansible_port=1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LANG"} | {"LC_ALL": "C", "LANG": "C"}
    done = subprocess.run([sys.executable, "-m", "pytest", "features/", "-q", "-p", "no:randomly", "-m", "S1",
                           "--ansible-inventory", str(hosts), "--report-dir", str(tmp_path / "r"),
                           "--connect-timeout", "2", "--command-timeout", "5"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert "INTERNALERROR" not in output and "requires the locale encoding" not in output, output[-2000:]
    assert done.returncode == 1, output[-2000:]  # the host was tried (and refused): a report, not a crash
    assert (tmp_path / "r" / "findings.json").exists()


def test_without_any_utf8_locale_it_is_a_usage_error_naming_lc_all_and_lang(monkeypatch):
    real = locale.setlocale

    def setlocale(category, name=None):
        if name in ansible_config.UTF8_LOCALES:
            raise locale.Error("unsupported locale setting")
        return real(category, "C") if name == "" else real(category, name)

    before = locale.setlocale(locale.LC_ALL)
    monkeypatch.setattr(locale, "setlocale", setlocale)
    monkeypatch.setenv("LC_ALL", "C")
    try:
        with pytest.raises(PolicyError) as caught:
            ansible_config.ensure_utf8_locale()
    finally:
        real(locale.LC_ALL, before)
    assert str(caught.value).startswith("LC_ALL/LANG: LC_ALL=C")
    assert "needs a UTF-8 locale" in str(caught.value)
