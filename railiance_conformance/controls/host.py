"""Host check kinds (S1: RAIL-HO-WP-0004 T01, T02, T07): facts + params -> Outcome.

Each kind below is one family of Then sentences (``vocabulary.check_kind``): its sentence, its
params' schema, the facts it needs (``probes.facts``) and its evaluator. Evaluators never assert
and never talk to the host: they read ``HostFacts``; a fact that could not be read raises
``FactUnavailable``, which the recorder turns into an error finding.
Example: ``CHECK_KINDS["host.file"].evaluate(facts, {"path": "/swapfile", "size_gib": 4, "owner": "root",
"mode": "0600"})`` -> ``Outcome(DRIFT, expected={...}, observed={...})``.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from railiance_conformance.controls.grammar import (LIMIT, LIMITS, PROPERTIES, SIZE, SYSCTL_KEY, UNIT, USER, Params,
                                                   and_list)
from railiance_conformance.finding import FactUnavailable, Outcome, Status
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts, cannot_start, fork_failure
from railiance_conformance.resources import pam_limits, ssh_tokens, sysctl, systemd_units
from railiance_conformance.resources.endpoints import git_remote
from railiance_conformance.resources.host_files import (
    parse_key_values, parse_mntent, parse_proc_limits, parse_proc_swaps, swap_at_boot, swap_spec_path)
from railiance_conformance.ssh_messages import changed_host_key, without_banner
from railiance_conformance.vocabulary import check_kind

GIB = 1024 ** 3
# /proc/<pid>/limits rows of the pam_limits items a login can be checked for
PROC_LIMIT_NAMES = {"nproc": "Max processes", "nofile": "Max open files", "core": "Max core file size",
                    "stack": "Max stack size", "memlock": "Max locked memory", "as": "Max address space",
                    "cpu": "Max cpu time", "fsize": "Max file size", "data": "Max data size",
                    "rss": "Max resident set", "locks": "Max file locks", "sigpending": "Max pending signals",
                    "msgqueue": "Max msgqueue size", "nice": "Max nice priority", "rtprio": "Max realtime priority"}


def _home(facts: HostFacts, user: str) -> str:
    return facts.text(f"passwd {user}", what=f"the passwd entry of {user}").split(":")[5]


def _expand(path: str, home: str) -> str:
    return home + path[1:] if path.startswith("~/") else path


def _limit(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return "unlimited" if value in ("unlimited", "infinity", -1, "-1") else value


# --- files -------------------------------------------------------------------------------------

@check_kind("host.file", rf"(?P<path>/[A-Za-z0-9._/@+-]*) is a regular file(?: of (?P<size_gib>\d+) GiB)?, "
                         r"owned by (?P<owner>[a-z_][a-z0-9_-]*), mode (?P<mode>0?[0-7]{3})", target="host",
            convert=lambda g: {"path": g["path"], "owner": g["owner"], "mode": g["mode"].rjust(4, "0"),
                               **({"size_gib": int(g["size_gib"])} if g["size_gib"] else {})},
            schema={"required": ["path", "owner", "mode"],
                    "properties": {"path": {"type": "string", "pattern": r"^/[A-Za-z0-9._/@+-]*$"},
                                   "size_gib": {"type": "integer", "minimum": 1}, "owner": {"type": "string"},
                                   "mode": {"type": "string", "pattern": "^0[0-7]{3}$"}}},
            facts=lambda p: [F.stat(p["path"])])
def host_file(facts: HostFacts, params: Params) -> Outcome:
    """A regular file with an owner, a mode and (optionally) an exact size in GiB."""
    path = params["path"]
    expected = {"type": "regular file", "owner": params["owner"], "mode": params["mode"]}
    if "size_gib" in params:
        expected["size_bytes"] = params["size_gib"] * GIB
    stat = F.read_stat(facts, path)
    if stat is None:
        return Outcome.compare(expected, "absent", evidence={"path": path})
    observed = {"type": "regular file" if stat.is_regular else stat.kind, "owner": stat.owner, "mode": stat.mode}
    if "size_bytes" in expected:
        observed["size_bytes"] = stat.size
    return Outcome.compare(expected, observed, evidence={"path": path, "allocated_bytes": stat.blocks * 512})


@check_kind("host.private_key", rf"{USER}'s (?P<path>~/[A-Za-z0-9._/@+-]+) is a private (?P<key_type>ed25519|ecdsa|rsa) key, "
                                r"owned by (?P<owner>[a-z_][a-z0-9_-]*), mode (?P<mode>0?[0-7]{3})", target="host",
            convert=lambda g: {**g, "mode": g["mode"].rjust(4, "0")},
            schema={"required": ["user", "path", "key_type", "owner", "mode"],
                    "properties": {"key_type": {"enum": ["ed25519", "ecdsa", "rsa"]},
                                   "mode": {"type": "string", "pattern": "^0[0-7]{3}$"}}},
            facts=lambda p: [*F.account(p["user"]), F.stat(p["path"], p["user"]), F.pubkey_type(p["path"], p["user"])])
def private_key(facts: HostFacts, params: Params) -> Outcome:
    """A private key in the user's home: owner, mode and key type (from its .pub; the key is never read)."""
    user, path = params["user"], params["path"]
    expected = {"type": "regular file", "owner": params["owner"], "mode": params["mode"], "key_type": params["key_type"]}
    stat = F.read_stat(facts, path, user)
    if stat is None:
        return Outcome.compare(expected, "absent", evidence={"path": path})
    pub = facts.section(F.pubkey_type(path, user).section)
    if pub.rc != 0:
        return Outcome.error(f"cannot tell the key type of {path}: no readable {path}.pub beside it "
                             f"(the private key itself is never read)", expected=expected)
    algorithm = pub.out.strip()
    observed_type = "ed25519" if algorithm == "ssh-ed25519" else algorithm.removeprefix("ssh-").split("-")[0]
    observed = {"type": "regular file" if stat.is_regular else stat.kind, "owner": stat.owner,
                "mode": stat.mode, "key_type": observed_type}
    return Outcome.compare(expected, observed, evidence={"path": path, "public_key_algorithm": algorithm})


# --- swap ----------------------------------------------------------------------------------------

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
        observed = {"spec": path, "type": "swap", "enabled_at_boot": why_not is None}
        reason = f"/etc/fstab:{entry.line} '{path} {entry.file} swap {entry.options}': {why_not}" if why_not else ""
        return Outcome.compare(expected, observed, reason=reason,
                               evidence=evidence | {"line": entry.line, "options": entry.options})
    observed = {"spec": path, "type": entries[0].vfstype, "enabled_at_boot": False} if entries \
        else "no uncommented entry"
    reason = ("a swap entry names a LABEL=/UUID= device, which cannot be the swap file " + path) if tags else ""
    return Outcome.compare(expected, observed, reason=reason, evidence=evidence)


# --- sysctl --------------------------------------------------------------------------------------

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


# --- users and pam_limits ------------------------------------------------------------------------

@check_kind("host.user.uid", rf"user {USER} has uid (?P<uid>\d+)", target="host",
            convert=lambda g: {"user": g["user"], "uid": int(g["uid"])},
            schema={"required": ["user", "uid"], "properties": {"uid": {"type": "integer", "minimum": 0}}},
            facts=lambda p: F.account(p["user"]))
def user_uid(facts: HostFacts, params: Params) -> Outcome:
    """The user exists with the uid (a slice is named after the uid)."""
    user = params["user"]
    passwd = facts.section(f"passwd {user}")
    if passwd.rc == 2:  # getent: key not found
        return Outcome.compare(params["uid"], f"no user {user!r}")
    entry = facts.text(f"passwd {user}", what="the passwd database").strip().split(":")
    return Outcome.compare(params["uid"], int(entry[2]), evidence={"user": user})


_LIMITS_SCHEMA = {"required": ["user", "item", "soft", "hard"],
                  "properties": {"item": {"enum": sorted(PROC_LIMIT_NAMES)}, "soft": LIMIT, "hard": LIMIT}}


def _limits_params(g: dict[str, str]) -> dict[str, Any]:
    return {"user": g["user"], "item": g["item"], "soft": _limit(g["soft"]), "hard": _limit(g["hard"])}


@check_kind("host.pam_limits.configured", rf"pam_limits gives {USER} {LIMITS}", target="host",
            convert=_limits_params, schema=_LIMITS_SCHEMA,
            facts=lambda p: [*F.account(p["user"]), *F.limits_files()])
def pam_limits_configured(facts: HostFacts, params: Params) -> Outcome:
    """The soft/hard limit of one item as pam_limits resolves limits.conf and limits.d for the user."""
    user, item = params["user"], params["item"]
    expected = {"soft": _limit(params["soft"]), "hard": _limit(params["hard"])}
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
            convert=_limits_params, schema=_LIMITS_SCHEMA,
            facts=lambda p: [F.whoami(), F.process_limits(p["user"])])
def pam_limits_effective(facts: HostFacts, params: Params) -> Outcome:
    """The limits a real login session of the user has (/proc/<pid>/limits)."""
    user = params["user"]
    expected = {"soft": _limit(params["soft"]), "hard": _limit(params["hard"])}
    soft, hard = parse_proc_limits(facts.text(f"limits {user}", what=f"a process of {user}"),
                                   PROC_LIMIT_NAMES[params["item"]])
    whoami = facts.text("whoami", what="the login user").strip()
    source = "this SSH login session" if whoami == user else "the user's oldest process"
    return Outcome.compare(expected, {"soft": soft, "hard": hard}, evidence={"read_from": source})


# --- systemd -------------------------------------------------------------------------------------

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


# --- the operator's ssh and git ------------------------------------------------------------------

@check_kind("host.ssh_config", rf"{USER}'s ssh resolves (?P<alias>[A-Za-z0-9._-]+) to HostName (?P<hostname>[A-Za-z0-9._:-]+), "
                               r"User (?P<ssh_user>[a-z_][a-z0-9_-]*), IdentityFile (?P<identity_file>~?/[A-Za-z0-9._/@+-]+) "
                               r"and Port (?:(?P<port>\d+)|the NodePort of Service (?P<nodeport_service>[a-z0-9-]+/[a-z0-9-]+))",
            target="host",
            convert=lambda g: {k: (int(v) if k == "port" else v) for k, v in g.items() if v is not None},
            schema={"required": ["user", "alias", "hostname", "ssh_user", "identity_file"],
                    "properties": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}}},
            facts=lambda p: [*F.account(p["user"]), *F.ssh_config(p["user"], p["alias"]), F.local_hostname()])
def ssh_config(facts: HostFacts, params: Params) -> Outcome:
    """``ssh -G ALIAS`` as the user: HostName, User, IdentityFile and Port of the resolved block.

    ``ssh -G`` prints IdentityFile unexpanded; each one is expanded as ssh expands it when it loads the
    key (``~``, ``%d``/``%u``/``%h``/``%r``/… TOKENS, ``${HOME}``-style variables of the login's
    environment: ``resources.ssh_tokens``)."""
    user, alias = params["user"], params["alias"]
    home = _home(facts, user)
    expected = {"host_block": alias, "hostname": params["hostname"], "user": params["ssh_user"],
                "identityfile": _expand(params["identity_file"], home), "port": params.get("port")}
    # resolved by the operator's own ssh, run as the operator (relative Includes, ~ and Match
    # resolve in their home; /etc/ssh/ssh_config applies after theirs, as for any ssh they start)
    text = facts.text(f"ssh.G {user} {alias}", what=f"ssh -G {alias} as {user}")
    resolved = parse_key_values(text, sep=" ")
    entry = facts.text(f"passwd {user}", what=f"the passwd entry of {user}").strip().split(":")
    hostname_section = facts.sections.get("hostname")
    context = ssh_tokens.SshContext(
        local_user=user, uid=int(entry[2]), home=home, hostname=resolved.get("hostname", alias),
        remote_user=resolved.get("user", user), port=resolved.get("port", "22"), host_arg=alias,
        local_hostname=hostname_section.out.strip() if hostname_section is not None and hostname_section.rc == 0 else "",
        host_key_alias=resolved.get("hostkeyalias", ""),
        proxy_jump="" if resolved.get("proxyjump", "none") == "none" else resolved.get("proxyjump", ""),
        environment=ssh_tokens.login_environment(user, home, entry[6] if len(entry) > 6 else "/bin/sh"))
    identity_files, unknown, failing = [], [], []
    for line in text.splitlines():
        if not line.startswith("identityfile "):
            continue
        written = line.split(" ", 1)[1]
        try:
            identity_files.append(ssh_tokens.expand_identity_file(written, context))
        except ssh_tokens.UnknownVariable as exc:
            unknown.append(f"IdentityFile {written}: {exc}")
        except ssh_tokens.ExpansionFails as exc:
            failing.append(f"IdentityFile {written}: ssh fails ({exc})")
    if resolved.get("hostname") == alias:
        has_config = facts.sections.get(f"ssh.userconfig {user}")
        where = f"{home}/.ssh/config (with its Includes) or /etc/ssh/ssh_config" if has_config and has_config.rc == 0 \
            else f"/etc/ssh/ssh_config, and there is no {home}/.ssh/config"
        return Outcome.compare(expected, f"no Host {alias} block in {where}")
    wanted = expected["identityfile"]
    observed = {"host_block": alias, "hostname": resolved.get("hostname"), "user": resolved.get("user"),
                "identityfile": wanted if wanted in identity_files else ", ".join(identity_files),
                "port": int(resolved["port"]) if resolved.get("port", "").isdigit() else resolved.get("port")}
    if wanted not in identity_files and (unknown or failing):
        observed["identityfile"] = "; ".join([*failing, *unknown, *identity_files])
        if unknown and not failing:
            return Outcome(Status.ERROR, expected, None, reason="cannot tell which key ssh loads: " + "; ".join(unknown))
    if expected["port"] is None:
        return Outcome(Status.ERROR, expected, observed,
                       reason=f"the NodePort of Service {params.get('nodeport_service', 'gitea/gitea-ssh')} is unknown: "
                              "give the cluster (--kubeconfig) or set gitea_ssh_nodeport, so the block's Port can be compared")
    return Outcome.compare(expected, observed, evidence={"resolved_by": f"ssh -G as {user}"})


@check_kind("host.git_remotes", rf"every checkout of {USER} in (?P<paths>~?/\S+(?:(?:, | and )~?/\S+)*) "
                                r"fetches and pushes to (?P<prefix>\S+)", target="host",
            convert=lambda g: {"user": g["user"], "paths": and_list(g["paths"]), "prefix": g["prefix"]},
            schema={"required": ["user", "paths", "prefix"],
                    "properties": {"paths": {"type": "array", "minItems": 1,
                                             "items": {"type": "string", "pattern": r"^(~/|/)[A-Za-z0-9._/@+-]*$"}}}},
            facts=lambda p: [F.git_push_destination(p["user"], path) for path in p["paths"]])
def git_remotes(facts: HostFacts, params: Params) -> Outcome:
    """Each checkout's ``git fetch`` and ``git push`` of its current branch go to the prefix, as git reads
    them: the push remote is branch.<name>.pushRemote, else remote.pushDefault, else the branch's remote,
    else origin (git remote.c ``pushremote_for_branch``/``remote_for_branch``), and every URL it pushes to
    (pushurl, pushInsteadOf, insteadOf) counts. Proved against ``git push --dry-run -v`` on generated
    configs (tests/differential/test_git_push_differential.py)."""
    user, prefix = params["user"], params["prefix"]
    want = git_remote(prefix)
    repos = list(params["paths"])
    observed: dict[str, str] = {}
    drifted, unreadable, remotes = [], [], {}
    for path in repos:
        section = facts.section(F.git_push_destination(user, path).section)
        if section.rc not in (0, 4):
            detail = section.out.strip().splitlines()[-1] if section.out.strip() else f"exit {section.rc}"
            unreadable.append(f"{path}: {detail}")  # could not look: not a fact about the repo
            continue
        found = F.read_git_destination(facts, user, path)
        if found is None:
            observed[path] = "(no checkout)"
            drifted.append(path)
            continue
        remotes[path] = {"branch": found["branch"] or "(detached HEAD)", "fetch_remote": found["fetch_remote"],
                         "push_remote": found["push_remote"]}
        if found.get("fetch_error") or found.get("push_error"):
            which = "fetch" if found.get("fetch_error") else "push"
            observed[path] = f"(no {which} remote {found[which + '_remote']!r}: {found.get(which + '_error')})"
            drifted.append(path)
            continue
        fetches, pushes = found["fetch"], found["push"]
        # where fetches and pushes go, as git's transport reads each URL (scp-like == ssh://)
        wrong = [u for u in [*fetches, *pushes] if not _to_prefix(git_remote(u), want)]
        if not wrong:
            observed[path] = f"{prefix}..."
        else:
            drifted.append(path)
            via = f" (via remote {found['push_remote']})" if found["push_remote"] != found["fetch_remote"] else ""
            observed[path] = (", ".join(fetches) if pushes == fetches
                              else f"fetch {', '.join(fetches)}; push {', '.join(pushes)}{via}")
    expected = {path: f"{prefix}..." for path in repos}
    if unreadable and not drifted:
        return Outcome(Status.ERROR, expected, observed, reason="cannot read the remotes of " + "; ".join(unreadable))
    status = Status.DRIFT if drifted else Status.PASS
    return Outcome(status, expected, observed, evidence=(("drifted", drifted), ("unreadable", unreadable),
                                                         ("remotes", remotes),
                                                         ("compared", "the URLs git fetch and git push (no arguments) "
                                                          "use from the current branch: pushRemote, remote.pushDefault, "
                                                          f"pushurl, pushInsteadOf, insteadOf, as {user}")))


def _to_prefix(remote, want) -> bool:
    """Same ssh server as the prefix, and a path under its path.

    A URL without a user logs in as the User its ssh config block gives (checked by the ssh
    config control), so it matches the prefix's user; an explicit port must equal the prefix's
    (none: the ssh config's Port decides).
    """
    base = want.path if want.path.endswith("/") else want.path + "/"
    same = (remote.scheme, remote.host.lower(), remote.port) == (want.scheme, want.host.lower(), want.port) \
        and remote.user in (want.user, None)
    return same and (base == "/" or (remote.path + "/").startswith(base))


# --- outcomes: what the workplan's "Done when" promises (issue 13) -------------------------------

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


@check_kind("host.processes.limits", rf"every running process of {USER} runs with {LIMITS}", target="host",
            convert=_limits_params, schema={**_LIMITS_SCHEMA, "properties": {**_LIMITS_SCHEMA["properties"],
                                                                             "item": {"const": "nproc"}}},
            facts=lambda p: [F.whoami(), F.user_processes(p["user"])])
def processes_limits(facts: HostFacts, params: Params) -> Outcome:
    """Every running process of the user (real uid; /proc/<pid>/limits) has the caps, not only a new
    login: a process started before the converge keeps its old limits (INC-002's runaway agent).
    Offenders are listed by pid and command name (/proc/<pid>/comm), never with their arguments."""
    user = params["user"]
    expected = {"soft": _limit(params["soft"]), "hard": _limit(params["hard"])}
    rows = F.read_user_processes(facts, user)
    if rows is None:
        return Outcome.compare(expected, f"no user {user!r}")
    if not rows:
        whoami = facts.text("whoami", what="the login user").strip()
        return Outcome.error(f"no running process of {user} could be inspected (logged in as {whoami}; "
                             "/proc mounted with hidepid hides other users' processes)", expected=expected)
    offenders = {}
    for pid, soft, hard, comm in rows:
        observed = {"soft": _limit(soft), "hard": _limit(hard)}
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


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


_SSH_UNREACHABLE = ("Connection refused", "Could not resolve host", "timed out", "No route to host",
                    "Network is unreachable", "Connection closed by", "Connection reset", "kex_exchange_identification")


def _ssh_failure(text: str, rc: int, alias: str) -> tuple[Status, str] | None:
    """Classify an ssh client's exit: None when it authenticated; (DRIFT, why) when the server or the
    client's own setup refuses a prompt-free login; (ERROR, why) when the server could not be reached."""
    if "Permission denied" in text:
        line = next(line.strip() for line in text.splitlines() if "Permission denied" in line)
        return Status.DRIFT, f"{alias} refuses the login in batch mode (no usable key without a prompt): {line}"
    if (changed := changed_host_key(text, alias)) is not None:  # ssh's banner: an error, never an observed value
        return Status.ERROR, changed
    if "Host key verification failed" in text:
        return Status.DRIFT, (f"{alias}'s host key is not in the user's known_hosts (or changed): a push would stop "
                              "at a prompt or fail")
    if rc == 255 or any(marker in text for marker in _SSH_UNREACHABLE):
        cause = next((line.strip() for line in text.splitlines() if any(m in line for m in _SSH_UNREACHABLE)),
                     _last_line(text) or f"ssh exit {rc}")
        return Status.ERROR, f"{alias} cannot be reached from the host: {cause}"
    return None


@check_kind("host.ssh.batch_login", rf"{USER}'s ssh logs in to (?P<alias>[A-Za-z0-9._-]+) in batch mode, without a prompt",
            target="host", schema={"required": ["user", "alias"]},
            facts=lambda p: [F.ssh_login(p["user"], p["alias"])])
def ssh_batch_login(facts: HostFacts, params: Params) -> Outcome:
    """``ssh -T ALIAS`` as the user in batch mode (no command: a git-shell or Gitea login answers and
    exits) authenticates: "Permission denied" or an unknown host key is drift; unreachable is an error."""
    user, alias = params["user"], params["alias"]
    section = facts.section(F.ssh_login(user, alias).section)
    text = section.out
    if section.rc == 5:  # asuser: could not run as the user
        raise FactUnavailable(_last_line(text))
    if section.rc == 124:
        return Outcome.error(f"{alias} cannot be reached from the host: ssh did not finish within "
                             f"{facts.network_timeout_s} s (timed out: the probe's bound for a network check, "
                             "from --command-timeout)", expected={"authenticated": True})
    failure = _ssh_failure(text, section.rc, alias)
    expected = {"authenticated": True, "prompt": False}
    if failure is None:
        return Outcome(Status.PASS, expected, {"authenticated": True, "prompt": False},
                       evidence=(("server_answer", _last_line(text)[:200]), ("exit", section.rc)))
    status, reason = failure
    if status is Status.ERROR:
        return Outcome.error(reason, expected=expected)
    return Outcome(Status.DRIFT, expected, {"authenticated": False}, reason, (("exit", section.rc),))


@check_kind("host.git.ls_remote", rf"git ls-remote answers as {USER} for the push URL of every checkout in "
                                  r"(?P<paths>~?/\S+(?:(?:, | and )~?/\S+)*)", target="host",
            convert=lambda g: {"user": g["user"], "paths": and_list(g["paths"])},
            schema={"required": ["user", "paths"],
                    "properties": {"paths": {"type": "array", "minItems": 1,
                                             "items": {"type": "string", "pattern": r"^(~/|/)[A-Za-z0-9._/@+-]*$"}}}},
            facts=lambda p: [F.git_ls_push_remote(p["user"], path) for path in p["paths"]])
def git_ls_remote(facts: HostFacts, params: Params) -> Outcome:
    """``git ls-remote`` of every URL each checkout's current branch pushes to (its push remote: pushRemote,
    remote.pushDefault, the branch's remote, origin) answers, as the user, in batch
    mode (read-only: the refs are listed, nothing is sent). A refused key or missing repository is
    drift; a server that cannot be reached is an error."""
    user = params["user"]
    expected = {path: "answers" for path in params["paths"]}
    observed: dict[str, str] = {}
    drifted, unreachable = [], []
    for path in params["paths"]:
        section = facts.section(F.git_ls_push_remote(user, path).section)
        if section.rc == 5:
            raise FactUnavailable(_last_line(section.out))
        if section.rc in (3, 4):
            observed[path] = f"no origin ({_last_line(section.out)})" if section.rc == 3 else "no checkout"
            drifted.append(path)
            continue
        if section.rc == 124:
            observed[path] = f"ls-remote did not finish within {facts.network_timeout_s} s (timed out)"
            unreachable.append(path)
            continue
        answers, url = [], ""
        lines = section.out.splitlines()
        for index, line in enumerate(lines):
            if line.startswith("url "):
                url = line[4:]
            elif line.startswith("rc "):
                fields = line.split()
                if len(fields) != 4 or not (fields[1].isdigit() and fields[3].isdigit()):
                    raise cannot_start(forked) if (forked := fork_failure(section.out)) else \
                        FactUnavailable(f"the ls-remote probe of {path} was cut short: {line!r}")
                rc, refs = int(fields[1]), int(fields[3])
                detail = "\n".join(l.strip() for l in lines[index + 1:index + 4] if l.startswith("  "))
                if rc != 0 and (forked := fork_failure(detail)):
                    raise cannot_start(forked)
                answers.append((url, rc, refs, detail))
        failures = [(u, _ssh_failure(d, rc, "the server") or
                     (Status.DRIFT, (without_banner(d).splitlines() or [f"exit {rc}"])[0]))
                    for u, rc, _, d in answers if rc != 0]
        if not answers:
            observed[path] = "no push URL"
            drifted.append(path)
        elif not failures:
            observed[path] = "answers"
        else:
            observed[path] = "; ".join(f"{u}: {why}" for u, (_, why) in failures)
            (drifted if any(s is Status.DRIFT for _, (s, _) in failures) else unreachable).append(path)
    evidence = (("drifted", drifted), ("unreachable", unreachable))
    if drifted:
        return Outcome(Status.DRIFT, expected, observed, evidence=evidence)
    if unreachable:
        return Outcome(Status.ERROR, expected, observed,
                       reason="cannot reach the push URL of " + "; ".join(f"{p}: {observed[p]}" for p in unreachable),
                       evidence=evidence)
    return Outcome(Status.PASS, expected, observed, evidence=evidence)


@check_kind("host.pending", r'"(?P<control_id>[a-z0-9_.]+)" stays pending on the host until a human approves the task',
            target="host", facts=lambda p: [])
def host_pending(facts: HostFacts, params: Params) -> Outcome:  # pragma: no cover - the recorder reports pending
    """A control whose task waits for a human: the catalog's ``pending`` makes it pending, never evaluated."""
    return Outcome(Status.PENDING, reason="pending")
