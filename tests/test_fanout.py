"""How host scenarios fan out: ``@hosts`` scenarios run once per host; others once.

testinfra's ``host`` parametrisation does not reach pytest-bdd's ``scenarios()`` tests, so
the suite's plugin parametrises ``target_host`` itself. This proves it with an inline
feature (pytest-bdd's own testing style).
"""
from __future__ import annotations

pytest_plugins = ["pytester"]

FEATURE = """\
Feature: fan-out
  @hosts
  Scenario: per host
    Given a host
    Then it is seen

  Scenario: once
    Given nothing
    Then it is seen once
"""

STEPS = """\
import json, os
from pytest_bdd import given, then, scenarios

scenarios("fanout.feature")
SEEN = os.environ.get("SEEN_FILE", os.devnull)

@given("a host", target_fixture="name")
def _(target_host):
    return target_host.name

@then("it is seen")
def _(name):
    with open(SEEN, "a") as f:
        f.write(name + "\\n")

@given("nothing")
def _():
    pass

@then("it is seen once")
def _():
    with open(SEEN, "a") as f:
        f.write("once\\n")
"""


def test_hosts_scenarios_run_once_per_host(pytester, monkeypatch, tmp_path):
    seen = tmp_path / "seen"
    monkeypatch.setenv("SEEN_FILE", str(seen))
    pytester.makeconftest('pytest_plugins = ["railiance_conformance.plugin"]')
    pytester.makefile(".feature", fanout=FEATURE)
    pytester.makepyfile(test_fanout=STEPS)
    result = pytester.runpytest("--hosts", "ssh://tegwick@127.0.0.2:2222,ssh://tegwick@127.0.0.3:2222",
                                "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == ["test_fanout.py::test_per_host[127.0.0.2:2222]", "test_fanout.py::test_per_host[127.0.0.3:2222]",
                   "test_fanout.py::test_once"]
    result = pytester.runpytest("--hosts", "ssh://tegwick@127.0.0.2:2222,ssh://tegwick@127.0.0.3:2222")
    result.assert_outcomes(passed=3)
    assert sorted(seen.read_text().split()) == ["127.0.0.2:2222", "127.0.0.3:2222", "once"]


def test_without_hosts_a_host_scenario_still_runs_once_and_says_why(pytester):
    pytester.makeconftest('pytest_plugins = ["railiance_conformance.plugin"]')
    pytester.makefile(".feature", fanout=FEATURE)
    pytester.makepyfile(test_fanout=STEPS)
    result = pytester.runpytest("--collect-only", "-q")
    assert "test_fanout.py::test_per_host[no-hosts]" in result.outlines
