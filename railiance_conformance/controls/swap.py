"""Host kinds about swap: the swap file the kernel uses, /etc/fstab's swap entry, and the kernel's total swap.
"""
from __future__ import annotations

from typing import Any

from railiance_conformance.controls.grammar import Params
from railiance_conformance.controls.host import GIB
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.resources import systemd_units
from railiance_conformance.resources.host_files import parse_mntent, parse_proc_swaps, swap_at_boot, swap_spec_path
from railiance_conformance.vocabulary import check_kind


@check_kind("host.swap.active", r"the kernel uses (?P<path>/[A-Za-z0-9._/@+-]*) as swap, within one page of its size",
            target="host", schema={"required": ["path"]},
            facts=lambda p: [F.pagesize(), F.stat(p["path"]), F.proc_swaps()])
def swap_active(facts: HostFacts, params: Params) -> Outcome:
    """The swap file is in /proc/swaps and the kernel's size is within one page of the file's."""
    path = params["path"]
    page = int(facts.text("pagesize", what="the page size").strip())
    stat = F.read_stat(facts, path)
    swaps = parse_proc_swaps(facts.text("proc.swaps", what="/proc/swaps"))
    entry = swaps.get(path)
    evidence = {"proc_swaps": sorted(swaps), "page_size": page}
    if stat is None:
        return Outcome(Status.DRIFT, {"active": True}, {"active": entry is not None, "file": "absent"},
                       evidence=tuple(evidence.items()))
    expected = {"active": True, "size_kib": stat.size // 1024, "tolerance_kib": page // 1024}
    evidence["file_bytes"] = stat.size
    if entry is None:
        return Outcome(Status.DRIFT, expected, {"active": False, "size_kib": None}, evidence=tuple(evidence.items()))
    observed = {"active": True, "size_kib": entry.size_kib}
    within = abs(stat.size - entry.size_kib * 1024) <= page
    return Outcome(Status.PASS if within else Status.DRIFT, expected, observed, evidence=tuple(evidence.items()))


def _swap_unit_files(path: str) -> list[str]:
    """The swap unit systemd-fstab-generator writes for ``path``, in every unit directory (masks)."""
    unit = systemd_units.unit_name_from_path(swap_spec_path(path) or path, "swap")
    return [f"{directory}/{unit}" for directory in systemd_units.SYSTEM_UNIT_DIRS]


@check_kind("host.fstab.swap", r"/etc/fstab enables (?P<path>/[A-Za-z0-9._/@+-]*) as swap at boot", target="host",
            schema={"required": ["path"]}, facts=lambda p: F.files("/etc/fstab", *_swap_unit_files(p["path"])))
def fstab_swap(facts: HostFacts, params: Params) -> Outcome:
    """An /etc/fstab swap entry for the path that systemd activates at boot: the fstab-generator writes
    its swap unit (``swap_at_boot``) and no higher unit directory masks that unit (``systemctl mask``:
    a symlink to /dev/null in /etc/systemd/system; ``systemd_units.generated_unit_state``)."""
    path = params["path"]
    fstab = facts.files("/etc/fstab").get("/etc/fstab")
    expected = {"spec": path, "type": "swap", "enabled_at_boot": True}
    if fstab is None:
        return Outcome.compare(expected, "no /etc/fstab")
    # At boot systemd v252's fstab-generator reads fstab with getmntent() (host_files.parse_mntent) and
    # the first entry for a unit wins; swap_at_boot() says whether swap.target pulls the entry in.
    active, commented = parse_mntent(fstab)
    wanted = swap_spec_path(path)
    entries = [e for e in active if swap_spec_path(e.spec) == wanted]
    swap = [e for e in entries if e.vfstype == "swap"]
    evidence: dict[str, Any] = {"commented_lines": [f"{n}: {text}" for n, text in commented if path in text]}
    tags = [f"{e.line}: {e.spec}" for e in active if e.vfstype == "swap" and swap_spec_path(e.spec) is None]
    if tags:  # LABEL=/UUID= name a block device: they cannot be the swap file
        evidence["tag_swap_entries"] = tags
    if swap:
        entry = swap[0]
        why_not = swap_at_boot(entry)
        unit_paths = _swap_unit_files(path)
        unit = unit_paths[0].rsplit("/", 1)[1]
        load_state, source = systemd_units.generated_unit_state(facts.files(*unit_paths), unit)
        evidence["unit"] = f"{unit}: LoadState={load_state} ({source})"
        if why_not is None and load_state == "masked":
            why_not = (f"{unit} is masked by {source} (empty or a symlink to /dev/null): systemd reports "
                       "LoadState=masked and does not activate the generated swap unit at boot")
        observed: dict[str, Any] | str = {"spec": path, "type": "swap", "enabled_at_boot": why_not is None}
        reason = f"/etc/fstab:{entry.line} '{path} {entry.file} swap {entry.options}': {why_not}" if why_not else ""
        return Outcome.compare(expected, observed, reason=reason,
                               evidence=evidence | {"line": entry.line, "options": entry.options})
    observed = {"spec": path, "type": entries[0].vfstype, "enabled_at_boot": False} if entries \
        else "no uncommented entry"
    reason = ("a swap entry names a LABEL=/UUID= device, which cannot be the swap file " + path) if tags else ""
    return Outcome.compare(expected, observed, reason=reason, evidence=evidence)


@check_kind("host.swap.total", r"the kernel's total swap is (?P<size_gib>\d+) GiB, within one page", target="host",
            convert=lambda g: {"size_gib": int(g["size_gib"])},
            schema={"required": ["size_gib"], "properties": {"size_gib": {"type": "integer", "minimum": 0}}},
            facts=lambda p: [F.pagesize(), F.meminfo_swap(), F.proc_swaps()])
def swap_total(facts: HostFacts, params: Params) -> Outcome:
    """The kernel's total swap (/proc/meminfo SwapTotal, what ``free -h`` shows) is the stated size within
    one page (a swap file's first page is its header: a 4 GiB file gives 4 GiB - 4 KiB)."""
    page = int(facts.text("pagesize", what="the page size").strip())
    total = F.read_swap_total(facts)
    want = params["size_gib"] * GIB
    swaps = facts.sections.get("proc.swaps")
    evidence = {"swap_total_kib": total // 1024, "page_size": page,
                "swap_areas": sorted(parse_proc_swaps(swaps.out)) if swaps is not None and swaps.rc == 0 else None}
    expected = {"swap_total_bytes": want, "tolerance_bytes": page}
    within = abs(total - want) <= page
    return Outcome(Status.PASS if within else Status.DRIFT, expected,
                   {"swap_total_bytes": total, "tolerance_bytes": page},
                   "" if within else f"the kernel has {total / GIB:.2f} GiB of swap, not {params['size_gib']} GiB",
                   tuple(evidence.items()))
