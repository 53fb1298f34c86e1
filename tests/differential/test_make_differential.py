"""How the suite reads a Makefile (never running it) against GNU make running it, on generated Makefiles.

Generated: a ``LAYERS`` variable (``=``, ``:=``, ``?=``, ``+=``), targets whose recipes print with
``@echo``/``echo``/``printf`` (quoted, unquoted, ``-n``), ``for l in $(LAYERS); do …; done`` loops
(one line or continued with backslashes), ``$(foreach …)`` expansions, prerequisites, a ``%-status``
pattern rule that echoes ``$*``, and lines that print nothing (``true``, ``:``). For each goal:

* ``make_prints`` (``make -n -i`` with SHELL=/bin/false, read by ``shell_prints``) must equal the
  lines that ``make -s GOAL`` prints when it really runs (with /bin/sh; these Makefiles are ours);
* ``make_provides`` must say a goal is known exactly when ``make -s GOAL`` does not stop with
  "No rule to make target".
"""
from __future__ import annotations

import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.resources.makefiles import make_prints, make_provides, printed_layers_in

LAYER_LISTS = st.lists(st.sampled_from(["S1", "S2", "S3", "S4", "S5"]), min_size=1, max_size=5)
ASSIGN = st.sampled_from(["=", ":=", "?="])
PRINT = st.sampled_from([
    '@echo "{w}: step"', "@echo {w}", "echo '{w} done'", '@printf "%s\\n" "{w}"', "@printf '%s -> ok\\n' {w}",
    '@for l in $(LAYERS); do echo "$$l: deploy"; done',
    "@for l in $(LAYERS); do \\\n\t  printf '%s\\n' \"$$l\"; \\\n\tdone",
    "@echo $(foreach l,$(LAYERS),[$(l)])", "@true", "@:", '@echo -n "{w} "', '@echo "banner S1→S5"',
])
TARGET = st.tuples(st.sampled_from(["S1", "S2", "S3", "x"]), st.lists(PRINT, min_size=1, max_size=3))
CASES = st.fixed_dictionaries({
    "layers": LAYER_LISTS, "assign": ASSIGN, "extra": st.lists(st.sampled_from(["S4", "S5"]), max_size=1),
    "targets": st.lists(TARGET, min_size=1, max_size=3),
    "pattern": st.booleans(),
    "goal": st.sampled_from(["t0", "t1", "t2", "db-status", "valkey-status", "nope"]),
})


def _makefile(case: dict) -> str:
    lines = [f"LAYERS {case['assign']} {' '.join(case['layers'])}"]
    if case["extra"]:
        lines.append(f"LAYERS += {' '.join(case['extra'])}")
    for index, (word, prints) in enumerate(case["targets"]):
        prerequisite = f" t{index - 1}" if index else ""
        lines.append(f"t{index}:{prerequisite}")
        lines += ["\t" + p.replace("{w}", word) for p in prints]
    if case["pattern"]:
        lines += ["%-status:", '\t@echo "status of $*"', "\t@for l in $(LAYERS); do echo \"$* $$l\"; done"]
    return "\n".join(lines) + "\n"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_what_the_suite_reads_equals_what_make_prints(case, tmp_path_factory):
    repo = tmp_path_factory.mktemp("make")
    (repo / "Makefile").write_text(_makefile(case))
    goal = case["goal"]
    real = subprocess.run(["make", "-s", "--no-print-directory", goal], cwd=repo, capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    known = f"No rule to make target '{goal}'." not in real.stderr
    assert make_provides(repo, [goal]) == {goal: known}, (_makefile(case), real.stderr)
    if known:
        ours = make_prints(repo, goal)
        assert ours == real.stdout.splitlines(), (_makefile(case), real.stdout)
        assert printed_layers_in(ours) == printed_layers_in(real.stdout.splitlines())
