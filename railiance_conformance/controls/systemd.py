"""Host kinds about systemd units: the properties a unit's drop-ins set, and those systemd runs it with
(``resources.systemd_units``).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from railiance_conformance.controls.grammar import PROPERTIES, SIZE, UNIT, Params, and_list
from railiance_conformance.finding import Outcome
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.resources import systemd_units
from railiance_conformance.resources.host_files import parse_key_values
from railiance_conformance.vocabulary import check_kind

_UNIT_SCHEMA = {"required": ["unit", "properties"],
                "properties": {"properties": {"type": "object", "minProperties": 1,
                                              "additionalProperties": SIZE}}}


def _properties(g: dict[str, str]) -> dict[str, Any]:
    pairs = [re.sub(r"\s+to\s+", " ", p).split(" ", 1) for p in and_list(g["properties"])]
    return {"unit": g["unit"], "properties": {k: v for k, v in pairs}}


def _sizes(properties: Mapping[str, Any], mem_total: int | None) -> dict[str, Any]:
    return {prop: systemd_units.parse_size(str(value), mem_total=mem_total) for prop, value in properties.items()}


@check_kind("host.systemd.configured", rf"the drop-ins of {UNIT} set {PROPERTIES}", target="host",
            convert=_properties, schema=_UNIT_SCHEMA,
            facts=lambda p: [F.memtotal(), *F.unit_files(p["unit"])])
def unit_configured(facts: HostFacts, params: Params) -> Outcome:
    """Memory properties of a unit after systemd's fragment + drop-in merge (units normalised to bytes)."""
    unit = params["unit"]
    mem_total = F.read_memtotal(facts)
    expected = _sizes(params["properties"], mem_total)
    files = facts.files(*(d + "/" for d in systemd_units.SYSTEM_UNIT_DIRS))
    section = unit.rsplit(".", 1)[1].capitalize()
    settings = systemd_units.resolve_unit_properties(files, unit=unit, section=section, properties=tuple(expected))
    observed = {prop: (systemd_units.parse_size(s.value, mem_total=mem_total) if s else "infinity (unset)")
                for prop, s in settings.items()}
    return Outcome.compare(expected, observed,
                           evidence={f"{p}_source": s.source for p, s in settings.items() if s} | {"unit": unit})


@check_kind("host.systemd.effective", rf"systemd runs {UNIT} with {PROPERTIES}", target="host",
            convert=_properties, schema=_UNIT_SCHEMA,
            facts=lambda p: [F.memtotal(), *F.systemd_running(), F.unit_show(p["unit"], tuple(p["properties"]))])
def unit_effective(facts: HostFacts, params: Params) -> Outcome:
    """What ``systemctl show`` reports for the unit's properties (no systemd: an error, never a pass)."""
    unit = params["unit"]
    expected = _sizes(params["properties"], F.read_memtotal(facts))
    if facts.section("systemd").rc != 0:
        pid1 = facts.section("pid1").out.strip() or "unknown"
        return Outcome.error(f"systemd is not running on this host (PID 1 is {pid1!r}): "
                             f"{unit} cannot be asked for its effective limits", expected=expected)
    shown = parse_key_values(facts.text(f"show {unit}", what=f"systemctl show {unit}"))
    observed = {prop: int(shown[prop]) if shown.get(prop, "").isdigit() else shown.get(prop) for prop in expected}
    return Outcome.compare(expected, observed, evidence={"unit": unit, "LoadState": shown.get("LoadState")})
