"""Host kinds about pam_limits: what limits.conf and limits.d give a user, and what a login session of the user
runs with (``resources.pam_limits`` reads them as pam_limits does).
"""
from __future__ import annotations

from typing import Any

from railiance_conformance.controls.grammar import LIMIT, LIMITS, USER, Params
from railiance_conformance.finding import Outcome
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.resources import pam_limits
from railiance_conformance.resources.host_files import parse_proc_limits
from railiance_conformance.vocabulary import check_kind

# /proc/<pid>/limits rows of the pam_limits items a login can be checked for
PROC_LIMIT_NAMES = {"nproc": "Max processes", "nofile": "Max open files", "core": "Max core file size",
                    "stack": "Max stack size", "memlock": "Max locked memory", "as": "Max address space",
                    "cpu": "Max cpu time", "fsize": "Max file size", "data": "Max data size",
                    "rss": "Max resident set", "locks": "Max file locks", "sigpending": "Max pending signals",
                    "msgqueue": "Max msgqueue size", "nice": "Max nice priority", "rtprio": "Max realtime priority"}


def limit_value(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return "unlimited" if value in ("unlimited", "infinity", -1, "-1") else value


LIMITS_PROPERTIES: dict[str, Any] = {"item": {"enum": sorted(PROC_LIMIT_NAMES)}, "soft": LIMIT, "hard": LIMIT}
LIMITS_SCHEMA: dict[str, Any] = {"required": ["user", "item", "soft", "hard"], "properties": LIMITS_PROPERTIES}


def limits_params(g: dict[str, str]) -> dict[str, Any]:
    return {"user": g["user"], "item": g["item"], "soft": limit_value(g["soft"]), "hard": limit_value(g["hard"])}


@check_kind("host.pam_limits.configured", rf"pam_limits gives {USER} {LIMITS}", target="host",
            convert=limits_params, schema=LIMITS_SCHEMA,
            facts=lambda p: [*F.account(p["user"]), *F.limits_files()])
def pam_limits_configured(facts: HostFacts, params: Params) -> Outcome:
    """The soft/hard limit of one item as pam_limits resolves limits.conf and limits.d for the user."""
    user, item = params["user"], params["item"]
    expected = {"soft": limit_value(params["soft"]), "hard": limit_value(params["hard"])}
    if facts.section(f"passwd {user}").rc == 2:
        return Outcome.compare(expected, f"no user {user!r}")
    entry = facts.text(f"passwd {user}", what="the passwd database").split(":")
    groups = facts.text(f"groups {user}", what="the user's groups").split()
    gids = [int(g) for g in facts.text(f"gids {user}", what="the user's group ids").split()]
    files = facts.files("/etc/security/limits.conf", "/etc/security/limits.d/")
    ordered = [(p, files[p]) for p in pam_limits.order_limits_files(list(files))]
    resolved = pam_limits.resolve_limit(ordered, user=user, uid=int(entry[2]), groups=groups,
                                        gid=int(entry[3]), gids=gids, item=item)
    skipped = [line.describe() for line in resolved.skipped]
    if resolved.exempt_source:
        return Outcome.compare(expected, f"no limits at all: the user is exempted by {resolved.exempt_source}",
                               evidence={"skipped_lines": skipped} if skipped else None)
    observed = {"soft": resolved.soft, "hard": resolved.hard}
    evidence = {"soft_source": resolved.soft_source, "hard_source": resolved.hard_source}
    # A line pam_limits skips is a fact (Linux-PAM pam_limits.c parse_config_file/process_limit): the
    # limit is what the other lines make it, and the reason names the skipped line and why it is skipped.
    drifted = [half for half in ("soft", "hard") if observed[half] != expected[half]]
    reasons = [f"{line.describe()}: the {' and '.join(h for h in line.halves if h in drifted)} limit is "
               f"{'unset' if all(observed[h] is None for h in line.halves if h in drifted) else 'not set'} "
               f"from that line" for line in resolved.skipped if any(h in drifted for h in line.halves)]
    return Outcome.compare(expected, observed, reason="; ".join(reasons),
                           evidence=evidence | ({"skipped_lines": skipped} if skipped else {}))


@check_kind("host.pam_limits.effective", rf"a login session of {USER} runs with {LIMITS}", target="host",
            convert=limits_params, schema=LIMITS_SCHEMA,
            facts=lambda p: [F.whoami(), F.process_limits(p["user"])])
def pam_limits_effective(facts: HostFacts, params: Params) -> Outcome:
    """The limits a real login session of the user has (/proc/<pid>/limits)."""
    user = params["user"]
    expected = {"soft": limit_value(params["soft"]), "hard": limit_value(params["hard"])}
    soft, hard = parse_proc_limits(facts.text(f"limits {user}", what=f"a process of {user}"),
                                   PROC_LIMIT_NAMES[params["item"]])
    whoami = facts.text("whoami", what="the login user").strip()
    source = "this SSH login session" if whoami == user else "the user's oldest process"
    return Outcome.compare(expected, {"soft": soft, "hard": hard}, evidence={"read_from": source})
