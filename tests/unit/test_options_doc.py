"""docs/options.md names every option the CLI and the pytest plugin declare, and every environment variable
the suite reads: a new option or variable without its row fails here."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "railiance_conformance"
DOC = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")


def _sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py")))


OPTIONS = sorted(set(re.findall(r"""(?:add_argument|addoption)\(\s*["'](--[a-z0-9-]+)["']""", _sources())))
VARIABLES = sorted(set(re.findall(r"""(?:environ\.get\(|environ\[|getenv\()\s*["']((?:RAILIANCE|HELM)_[A-Z_]+)["']""", _sources())))


def test_the_sources_declare_options_and_variables():
    assert len(OPTIONS) > 30 and "--report-dir" in OPTIONS
    assert "RAILIANCE_WEBHOOK_TOKEN" in VARIABLES


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_has_its_row(option):
    assert f"`{option}" in DOC, f"{option} is declared but docs/options.md does not name it"


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_environment_variable_has_its_row(variable):
    assert f"`{variable}" in DOC, f"${variable} is read but docs/options.md does not name it"
