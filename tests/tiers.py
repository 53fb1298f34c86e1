"""Test tiers of the project's own tests: which tier markers a test carries, and the guard that holds it to them.

A tier names what a test needs beyond Python and this checkout: ``postgres`` (a real PostgreSQL
server), ``browser`` (headless Chromium), ``testbed`` (the testbed's targets: nspawn or namespace
hosts, a loopback sshd, the Kubernetes API stand-in's own tests; and every end-to-end run of the
suite itself, ``pytest features/`` or ``python -m railiance_conformance``, in a subprocess), ``vm``
(a QEMU machine). A test carries every tier it needs, or ``unit`` when it needs none of them;
``unit`` next to another tier is a contradiction. ``./run test -m unit`` is then the fast tier
(in-process tests, git, ssh-keygen, short Python helpers), ``-m "not vm"`` all but the VM.

The rule, in order (the tables below are the whole of it):

1. ``PATH_TIERS``: a test in a file at or under one of these paths needs that tier (every matching
   entry counts, so ``tests/e2e/test_html_report.py`` needs ``testbed`` and ``browser``).
2. ``FIXTURE_TIERS``: a test that uses one of these fixtures, directly or through another fixture,
   needs that tier.
3. A tier marker written on the test (``@pytest.mark.testbed``, a module's ``pytestmark``) adds
   that tier. A test marked ``unit`` that rules 1-2 or another marker give a tier is refused:
   :func:`tiers_for` raises :class:`TierError` and the whole collection stops with a usage error.
4. At run time (setup and call, not teardown) a test may start only the tools of its own tiers
   (``TOOL_TIERS``, the suite's and the testbed's entry points included; ``runuser``/``sudo``/
   ``env``/``sh -c``... are looked through): anything else fails the
   test with :class:`TierViolation`, naming the tool and the tier to mark it with. This catches the
   test that starts a host without one of the fixtures above, which rules 1-2 cannot see.

Example: ``tiers_for("tests/gate/test_parity_tables.py", ["postgres", "tmp_path"], set())`` -> ``("postgres",)``.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterable

import pytest

UNIT = "unit"
NEEDS = ("postgres", "browser", "testbed", "vm")
TIERS = (UNIT, *NEEDS)

PATH_TIERS: dict[str, str] = {
    "tests/vm/": "vm",
    "tests/e2e/": "testbed",
    "tests/e2e/test_html_report.py": "browser",
    "tests/differential/": "testbed",
    "tests/testbed/": "testbed",
    "tests/deploy/": "testbed",
    "tests/inventory/test_inventory_on_testbed.py": "testbed",
    "tests/faults/test_deadlines.py": "testbed",
    "tests/faults/test_own_failures.py": "testbed",
    # files whose tests run the suite end to end (run_suite, the gate and nightly commands)
    "tests/test_bad_input.py": "testbed",
    "tests/faults/test_hostile_yaml.py": "testbed",
    "tests/gate/test_gate_cli.py": "testbed",
}

FIXTURE_TIERS: dict[str, str] = {
    "testbed": "testbed",
    "testbed_run": "testbed",
    "cluster_api": "testbed",
    "postgres": "postgres",
    "seeded": "postgres",
}

# executable basename -> the tiers whose tests may start it
TOOL_TIERS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("systemd-nspawn", "unshare", "nsenter", "machinectl", "sshd"), frozenset({"testbed"})),
    **dict.fromkeys(("debootstrap", "chroot", "mke2fs"), frozenset({"testbed", "vm"})),
    **dict.fromkeys(("qemu-system-x86_64", "qemu-img"), frozenset({"vm"})),
    **dict.fromkeys(("initdb", "pg_ctl", "postgres", "pg_ctlcluster"), frozenset({"postgres"})),
    **dict.fromkeys(("chromium", "chromium-browser", "google-chrome"), frozenset({"browser"})),
}
# The suite run end to end, as an operator runs it (tests/suite_runner.run_suite, the nightly and
# gate commands), and the testbed's own command line: testbed tier, like the targets they are for.
SUITE_RUN, SUITE_CLI, TESTBED_CLI = "pytest features/", "python -m railiance_conformance", "python -m railiance_testbed"
TOOL_TIERS.update(dict.fromkeys((SUITE_RUN, SUITE_CLI, TESTBED_CLI), frozenset({"testbed", "vm"})))
# commands that run another command given in their arguments
WRAPPERS = frozenset({"runuser", "sudo", "su", "env", "setsid", "timeout", "nice", "ionice", "nohup", "stdbuf",
                      "setpriv", "unbuffer"})
# shells whose ``-c`` command is looked at (its first word, wrappers looked through)
SHELLS = frozenset({"sh", "bash", "dash"})


class TierError(Exception):
    """A test's tier markers contradict what it needs (raised at collection)."""


class TierViolation(pytest.fail.Exception):
    """A test started a tool of a tier it does not carry (raised at run time; a BaseException, so
    an ``except Exception`` in the test cannot swallow it)."""


def tiers_for(path: str, fixturenames: Iterable[str], explicit: set[str]) -> tuple[str, ...]:
    """The tier markers of one test, in ``TIERS`` order.

    ``path``: the test file relative to the repo root, with ``/``; ``fixturenames``: the test's fixture
    closure (``item.fixturenames``); ``explicit``: the tier markers written on it. Raises
    :class:`TierError` naming the reasons when it is marked ``unit`` but needs a tier, or carries an
    unknown one.
    """
    reasons: dict[str, list[str]] = {}
    for prefix, tier in PATH_TIERS.items():
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            reasons.setdefault(tier, []).append(f"it is in {prefix}")
    for name in fixturenames:
        if name in FIXTURE_TIERS:
            reasons.setdefault(FIXTURE_TIERS[name], []).append(f"it uses the {name} fixture")
    for tier in explicit - {UNIT}:
        if tier not in NEEDS:
            raise TierError(f"unknown tier marker {tier!r} (known: {', '.join(TIERS)})")
        reasons.setdefault(tier, []).append(f"it is marked {tier}")
    if UNIT in explicit and reasons:
        why = "; ".join(f"{tier}: {', '.join(found)}" for tier, found in reasons.items())
        raise TierError(f"marked unit but needs more ({why}); drop the unit marker "
                        "(tests/tiers.py gives it its tiers) or stop using what needs them")
    return tuple(tier for tier in TIERS if tier in reasons) or (UNIT,)


def started_tools(argv: str | bytes | os.PathLike | Iterable | None, executable: object = None) -> list[str]:
    """Basenames from ``TOOL_TIERS`` that a command line starts, looking through ``WRAPPERS``.

    ``argv``: a Popen ``args`` (a list, or a command string: split with shlex); only its first word
    counts, except after a wrapper; ``sh -c COMMAND`` is judged by COMMAND.
    Example: ``started_tools(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/initdb"])``
    -> ``["initdb"]``.
    """
    if isinstance(argv, (str, bytes, os.PathLike)):
        text = os.fsdecode(argv)
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
    else:
        words = [os.fsdecode(w) if isinstance(w, (str, bytes, os.PathLike)) else str(w) for w in (argv or [])]
    if executable is not None and isinstance(executable, (str, bytes, os.PathLike)):
        words = [os.fsdecode(executable), *words[1:]]
    if not words:
        return []
    names = [os.path.basename(w) for w in words]
    if names[0] in SHELLS and "-c" in words[1:-1]:
        return started_tools(words[words.index("-c", 1) + 1])
    if names[0] in WRAPPERS:
        if "--" in words:  # the wrapped command follows "--"; before it are options and their values
            return started_tools(words[words.index("--") + 1:])
        return [n for n in names[1:] if n in TOOL_TIERS]
    if names[0] in TOOL_TIERS:
        return [names[0]]
    return [run] if (run := python_entry_point(words)) else []


def python_entry_point(words: list[str]) -> str | None:
    """``SUITE_RUN``, ``SUITE_CLI`` or ``TESTBED_CLI`` when a command line starts one of them, else None.

    Example: ``python_entry_point(["/x/python3", "-m", "pytest", "features/", "-q"])`` -> ``SUITE_RUN``.
    """
    program = os.path.basename(words[0])
    if program in ("pytest", "py.test"):
        module, rest = "pytest", words[1:]
    elif re.fullmatch(r"python[0-9.]*", program) and "-m" in words[1:-1]:
        at = words.index("-m", 1)
        module, rest = words[at + 1], words[at + 2:]
    else:
        return None
    if module == "pytest" and any(os.path.basename(word.rstrip("/")) == "features" for word in rest):
        return SUITE_RUN
    if module.split(".")[0] == "railiance_conformance":
        return SUITE_CLI
    if module.split(".")[0] == "railiance_testbed":
        return TESTBED_CLI
    return None


class TierGuard:
    """Holds the running test to its tiers (rule 4): an audit hook on process starts, active only
    between :meth:`enter` and :meth:`leave` (a test's setup and call). Nested runs (pytester) stack:
    the innermost test is the one judged. One per process: :func:`guard`."""

    def __init__(self) -> None:
        self._running: list[tuple[str, tuple[str, ...], list[str]]] = []  # (nodeid, tiers, violations)

    def enter(self, nodeid: str, tiers: tuple[str, ...]) -> None:
        self._running.append((nodeid, tiers, []))

    def leave(self) -> list[str]:
        """Stop watching the innermost test; the violations it made since :meth:`enter`."""
        return self._running.pop()[2]

    def check(self, argv: object, executable: object = None) -> None:
        """Raise :class:`TierViolation` if the running test may not start this command."""
        if not self._running:
            return
        nodeid, tiers, violations = self._running[-1]
        for tool in started_tools(argv, executable):
            allowed = TOOL_TIERS[tool]
            if not allowed.intersection(tiers):
                message = (f"{nodeid} carries {', '.join(tiers) or 'no tier'} but started {tool}, which needs the "
                           f"{' or '.join(sorted(allowed))} tier: request that tier's fixture, move the test, or "
                           f"mark it (rules in tests/tiers.py)")
                violations.append(message)
                raise TierViolation(message, pytrace=False)

    def audit(self, event: str, args: tuple) -> None:
        if not self._running:
            return
        if event == "subprocess.Popen":  # (executable, args, cwd, env)
            self.check(args[1], args[0])
        elif event in ("os.posix_spawn", "os.exec"):  # (path, argv, env)
            self.check(args[1], args[0])
        elif event == "os.system":  # (command,)
            self.check(args[0])


_GUARD: TierGuard | None = None


def guard() -> TierGuard:
    """The process's one :class:`TierGuard`, its audit hook installed on first use (audit hooks cannot
    be removed; the guard is idle outside a test's setup and call)."""
    global _GUARD
    if _GUARD is None:
        _GUARD = TierGuard()
        sys.addaudithook(_GUARD.audit)
    return _GUARD
