"""Host values in their real-world forms, evaluated in-process: each value is read the way its own component reads it.

Kind 2 (sysctl values through the kernel's integer parser), kind 4 (fstab options that change what happens
at boot), kind 5 (a line pam_limits skips is a fact), plus the systemd drop-in sizes. Every test gives the
evaluator real host facts (file contents as the fact script dumps them) and asserts the exact outcome.
"""
from __future__ import annotations

import pytest

from railiance_conformance.checks import evaluate_control
from railiance_conformance.finding import Status
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.probes.host_script import Section

DESIRED = {"operator_user": "tegwick", "operator_uid": 1000, "swap_file": "/swapfile", "swap_size_gb": 4,
           "swap_swappiness": 10, "nproc_soft": 512, "nproc_hard": 1024, "user_memory_max": "1500M",
           "user_memory_swap_max": "512M"}


# the fact script's section names (probes/facts.py) for the bundled features' params
SECTIONS = {"swappiness": "sysctl vm.swappiness", "passwd": "passwd tegwick", "groups": "groups tegwick",
            "gids": "gids tegwick", "limits": "limits tegwick", "slice_show": "show user-1000.slice",
            "swapfile_stat": "stat /swapfile"}


def facts(files: dict[str, str] | None = None, **sections: tuple[int, str]) -> HostFacts:
    """HostFacts as the fact script yields them: ``file <path>`` sections plus named command sections."""
    found = {f"file {path}": Section(0, text) for path, text in (files or {}).items()}
    found.update({SECTIONS.get(name, name): Section(rc, out) for name, (rc, out) in sections.items()})
    return HostFacts("host", found)


def evaluate(control_id: str, host: HostFacts, **overrides):
    return evaluate_control(control_id, host, DESIRED | overrides)


# ---- kind 2: sysctl values are read by the kernel's integer parser -------------------------------------------
@pytest.mark.parametrize("value,status,observed", [
    ("10 # keep low", Status.PASS, 10),  # a trailing comment, as operators write it
    ("10", Status.PASS, 10),
    ("0xa", Status.PASS, 10),
    ("012", Status.PASS, 10),  # leading 0: octal
    ("10\t60", Status.PASS, 10),  # one int is read, the rest ignored
    ("60", Status.DRIFT, 60),
])
def test_persisted_swappiness_is_what_the_kernel_stores(value: str, status: Status, observed: int) -> None:
    outcome = evaluate("host.swappiness.persisted", facts({"/etc/sysctl.d/99-swap.conf": f"vm.swappiness = {value}\n"}))
    assert (outcome.status, outcome.observed) == (status, observed)
    assert dict(outcome.evidence)["winning_source"] == "/etc/sysctl.d/99-swap.conf:1"


@pytest.mark.parametrize("value,why", [
    ("10abc", "followed by 'a'"), ("201", "201 is outside 0..200"), ("-1", "-1 is outside 0..200"),
    ("010a", "followed by 'a'"), ("09", "followed by '9'"), ("+10", "does not start with a digit"),
    ("ten", "does not start with a digit"), ("0" * 19 + "10", "21 bytes or longer"),
])
def test_persisted_swappiness_the_kernel_rejects_is_drift_with_the_reason(value: str, why: str) -> None:
    outcome = evaluate("host.swappiness.persisted", facts({"/etc/sysctl.d/99-swap.conf": f"vm.swappiness = {value}\n"}))
    assert outcome.status is Status.DRIFT
    assert outcome.observed == f"{value!r} (rejected by the kernel)"
    assert outcome.reason.startswith(f"the kernel rejects vm.swappiness = {value!r} from /etc/sysctl.d/99-swap.conf:1 (EINVAL")
    assert why in outcome.reason and outcome.reason.endswith("vm.swappiness keeps its previous value "
                                                             "(the kernel default, 60, at boot)")


def test_live_swappiness() -> None:
    assert evaluate("host.swappiness.live", facts(swappiness=(0, "10\n"))).status is Status.PASS
    assert evaluate("host.swappiness.live", facts(swappiness=(0, "60\n"))).observed == 60
    assert evaluate("host.swappiness.live", facts(swappiness=(0, "garbage\n"))).status is Status.ERROR


# ---- kind 5: a line pam_limits skips is a fact, not an unknown -----------------------------------------------
def nproc_facts(limits_conf: str, dropins: dict[str, str] | None = None) -> HostFacts:
    files = {"/etc/security/limits.conf": limits_conf,
             **{f"/etc/security/limits.d/{n}": c for n, c in (dropins or {}).items()}}
    return facts(files, passwd=(0, "tegwick:x:1000:1000::/home/tegwick:/bin/bash\n"), groups=(0, "tegwick\n"),
                 gids=(0, "1000\n"))


def test_quoted_hard_nproc_is_skipped_so_the_hard_limit_is_unset() -> None:
    """A line pam_limits skips: the suite once said could-not-verify; pam_limits skips the line: drift, with why."""
    outcome = evaluate("host.nproc.configured", nproc_facts('tegwick soft nproc 512\ntegwick hard nproc "1024"\n'))
    assert (outcome.status, outcome.observed) == (Status.DRIFT, {"soft": 512, "hard": None})
    assert outcome.reason == ("pam_limits skips /etc/security/limits.conf:2 'tegwick hard nproc \"1024\"' "
                              "(wrong limit value '\"1024\"': not a number): the hard limit is unset from that line")


@pytest.mark.parametrize("line,why", [
    ("tegwick hard nprocs 1024", "unknown limit item 'nprocs'"),
    ("tegwick hrad nproc 1024", "unknown limit type 'hrad'"),
    ("tegwick hard nproc", "invalid line: 3 fields"),
    ("tegwick hard nproc 1024x", None),  # strtoull() reads 1024 and pam_limits ignores the rest: applied
])
def test_other_skipped_lines(line: str, why: str | None) -> None:
    outcome = evaluate("host.nproc.configured", nproc_facts(f"tegwick soft nproc 512\n{line}\n"))
    if why is None:
        assert (outcome.status, outcome.reason) == (Status.PASS, "")
        return
    assert (outcome.status, outcome.observed["hard"]) == (Status.DRIFT, None)
    assert outcome.reason.startswith(f"pam_limits skips /etc/security/limits.conf:2 {' '.join(line.split())!r} ({why}")


def test_a_skipped_line_beside_a_line_that_sets_the_limit_is_evidence_only() -> None:
    outcome = evaluate("host.nproc.configured",
                       nproc_facts('tegwick - nproc 512\n', {"90-x.conf": '* hard nproc 4096\ntegwick hard nproc "1024"\n'}))
    assert (outcome.status, outcome.observed) == (Status.DRIFT, {"soft": 512, "hard": 512})
    assert outcome.reason.startswith("pam_limits skips /etc/security/limits.d/90-x.conf:2")
    assert outcome.reason.endswith("the hard limit is not set from that line")
    passing = evaluate("host.nproc.configured",
                       nproc_facts('tegwick soft nproc 512\ntegwick hard nproc 1024\ntegwick hard nproc "x"\n'))
    assert (passing.status, passing.reason) == (Status.PASS, "")
    assert dict(passing.evidence)["skipped_lines"] == [
        "pam_limits skips /etc/security/limits.conf:3 'tegwick hard nproc \"x\"' (wrong limit value '\"x\"': not a number)"]


# ---- kind 4: options that change what happens at boot -------------------------------------------------------
@pytest.mark.parametrize("fstab,enabled,why", [
    ("/swapfile none swap noauto 0 0\n", False, "option noauto"),  # noauto: swap not enabled at boot
    ("/swapfile none swap sw 0 0\n", True, None),
    ("/swapfile\tnone\tswap\tdefaults,nofail,pri=10,discard\t0\t0\n", True, None),
    ("/swapfile none swap noauto,auto\n", True, None),
    ("/swapfile none swap sw,x-systemd.makefs 0 0\n", False, "x-systemd.makefs on a path that is not a device node"),
    ("//swapfile none swap noauto 0 0\n/swapfile none swap sw 0 0\n", False, "option noauto"),  # first entry wins
    ("/swapfile none swap sw 0 x\n", True, None),  # getmntent() never rejects a line (libmount would)
])
def test_swap_fstab_at_boot(fstab: str, enabled: bool, why: str | None) -> None:
    outcome = evaluate("host.swap.fstab", facts({"/etc/fstab": fstab}))
    assert outcome.observed == {"spec": "/swapfile", "type": "swap", "enabled_at_boot": enabled}
    assert outcome.status is (Status.PASS if enabled else Status.DRIFT)
    if why:
        assert outcome.reason.startswith("/etc/fstab:1 '/swapfile none swap ") and why in outcome.reason


def test_swap_fstab_commented_or_label_only() -> None:
    commented = evaluate("host.swap.fstab", facts({"/etc/fstab": "#/swapfile none swap sw 0 0\n"}))
    assert (commented.status, commented.observed) == (Status.DRIFT, "no uncommented entry")
    assert dict(commented.evidence)["commented_lines"] == ["1: #/swapfile none swap sw 0 0"]
    label = evaluate("host.swap.fstab", facts({"/etc/fstab": "LABEL=swap none swap sw 0 0\n"}))
    assert (label.status, label.observed) == (Status.DRIFT, "no uncommented entry")
    assert label.reason == "a swap entry names a LABEL=/UUID= device, which cannot be the swap file /swapfile"
    escaped = evaluate("host.swap.fstab", facts({"/etc/fstab": "/swap\\040file none swap sw 0 0\n"}),
                       swap_file="/swap file")
    assert escaped.status is Status.PASS
