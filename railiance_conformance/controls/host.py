"""What the host check kinds share (a user's home and ``~/`` expansion), and ``host.pending``.

A host kind's evaluator reads only ``HostFacts`` (the raw facts one SSH command collected, ``probes``)
and compares them with its params. Example: ``CHECK_KINDS["host.file"].evaluate(facts, {"path": "/swapfile",
"size_gib": 4, "owner": "root", "group": "root", "mode": "0600"})``. The kinds, one module per subject:
``files``, ``swap``, ``sysctl``, ``users``, ``pam_limits``, ``systemd``, ``ssh``, ``git``, ``processes``, ``cgroup``.
"""
from __future__ import annotations

from railiance_conformance.controls.grammar import Params
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.vocabulary import check_kind

GIB = 1024 ** 3


def home_of(facts: HostFacts, user: str) -> str:
    return facts.text(f"passwd {user}", what=f"the passwd entry of {user}").split(":")[5]


def expand_home(path: str, home: str) -> str:
    return home + path[1:] if path.startswith("~/") else path


@check_kind("host.pending", r'"(?P<control_id>[a-z0-9_.]+)" stays pending on the host until a human approves the task',
            target="host", facts=lambda p: [])
def host_pending(facts: HostFacts, params: Params) -> Outcome:  # pragma: no cover - the recorder reports pending
    """A control whose task waits for a human: the catalog's ``pending`` makes it pending, never evaluated."""
    return Outcome(Status.PENDING, reason="pending")
