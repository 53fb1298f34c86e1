"""Host kinds about kernel parameters: the live value in /proc/sys and the value sysctl.d sets for the next boot
(``resources.sysctl`` reads them as systemd-sysctl does).
"""
from __future__ import annotations

from railiance_conformance.controls.grammar import SYSCTL_KEY, Params
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.resources import sysctl
from railiance_conformance.vocabulary import check_kind


@check_kind("host.sysctl.live", rf"{SYSCTL_KEY} is (?P<value>-?\d+) now", target="host",
            convert=lambda g: {"key": g["key"], "value": int(g["value"])},
            schema={"required": ["key", "value"], "properties": {"value": {"type": "integer"}}},
            facts=lambda p: [F.sysctl_live(p["key"])])
def sysctl_live(facts: HostFacts, params: Params) -> Outcome:
    """The kernel's live value of an integer sysctl (read back with the kernel's own parser)."""
    key = params["key"]
    fact = F.sysctl_live(key)
    text = facts.text(fact.section, what=f"/proc/sys for {key}")
    try:  # the kernel prints "%d\n"; read back with its own parser (kernel/sysctl.c)
        live = sysctl.kernel_write_int(text, key, newline=False)
    except sysctl.KernelRejects as exc:
        return Outcome.error(f"/proc/sys for {key} holds {text.strip()!r}, not an integer ({exc})",
                             expected=params["value"])
    return Outcome.compare(params["value"], live)


@check_kind("host.sysctl.persisted", rf"sysctl\.d sets {SYSCTL_KEY} to (?P<value>-?\d+) for the next boot",
            target="host", convert=lambda g: {"key": g["key"], "value": int(g["value"])},
            schema={"required": ["key", "value"], "properties": {"value": {"type": "integer"}}},
            facts=lambda p: F.sysctl_files())
def sysctl_persisted(facts: HostFacts, params: Params) -> Outcome:
    """The value systemd-sysctl writes at boot, after its file precedence, as the kernel reads it."""
    key, want = sysctl.normalize_sysctl_key(params["key"]), params["value"]
    files = facts.files(*(d + "/" for d in sysctl.SYSCTL_DIRS))
    setting = sysctl.resolve_sysctl(files).get(key)
    if setting is None:
        return Outcome.compare(want, "not set (the kernel default applies at boot)", evidence={"files": sorted(files)})
    evidence = {"winning_source": setting.source, "value_written": setting.value}
    try:  # systemd-sysctl hands the whole value ("10 # keep low") to the kernel, which reads one int
        observed = sysctl.kernel_write_int(setting.value, key)
    except sysctl.KernelRejects as exc:
        default = sysctl.KERNEL_DEFAULTS.get(key)
        reason = (f"the kernel rejects {key} = {setting.value!r} from {setting.source} (EINVAL: {exc}): "
                  f"{key} keeps its previous value (the kernel default"
                  f"{f', {default},' if default is not None else ''} at boot)")
        return Outcome(Status.DRIFT, want, f"{setting.value!r} (rejected by the kernel)", reason,
                       tuple(evidence.items()))
    return Outcome.compare(want, observed, evidence=evidence)
