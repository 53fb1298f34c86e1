"""Host kinds about cgroups: the memory limits the kernel enforces on a slice (cgroup v2 memory.* files).
"""
from __future__ import annotations

from typing import Any

from railiance_conformance.controls.grammar import SIZE, UNIT, Params, and_list
from railiance_conformance.finding import Outcome
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.resources import systemd_units
from railiance_conformance.vocabulary import check_kind

CGROUP_FILES = r"(?P<limits>memory\.(?:max|swap\.max|high|low|min) \S+(?:(?:, | and )memory\.(?:max|swap\.max|high|low|min) \S+)*)"


@check_kind("host.cgroup.memory", rf"the kernel enforces {CGROUP_FILES} on {UNIT}", target="host",
            convert=lambda g: {"unit": g["unit"], "limits": dict(p.split(" ", 1) for p in and_list(g["limits"]))},
            schema={"required": ["unit", "limits"],
                    "properties": {"unit": {"type": "string", "pattern": r"\.slice$"},
                                   "limits": {"type": "object", "minProperties": 1, "additionalProperties": SIZE}}},
            facts=lambda p: [F.memtotal(), F.pagesize(), *F.cgroup_memory(p["unit"], tuple(p["limits"]))])
def cgroup_memory(facts: HostFacts, params: Params) -> Outcome:
    """The slice's cgroup v2 interface files (``memory.max``, ``memory.swap.max``) as the kernel enforces
    them, in bytes (the kernel keeps whole pages: values are compared rounded down to a page). Without
    cgroup v2, or without the memory controller on that cgroup, an error that says so, never a pass."""
    unit = params["unit"]
    mem_total = F.read_memtotal(facts)
    page = int(facts.text("pagesize", what="the page size").strip())

    def pages(value: Any) -> Any:
        return value - value % page if isinstance(value, int) else value
    expected = {name: pages(systemd_units.parse_size(str(v), mem_total=mem_total)) for name, v in params["limits"].items()}
    expected = {k: ("max" if v in ("infinity", None) else v) for k, v in expected.items()}
    fs = facts.text("cgroup.fs", what=f"the cgroup filesystem ({F.CGROUP_ROOT})").strip()
    if fs != "cgroup2fs":
        return Outcome.error(f"{F.CGROUP_ROOT} is {fs}, not cgroup v2 (cgroup2fs): the host runs cgroup v1 or the "
                             f"hybrid layout, so the kernel's memory caps of {unit} cannot be read as memory.max/"
                             "memory.swap.max (systemd's view is host.slice.effective)", expected=expected)
    base = F.cgroup_path(unit)
    found = facts.files(base + "/")
    observed: dict[str, Any] = {}
    missing = []
    for name in expected:
        text = found.get(f"{base}/{name}")
        if text is None:
            missing.append(name)
            continue
        value = text.strip()
        observed[name] = int(value) if value.isdigit() else value
    if missing and not observed:
        return Outcome.error(f"{base} has no {', '.join(missing)}: the cgroup does not exist (no session of the "
                             "user) or the memory controller is not enabled for it", expected=expected)
    for name in missing:
        observed[name] = "absent"
    return Outcome.compare(expected, observed, evidence={"cgroup": base})
