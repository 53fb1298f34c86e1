"""make's database is read without running a recipe: not the default goal's, not `+` lines, not
$(MAKE) lines, not makefile remake rules, not $(shell)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from railiance_conformance.checks import bundled_plan
from railiance_conformance.finding import Status
from railiance_conformance.resources.makefiles import (
    MakeUnavailable,
    MakeUntrusted,
    parse_make_database,
    printed_layers,
    read_make_database,
)
from railiance_conformance.vocabulary import CHECK_KINDS

TRAP = """\
include generated.mk
SHELL := /bin/bash
STAMP := $(shell touch {out}/shell-function-ran)
all: ## the default goal
\ttouch {out}/default-goal-ran
\t+touch {out}/plus-line-ran
\t$(MAKE) sub
sub:
\ttouch {out}/sub-make-ran
db-deploy: ## a target we look for
\t+touch {out}/db-deploy-ran
generated.mk:
\ttouch {out}/include-remake-ran
\techo 'X := 1' > generated.mk
Makefile: Makefile.in
\t+touch {out}/makefile-remake-ran
Makefile.in:
\t+touch {out}/makefile-in-ran
"""


@pytest.fixture
def trap(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    repo.mkdir(), out.mkdir()
    (repo / "Makefile").write_text(TRAP.format(out=out))
    return repo, out


def test_the_trap_is_live(trap, tmp_path):
    """Control experiment on a copy: plain `make -n` runs the + and $(MAKE) lines and the remake rules."""
    repo, out = trap
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    subprocess.run(["make", "-n", "-f", "Makefile"], cwd=copy, capture_output=True, timeout=30, check=False)
    assert {"plus-line-ran", "include-remake-ran", "shell-function-ran"} <= {p.name for p in out.iterdir()}


def test_database_read_runs_no_recipe(trap):
    repo, out = trap
    before = sorted(p.name for p in repo.iterdir())
    rules = read_make_database(repo)
    assert {"all", "sub", "db-deploy", "generated.mk"} <= set(rules)
    assert rules["all"].recipe == (f"touch {out}/default-goal-ran", f"+touch {out}/plus-line-ran", "$(MAKE) sub")
    assert list(out.iterdir()) == [] and sorted(p.name for p in repo.iterdir()) == before


def test_shell_override_is_detected_not_trusted(tmp_path):
    (tmp_path / "Makefile").write_text("override SHELL := /bin/sh\nt:\n\techo t\n")
    with pytest.raises(MakeUntrusted, match="'override' directive"):
        read_make_database(tmp_path)
    (tmp_path / "Makefile").write_text("t: SHELL := /bin/sh\nt:\n\techo t\n")
    with pytest.raises(MakeUntrusted):
        read_make_database(tmp_path)


def test_unreadable_makefile_is_could_not_verify(conformant_repos, layer_map, tmp_path):
    broken = tmp_path / "railiance-apps"
    broken.mkdir()
    (broken / "Makefile").write_text("gitea-deploy:\n    spaces instead of a tab\n")
    with pytest.raises(MakeUnavailable, match="missing separator"):
        read_make_database(broken)
    spec = bundled_plan().spec("repo.make.targets")  # the targets features/X/repos.feature states
    outcome = CHECK_KINDS[spec.kind].evaluate({**conformant_repos, "railiance-apps": broken}, spec.params)
    assert outcome.status is Status.ERROR and "railiance-apps: make cannot read Makefile" in outcome.reason


def test_database_parser_targets_and_print_order():
    text = open_database("""\
deploy-stack: banner s1
#  recipe to execute (from 'Makefile', line 9):
\t@echo "S2: make converge" \\
\t  "(railiance-cluster)"
\t@printf '%s\\n' "S3: db-deploy"
\tkubectl apply -f S4.yaml

# makefile (from 'Makefile', line 3)
banner: NS := x
banner:
#  recipe to execute (from 'Makefile', line 5):
\t@echo "Stack S1→S5"

s1:
#  recipe to execute (from 'Makefile', line 7):
\t@echo "S1: make converge"
\t@echo "S1: make verify"

# Not a target:
.DEFAULT:

.PHONY: deploy-stack
""")
    rules = parse_make_database(text)
    assert sorted(rules) == ["banner", "deploy-stack", "s1"]
    assert rules["deploy-stack"].prerequisites == ("banner", "s1")
    assert printed_layers(rules, "deploy-stack") == ["S1", "S2", "S3"]  # banner skipped, S4 not printed


def open_database(files: str) -> str:
    return f"# Variables\n\n# command line\nSHELL = /bin/false\n\n# Files\n\n{files}\n# files hash-table stats:\n"
