"""What GNU make says a Makefile holds, asked without running any recipe.

``read_make_database(Path("railiance-apps"))`` -> ``{"gitea-deploy": MakeRule(...)}`` (``make -p``);
``make_provides(repo, ["db-status"])`` -> ``{"db-status": True}`` (``make -q``: a ``%-status:``
pattern rule counts); ``make_prints(repo, "deploy-stack")`` -> the lines ``make -s deploy-stack``
would print (``make -n``, read by ``shell_prints``). Errors: ``MakeUnavailable`` (no make, a
timeout, a makefile make cannot read), ``MakeUntrusted`` (the makefile sets SHELL itself). How make
is kept from running anything (``SHELL=/bin/false``, ``-R -r``, an empty environment): GNU make
manual "Instead of Executing Recipes"; the layers of defence are in docs/architecture.md.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from railiance_conformance.resources.shell_prints import shell_prints

NO_SUCH_GOAL = ".RAILIANCE_NO_SUCH_TARGET_"
MAKE_ENV = {"PATH": "/nonexistent", "LC_ALL": "C", "HOME": "/nonexistent", "TMPDIR": "/nonexistent"}
_ASSIGNMENT = re.compile(r"^(?:(?:override|export|private|unexport)\s+)*[^\s:=#]+\s*(?::::=|::=|:=|\+=|\?=|!=|=)")
_SHELL_SET = re.compile(r"^(?:[^\s#][^:]*:{1,2}\s+)?(?:(?:override|export|private)\s+)*SHELL\s*(?::::=|::=|:=|\+=|\?=|!=|=)")
_LAYER = re.compile(r"(?<![\w-])S([1-5])(?![\w-])")
_PRINT = re.compile(r"^[@+\-\s]*(?:echo|printf|\$\((?:info|warning))\b")


class MakeUnavailable(Exception):
    """make could not be asked (not installed, timed out, the makefile does not parse)."""


class MakeUntrusted(MakeUnavailable):
    """The makefile overrides SHELL: its remake rules or ``$(shell)`` calls may have run."""


@dataclass(frozen=True)
class MakeRule:
    """One target in make's database; ``recipe`` lines are unexpanded, as make printed them."""

    name: str
    prerequisites: tuple[str, ...]
    recipe: tuple[str, ...]


def read_make_database(repo: Path, makefile: str = "Makefile", timeout_s: float = 20.0) -> dict[str, MakeRule]:
    """``read_make_database(Path("railiance-apps"))`` -> ``{"gitea-deploy": MakeRule(...), ...}``, no recipe run."""
    make = shutil.which("make") or shutil.which("gmake")
    if not make:
        raise MakeUnavailable("GNU make is not installed")
    if not (Path(repo) / makefile).is_file():
        raise FileNotFoundError(f"{repo}/{makefile}")
    argv = [make, "-p", "-q", "-R", "-r", "--no-print-directory", "-f", makefile,
            "SHELL=/bin/false", NO_SUCH_GOAL]
    try:
        done = subprocess.run(argv, env=MAKE_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout_s, cwd=str(repo), check=False)
    except subprocess.TimeoutExpired:
        raise MakeUnavailable(f"make -p on {repo}/{makefile} timed out after {timeout_s:g}s") from None
    fatal = [line for line in done.stderr.splitlines() if "***" in line and "Stop." in line and NO_SUCH_GOAL not in line]
    if fatal or "\n# Files" not in done.stdout:
        raise MakeUnavailable(f"make cannot read {makefile}: {(fatal or done.stderr.splitlines() or ['no database'])[-1]}")
    return parse_make_database(done.stdout)


def _make_argv(makefile: str) -> list[str]:
    make = shutil.which("make") or shutil.which("gmake")
    if not make:
        raise MakeUnavailable("GNU make is not installed")
    return [make, "-R", "-r", "--no-print-directory", "-f", makefile, "SHELL=/bin/false"]


def _ask_make(repo: Path, argv: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, env=MAKE_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout_s, cwd=str(repo), check=False)
    except subprocess.TimeoutExpired:
        raise MakeUnavailable(f"make {' '.join(argv[7:])} in {repo} timed out after {timeout_s:g}s") from None


def make_provides(repo: Path, targets: list[str], makefile: str = "Makefile",
                  timeout_s: float = 20.0) -> dict[str, bool]:
    """Whether make can make each target: ``make -q TARGET`` (no recipe run, see the module docstring)
    answers "No rule to make target" only for a target that no explicit rule and no pattern rule
    (``%-status:``, with prerequisites that exist or can be made) provides (an explicit rule whose
    prerequisite cannot be made still provides its target). GNU make ``remake.c``
    ``update_file_1``/``implicit.c`` ``pattern_search``; raises MakeUnavailable/MakeUntrusted."""
    read_make_database(repo, makefile, timeout_s)  # refuses a makefile that sets SHELL itself
    found = {}
    for target in targets:
        done = _ask_make(repo, [*_make_argv(makefile), "-q", target], timeout_s)
        # only "No rule to make target 'T'." is about T itself ("…, needed by 'T'" is a prerequisite of an
        # explicit rule: T exists, make stops later)
        found[target] = not any(f"No rule to make target '{target}'." in line for line in done.stderr.splitlines())
    return found


def make_prints(repo: Path, target: str, makefile: str = "Makefile", timeout_s: float = 20.0) -> list[str]:
    """The lines ``make -s TARGET`` would print from its echo/printf recipe lines, in make's order
    (prerequisites first), read from ``make -n -i TARGET`` (expanded, never run) by ``shell_prints``.
    ``$(MAKE)`` sub-makes are not followed (their output is not known without running them)."""
    read_make_database(repo, makefile, timeout_s)  # refuses a makefile that sets SHELL itself
    done = _ask_make(repo, [*_make_argv(makefile), "-n", "-i", target], timeout_s)
    missing = [line for line in done.stderr.splitlines() if "No rule to make target" in line]
    if any(f"No rule to make target '{target}'." in line for line in missing):
        raise KeyError(target)
    if missing:  # a prerequisite make cannot make: make -s would stop there too
        raise MakeUnavailable(f"make -n {target}: {missing[0].split('*** ', 1)[-1]}")
    return shell_prints(done.stdout)


def printed_layers_in(lines: list[str]) -> list[str]:
    """Layers (``S1``…``S5``) in printed lines, in order: a line naming more than one layer (a banner
    like ``S1→S5``) is skipped; repeats collapse."""
    seen: list[str] = []
    for line in lines:
        layers = {f"S{n}" for n in _LAYER.findall(line)}
        if len(layers) == 1 and (not seen or seen[-1] != next(iter(layers))):
            seen.append(next(iter(layers)))
    return seen


def parse_make_database(text: str) -> dict[str, MakeRule]:
    """The targets of ``make -p`` output (its ``# Files`` section), without "# Not a target:" entries."""
    _check_shell(text)
    files = text.split("\n# Files\n", 1)[1].split("\n# files hash-table stats", 1)[0]
    rules: dict[str, MakeRule] = {}
    for entry in files.split("\n\n"):
        lines = entry.splitlines()
        if any(line.startswith("# Not a target:") for line in lines):
            continue
        heads = [line for line in lines if line and not line.startswith(("#", "\t")) and ":" in line]
        heads = [line for line in heads if not _ASSIGNMENT.match(line.split(":", 1)[1].lstrip(": ").strip() or "x")]
        if not heads:
            continue
        name, _, prerequisites = heads[-1].partition(":")
        name = name.strip()
        if not name or name.startswith(".") or "%" in name:
            continue
        recipe = tuple(line[1:] for line in lines if line.startswith("\t"))
        prereqs = tuple(p for p in prerequisites.lstrip(":").split() if p != "|")
        old = rules.get(name)  # a double-colon target appears once per rule
        rules[name] = MakeRule(name, (old.prerequisites if old else ()) + prereqs, (old.recipe if old else ()) + recipe)
    return rules


def _check_shell(text: str) -> None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _SHELL_SET.match(line):
            origin = lines[index - 1] if index else ""
            if line.startswith("SHELL") and origin == "# command line":
                continue
            raise MakeUntrusted(f"the makefile sets SHELL itself ({origin.lstrip('# ') or line.strip()}): "
                                f"make's recipes or $(shell) calls may have run; not trusted")


def printed_layers(rules: dict[str, MakeRule], target: str) -> list[str]:
    """Layers (``S1``…``S5``) a target's recipe prints, in order, prerequisites' recipes first (as make runs
    them). A print line naming more than one layer (a banner like ``S1→S5``) is skipped; repeats collapse."""
    seen: list[str] = []
    for line in _recipe_lines(rules, target, set()):
        if not _PRINT.match(line):
            continue
        layers = {f"S{n}" for n in _LAYER.findall(line)}
        if len(layers) == 1 and (not seen or seen[-1] != next(iter(layers))):
            seen.append(next(iter(layers)))
    return seen


def _recipe_lines(rules: dict[str, MakeRule], target: str, done: set[str]) -> Iterator[str]:
    if target in done or target not in rules:
        return
    done.add(target)
    for prerequisite in rules[target].prerequisites:
        yield from _recipe_lines(rules, prerequisite, done)
    joined = "\n".join(rules[target].recipe).replace("\\\n", " ")
    yield from joined.splitlines()
