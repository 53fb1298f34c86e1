"""Host kinds about running processes: the limits every process of a user runs with (/proc/PID/limits).
"""
from __future__ import annotations

from railiance_conformance.controls.grammar import LIMITS, USER, Params
from railiance_conformance.controls.pam_limits import LIMITS_SCHEMA, limit_value, limits_params
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.vocabulary import check_kind


@check_kind("host.processes.limits", rf"every running process of {USER} runs with {LIMITS}", target="host",
            convert=limits_params, schema={**LIMITS_SCHEMA, "properties": {**LIMITS_SCHEMA["properties"],
                                                                             "item": {"const": "nproc"}}},
            facts=lambda p: [F.whoami(), F.user_processes(p["user"])])
def processes_limits(facts: HostFacts, params: Params) -> Outcome:
    """Every running process of the user (real uid; /proc/<pid>/limits) has the caps, not only a new
    login: a process started before the converge keeps its old limits (INC-002's runaway agent).
    Offenders are listed by pid and command name (/proc/<pid>/comm), never with their arguments."""
    user = params["user"]
    expected = {"soft": limit_value(params["soft"]), "hard": limit_value(params["hard"])}
    rows = F.read_user_processes(facts, user)
    if rows is None:
        return Outcome.compare(expected, f"no user {user!r}")
    if not rows:
        whoami = facts.text("whoami", what="the login user").strip()
        return Outcome.error(f"no running process of {user} could be inspected (logged in as {whoami}; "
                             "/proc mounted with hidepid hides other users' processes)", expected=expected)
    offenders = {}
    for pid, soft, hard, comm in rows:
        observed = {"soft": limit_value(soft), "hard": limit_value(hard)}
        if observed != expected:
            offenders[str(pid)] = {"command": comm, **observed}
    evidence = {"processes_inspected": len(rows)}
    if not offenders:
        return Outcome(Status.PASS, expected, {"processes": len(rows), "all": expected}, evidence=tuple(evidence.items()))
    names = ", ".join(f"{pid} ({o['command']}: soft {o['soft']}, hard {o['hard']})" for pid, o in sorted(
        offenders.items(), key=lambda kv: int(kv[0]))[:10])
    return Outcome(Status.DRIFT, expected, {"offending_processes": offenders},
                   f"{len(offenders)} of {len(rows)} processes of {user} run with other nproc limits: {names}"
                   + (" …" if len(offenders) > 10 else "") + "; they keep them until restarted",
                   tuple(evidence.items()))
