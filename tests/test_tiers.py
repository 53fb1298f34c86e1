"""The test tiers (tests/tiers.py): every test carries ``unit`` alone or the tiers it needs, a test
marked ``unit`` that needs more stops the run, and one that starts another tier's tool fails."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.tiers import FIXTURE_TIERS, NEEDS, PATH_TIERS, TIERS, UNIT, TierError, started_tools, tiers_for

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent


def registered_markers() -> dict[str, str]:
    ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in ini["addopts"]
    return dict(line.split(":", 1) for line in ini["markers"])


def test_every_tier_is_registered_under_strict_markers():
    assert set(TIERS) <= set(registered_markers())


def test_every_collected_test_carries_unit_alone_or_what_it_needs(request):
    for item in request.session.items:
        tiers = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        assert tiers == {UNIT} or (tiers and tiers <= set(NEEDS)), f"{item.nodeid}: {sorted(tiers)}"


def test_the_rule_tables_name_real_paths_and_fixtures():
    for path in PATH_TIERS:
        assert (REPO / path).exists(), path
    conftests = "".join(p.read_text() for p in (REPO / "tests").rglob("conftest.py"))
    for name in FIXTURE_TIERS:
        assert re.search(rf"^def {name}\(", conftests, re.M), f"no fixture {name} in tests/**/conftest.py"


@pytest.mark.parametrize("path, fixtures, explicit, expected", [
    ("tests/unit/test_sysctl.py", ["tmp_path"], set(), ("unit",)),
    ("tests/unit/test_sysctl.py", ["tmp_path"], {"unit"}, ("unit",)),
    ("tests/gate/test_parity_tables.py", ["postgres", "seeded", "tmp_path"], set(), ("postgres",)),
    ("tests/gate/test_gate_cli.py", ["testbed", "postgres"], set(), ("postgres", "testbed")),
    ("tests/e2e/test_html_report.py", ["testbed_run"], set(), ("browser", "testbed")),
    ("tests/vm/test_real_kernel.py", [], set(), ("vm",)),
    ("tests/differential/test_sysctl_differential.py", [], set(), ("testbed",)),
    ("tests/unit/test_new.py", [], {"vm"}, ("vm",)),
    ("tests/e2e/test_x.py", [], {"testbed"}, ("testbed",)),
])
def test_tiers_for(path, fixtures, explicit, expected):
    assert tiers_for(path, fixtures, explicit) == expected


@pytest.mark.parametrize("path, fixtures, explicit, named", [
    ("tests/unit/test_x.py", ["postgres"], {"unit"}, "postgres: it uses the postgres fixture"),
    ("tests/e2e/test_x.py", [], {"unit"}, "testbed: it is in tests/e2e/"),
    ("tests/unit/test_x.py", [], {"unit", "vm"}, "vm: it is marked vm"),
])
def test_marked_unit_but_needing_more_is_refused_with_the_reason(path, fixtures, explicit, named):
    with pytest.raises(TierError, match="marked unit but needs more") as refused:
        tiers_for(path, fixtures, explicit)
    assert named in str(refused.value)


@pytest.mark.parametrize("argv, tools", [
    (["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/initdb", "-D", "d"], ["initdb"]),
    (["runuser", "-u", "postgres", "--", "psql"], []),
    (["systemd-nspawn", "--boot"], ["systemd-nspawn"]),
    (["/bin/sh", "-c", "unshare --mount true"], ["unshare"]),
    (["sh", "-c", "echo unshare"], []),
    (["git", "commit", "-m", "initdb"], []),
    (["/usr/sbin/sshd", "-D"], ["sshd"]),
    ("qemu-img create -f qcow2 x", ["qemu-img"]),
    (["env", "LC_ALL=C", "chromium", "--headless"], ["chromium"]),
    (["/venv/bin/python3", "-m", "pytest", "features/", "-q"], ["pytest features/"]),
    (["/venv/bin/python", "-m", "pytest", "/repo/features", "-p", "no:randomly"], ["pytest features/"]),
    (["/venv/bin/python", "-m", "pytest", "tests/unit"], []),
    (["python3", "-m", "railiance_conformance", "nightly"], ["python -m railiance_conformance"]),
    (["python3", "-m", "railiance_testbed.kubeapi", "--port", "0"], ["python -m railiance_testbed"]),
    (["python3", "-c", "import railiance_conformance"], []),
])
def test_started_tools(argv, tools):
    assert started_tools(argv) == tools


# --- the rule wired into a real pytest run (pytester, in-process) -----------------------------------
INNER_CONFTEST = """
import pytest
from tests.conftest import TIERS_KEY, pytest_collection_modifyitems, pytest_runtest_call, pytest_runtest_setup

@pytest.fixture(scope="session")
def postgres():
    return "a stand-in: only the name matters to the tier rules"
"""

UNIT_FILE = """
import subprocess
import pytest

def test_pure():
    assert 1 + 1 == 2

def test_starts_unshare_without_its_tier():
    try:
        subprocess.run(["unshare", "--help"], capture_output=True)
    except Exception:  # a test that swallows errors must not swallow this one
        pass

def test_swallows_even_base_exceptions():
    try:
        subprocess.run(["unshare", "--help"], capture_output=True)
    except BaseException:  # the guard remembers the violation and fails the test after its call
        pass

@pytest.mark.testbed
def test_starts_unshare_in_its_tier():
    assert subprocess.run(["unshare", "--help"], capture_output=True).returncode == 0

def test_postgres_tier_may_not_start_unshare(postgres):
    subprocess.run(["sh", "-c", "unshare --help"], capture_output=True)
"""


@pytest.fixture
def inner(pytester):
    markers = "\n".join(f"    {name}: {text.strip()}" for name, text in registered_markers().items())
    pytester.makeini(f"[pytest]\naddopts = --strict-markers -p no:cacheprovider\nmarkers =\n{markers}\n")
    pytester.makeconftest(INNER_CONFTEST)
    (pytester.path / "tests" / "e2e").mkdir(parents=True)  # no __init__.py: the outer `tests` package is loaded
    (pytester.path / "tests" / "test_mixed.py").write_text(UNIT_FILE)
    (pytester.path / "tests" / "e2e" / "test_on_hosts.py").write_text("def test_e2e():\n    pass\n")
    return pytester


def test_minus_m_unit_selects_exactly_the_unit_tier(inner):
    result = inner.runpytest("-m", "unit", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    collected = sorted(line for line in result.outlines if "::" in line)
    assert collected == ["tests/test_mixed.py::test_pure", "tests/test_mixed.py::test_starts_unshare_without_its_tier",
                         "tests/test_mixed.py::test_swallows_even_base_exceptions"]


def test_a_test_that_starts_another_tiers_tool_fails_naming_the_tool_and_the_tier(inner):
    result = inner.runpytest()
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([
        "tests/test_mixed.py::test_starts_unshare_without_its_tier carries unit but started unshare, which needs "
        "the testbed tier: *",
        "tests/test_mixed.py::test_swallows_even_base_exceptions carries unit but started unshare, *",
        "tests/test_mixed.py::test_postgres_tier_may_not_start_unshare carries postgres but started unshare, *",
    ])


def test_a_unit_marked_test_that_needs_a_tier_stops_the_unit_run(inner):
    (inner.path / "tests" / "test_wrong.py").write_text(
        "import pytest\n\n@pytest.mark.unit\ndef test_claims_unit(postgres):\n    pass\n")
    result = inner.runpytest("-m", "unit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test tiers contradict*",
                                 "*tests/test_wrong.py::test_claims_unit: marked unit but needs more "
                                 "(postgres: it uses the postgres fixture)*"])
