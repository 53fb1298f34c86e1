"""What ships: the wheel and the production image hold the suite (railiance_conformance) and never
the testbed (railiance_testbed) or the project's own tests, which are used from the checkout only."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONTAINERFILE = REPO / "deploy" / "Containerfile"
NOT_SHIPPED = ("railiance_testbed", "tests")
# left out of the copy the wheel is built from: environments, caches, reports, earlier builds
NOT_SOURCE = (".git", ".venv", "venv", "reports", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
              ".pytest_cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a copy of this checkout, offline, as ``pip wheel`` builds it.

    The copy keeps setuptools' build/ and egg-info out of the checkout; ``--no-build-isolation
    --no-index`` uses the venv's setuptools (the test extra) and never the network.
    """
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "-q", "-w", str(base / "out"), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    built = list((base / "out").glob("railiance_conformance-*.whl"))
    assert len(built) == 1, built
    with zipfile.ZipFile(built[0]) as archive:
        yield archive


def test_the_wheel_holds_the_suite_and_nothing_else(wheel):
    names = wheel.namelist()
    top = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top == {"railiance_conformance"}, sorted(top)
    assert not [name for name in names if name.split("/")[0] in NOT_SHIPPED]
    top_level = next(name for name in names if name.endswith(".dist-info/top_level.txt"))
    assert wheel.read(top_level).decode().split() == ["railiance_conformance"]


def test_every_package_of_the_suite_is_in_the_wheel(wheel):
    names = set(wheel.namelist())
    packages = [path.parent.relative_to(REPO).as_posix()
                for path in (REPO / "railiance_conformance").rglob("__init__.py") if "__pycache__" not in path.parts]
    assert "railiance_conformance/plugin.py" in names
    assert [package for package in packages if f"{package}/__init__.py" not in names] == []


@pytest.mark.testbed  # starts the testbed's command line (only its --help)
def test_the_testbed_is_not_installed_but_runs_from_the_checkout(tmp_path):
    """``./run demo`` runs ``python -m railiance_testbed`` from the checkout; elsewhere it is not importable."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    probe = "import importlib.util; print(importlib.util.find_spec('railiance_testbed') is None)"
    outside = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
    assert outside.stdout.strip() == "True", ("railiance_testbed is importable outside the checkout: an install "
                                              f"from before pyproject.toml left it out? {outside.stderr}")
    demo = subprocess.run([sys.executable, "-m", "railiance_testbed", "run", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert demo.returncode == 0 and "--cluster-drift" in demo.stdout, demo.stderr


def instructions(text: str) -> list[tuple[str, str]]:
    """The Containerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        logical.append((keyword.upper(), args.strip()))
        pending = ""
    return logical


def image_sources(text: str) -> list[str]:
    """The build-context paths the Containerfile's COPY/ADD put into the image (``--from`` stages excluded)."""
    sources = []
    for keyword, args in instructions(text):
        if keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(args[1:-1].replace(",", " ")) if args.startswith("[") else shlex.split(args)
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def test_the_image_copies_the_suite_and_not_the_testbed():
    text = CONTAINERFILE.read_text()
    sources = [os.path.normpath(source) for source in image_sources(text)]
    assert {"railiance_conformance", "steps", "features", "policies", "conftest.py", "pyproject.toml"} <= set(sources)
    assert not [source for source in sources if source in (".", "*") or source.split("/")[0] in NOT_SHIPPED], sources
    runs = " ".join(args for keyword, args in instructions(text) if keyword == "RUN")
    assert not re.search(r"railiance_testbed|railiance-testbed|\btests/", runs)
    assert not re.search(r"pip install[^&;]*\s-e\b", runs), "an editable install would read the build context"


def test_what_the_image_holds_never_imports_the_testbed():
    """Every .py file the Containerfile copies (the product side) has no import of railiance_testbed."""
    found = []
    for source in image_sources(CONTAINERFILE.read_text()):
        path = REPO / source
        for file in ([path] if path.is_file() else sorted(path.rglob("*.py"))):
            if file.suffix == ".py" and re.search(r"^\s*(from|import)\s+railiance_testbed\b", file.read_text(), re.M):
                found.append(file.relative_to(REPO).as_posix())
    assert found == []


@pytest.mark.parametrize("text, sources", [
    ("COPY a b ./\nCOPY --chown=1:1 c ./c\n", ["a", "b", "c"]),
    ('COPY ["x y", "z", "/dst/"]\n', ["x y", "z"]),
    ("COPY --from=build /out /out\nADD \\\n  railiance_testbed \\\n  ./t\n", ["railiance_testbed"]),
    ("# COPY railiance_testbed ./t\nRUN true\n", []),
])
def test_image_sources_reads_copy_and_add(text, sources):
    assert image_sources(text) == sources
