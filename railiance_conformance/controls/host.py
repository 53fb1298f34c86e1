"""S1 host controls (RAIL-HO-WP-0004 T01, T02, T07): facts + desired values -> Outcome.

Example: ``EVALUATORS["host.swap.file"](facts, desired)`` -> ``Outcome(DRIFT, expected=..., observed=...)``.
Evaluators never assert and never talk to the host: they read ``HostFacts``. A fact that
could not be read raises ``FactUnavailable``, which the caller records as an error finding.
"""
from __future__ import annotations

from typing import Any, Mapping

from railiance_conformance.controls import control
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.resources.endpoints import git_remote
from railiance_conformance.resources import pam_limits, sysctl, systemd_units
from railiance_conformance.resources.host_files import (
    parse_key_values, parse_mntent, parse_proc_limits, parse_proc_swaps, parse_stat, swap_at_boot, swap_spec_path)

GIB = 1024 ** 3
Desired = Mapping[str, Any]


def _stat_or_absent(facts: HostFacts, section: str, what: str):
    found = facts.section(section)
    if found.rc != 0 and "No such file" in found.out:
        return None
    return parse_stat(facts.text(section, what=what))


def _home(facts: HostFacts) -> str:
    return facts.text("passwd", what="the user's passwd entry").split(":")[5]


def _expand(path: str, home: str) -> str:
    return home + path[1:] if path.startswith("~/") else path


@control("host.swap.file")
def swap_file(facts: HostFacts, desired: Desired) -> Outcome:
    path = desired["swap_file"]
    expected = {"type": "regular file", "owner": "root", "mode": "0600", "size_bytes": desired["swap_size_gb"] * GIB}
    stat = _stat_or_absent(facts, "swapfile.stat", path)
    if stat is None:
        return Outcome.compare(expected, "absent", evidence={"path": path})
    observed = {"type": "regular file" if stat.is_regular else stat.kind, "owner": stat.owner,
                "mode": stat.mode, "size_bytes": stat.size}
    return Outcome.compare(expected, observed, evidence={"path": path, "allocated_bytes": stat.blocks * 512})


@control("host.swap.active")
def swap_active(facts: HostFacts, desired: Desired) -> Outcome:
    path = desired["swap_file"]
    page = int(facts.text("pagesize", what="the page size").strip())
    stat = _stat_or_absent(facts, "swapfile.stat", path)
    file_bytes = stat.size if stat else desired["swap_size_gb"] * GIB
    swaps = parse_proc_swaps(facts.text("proc.swaps", what="/proc/swaps"))
    entry = swaps.get(path)
    expected = {"active": True, "size_kib": file_bytes // 1024, "tolerance_kib": page // 1024}
    evidence = {"proc_swaps": sorted(swaps), "file_bytes": file_bytes, "page_size": page}
    if entry is None:
        return Outcome(Status.DRIFT, expected, {"active": False, "size_kib": None}, evidence=tuple(evidence.items()))
    observed = {"active": True, "size_kib": entry.size_kib}
    within = abs(file_bytes - entry.size_kib * 1024) <= page
    return Outcome(Status.PASS if within else Status.DRIFT, expected, observed, evidence=tuple(evidence.items()))


@control("host.swap.fstab")
def swap_fstab(facts: HostFacts, desired: Desired) -> Outcome:
    path = desired["swap_file"]
    fstab = facts.files("/etc/fstab").get("/etc/fstab")
    if fstab is None:
        return Outcome.compare(f"{path} none swap sw 0 0", "no /etc/fstab")
    # At boot systemd v252's fstab-generator reads fstab with getmntent() (host_files.parse_mntent) and
    # the first entry for a unit wins; swap_at_boot() says whether swap.target pulls the entry in.
    active, commented = parse_mntent(fstab)
    wanted = swap_spec_path(path)
    entries = [e for e in active if swap_spec_path(e.spec) == wanted]
    swap = [e for e in entries if e.vfstype == "swap"]
    expected = {"spec": path, "type": "swap", "enabled_at_boot": True}
    evidence: dict[str, Any] = {"commented_lines": [f"{n}: {text}" for n, text in commented if path in text]}
    tags = [f"{e.line}: {e.spec}" for e in active if e.vfstype == "swap" and swap_spec_path(e.spec) is None]
    if tags:  # LABEL=/UUID= name a block device: they cannot be the swap file
        evidence["tag_swap_entries"] = tags
    if swap:
        entry = swap[0]
        why_not = swap_at_boot(entry)
        observed = {"spec": path, "type": "swap", "enabled_at_boot": why_not is None}
        reason = f"/etc/fstab:{entry.line} '{path} {entry.file} swap {entry.options}': {why_not}" if why_not else ""
        return Outcome.compare(expected, observed, reason=reason,
                               evidence=evidence | {"line": entry.line, "options": entry.options})
    observed = {"spec": path, "type": entries[0].vfstype, "enabled_at_boot": False} if entries \
        else "no uncommented entry"
    reason = ("a swap entry names a LABEL=/UUID= device, which cannot be the swap file " + path) if tags else ""
    return Outcome.compare(expected, observed, reason=reason, evidence=evidence)


@control("host.swappiness.live")
def swappiness_live(facts: HostFacts, desired: Desired) -> Outcome:
    text = facts.text("swappiness", what="/proc/sys/vm/swappiness")
    try:  # the kernel prints "%d\n"; read back with its own parser (kernel/sysctl.c)
        live = sysctl.kernel_write_int(text, "vm.swappiness", newline=False)
    except sysctl.KernelRejects as exc:
        return Outcome.error(f"/proc/sys/vm/swappiness holds {text.strip()!r}, not a swappiness ({exc})",
                             expected=desired["swap_swappiness"])
    return Outcome.compare(desired["swap_swappiness"], live)


@control("host.swappiness.persisted")
def swappiness_persisted(facts: HostFacts, desired: Desired) -> Outcome:
    files = facts.files(*(d + "/" for d in sysctl.SYSCTL_DIRS))
    setting = sysctl.resolve_sysctl(files).get("vm.swappiness")
    if setting is None:
        return Outcome.compare(desired["swap_swappiness"], "not set (the kernel default applies at boot)",
                               evidence={"files": sorted(files)})
    evidence = {"winning_source": setting.source, "value_written": setting.value}
    try:  # systemd-sysctl hands the whole value ("10 # keep low") to the kernel, which reads one int
        observed = sysctl.kernel_write_int(setting.value, "vm.swappiness")
    except sysctl.KernelRejects as exc:
        reason = (f"the kernel rejects vm.swappiness = {setting.value!r} from {setting.source} (EINVAL: {exc}): "
                  f"vm.swappiness keeps its previous value (the kernel default, 60, at boot)")
        return Outcome(Status.DRIFT, desired["swap_swappiness"], f"{setting.value!r} (rejected by the kernel)",
                       reason, tuple(evidence.items()))
    return Outcome.compare(desired["swap_swappiness"], observed, evidence=evidence)


@control("host.user.uid")
def user_uid(facts: HostFacts, desired: Desired) -> Outcome:
    passwd = facts.section("passwd")
    if passwd.rc == 2:  # getent: key not found
        return Outcome.compare(desired["operator_uid"], f"no user {desired['operator_user']!r}")
    entry = facts.text("passwd", what="the passwd database").strip().split(":")
    return Outcome.compare(desired["operator_uid"], int(entry[2]), evidence={"user": desired["operator_user"]})


def _limit(value: Any) -> Any:
    return "unlimited" if value in ("unlimited", "infinity", -1) else value


@control("host.nproc.configured")
def nproc_configured(facts: HostFacts, desired: Desired) -> Outcome:
    expected = {"soft": _limit(desired["nproc_soft"]), "hard": _limit(desired["nproc_hard"])}
    if facts.section("passwd").rc == 2:
        return Outcome.compare(expected, f"no user {desired['operator_user']!r}")
    entry = facts.text("passwd", what="the passwd database").split(":")
    groups = facts.text("groups", what="the user's groups").split()
    gids = [int(g) for g in facts.text("gids", what="the user's group ids").split()]
    files = facts.files("/etc/security/limits.conf", "/etc/security/limits.d/")
    ordered = [(p, files[p]) for p in pam_limits.order_limits_files(list(files))]
    resolved = pam_limits.resolve_limit(ordered, user=desired["operator_user"], uid=int(entry[2]), groups=groups,
                                        gid=int(entry[3]), gids=gids, item="nproc")
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


@control("host.nproc.effective")
def nproc_effective(facts: HostFacts, desired: Desired) -> Outcome:
    expected = {"soft": _limit(desired["nproc_soft"]), "hard": _limit(desired["nproc_hard"])}
    soft, hard = parse_proc_limits(facts.text("limits", what=f"a process of {desired['operator_user']}"))
    whoami = facts.text("whoami", what="the login user").strip()
    source = "this SSH login session" if whoami == desired["operator_user"] else "the user's oldest process"
    return Outcome.compare(expected, {"soft": soft, "hard": hard}, evidence={"read_from": source})


def _sizes(desired: Desired, mem_total: int | None) -> dict[str, Any]:
    return {"MemoryMax": systemd_units.parse_size(str(desired["user_memory_max"]), mem_total=mem_total),
            "MemorySwapMax": systemd_units.parse_size(str(desired["user_memory_swap_max"]), mem_total=mem_total)}


def _mem_total(facts: HostFacts) -> int | None:
    section = facts.section("memtotal")
    return int(section.out.split()[1]) * 1024 if section.rc == 0 and section.out.split() else None


@control("host.slice.configured")
def slice_configured(facts: HostFacts, desired: Desired) -> Outcome:
    unit = f"user-{desired['operator_uid']}.slice"
    mem_total = _mem_total(facts)
    expected = _sizes(desired, mem_total)
    files = facts.files(*(d + "/" for d in systemd_units.SYSTEM_UNIT_DIRS))
    settings = systemd_units.resolve_unit_properties(files, unit=unit, section="Slice",
                                                     properties=("MemoryMax", "MemorySwapMax"))
    observed = {prop: (systemd_units.parse_size(s.value, mem_total=mem_total) if s else "infinity (unset)")
                for prop, s in settings.items()}
    return Outcome.compare(expected, observed,
                           evidence={f"{p}_source": s.source for p, s in settings.items() if s} | {"unit": unit})


@control("host.slice.effective")
def slice_effective(facts: HostFacts, desired: Desired) -> Outcome:
    unit = f"user-{desired['operator_uid']}.slice"
    expected = _sizes(desired, _mem_total(facts))
    if facts.section("systemd").rc != 0:
        pid1 = facts.section("pid1").out.strip() or "unknown"
        return Outcome.error(f"systemd is not running on this host (PID 1 is {pid1!r}): "
                             f"{unit} cannot be asked for its effective limits", expected=expected)
    shown = parse_key_values(facts.text("slice.show", what=f"systemctl show {unit}"))
    observed = {prop: int(shown[prop]) if shown.get(prop, "").isdigit() else shown.get(prop)
                for prop in ("MemoryMax", "MemorySwapMax")}
    return Outcome.compare(expected, observed, evidence={"unit": unit, "LoadState": shown.get("LoadState")})


@control("host.gitea_ssh.key")
def gitea_ssh_key(facts: HostFacts, desired: Desired) -> Outcome:
    path = desired["gitea_ssh_identity_file"]
    key_type = desired["gitea_ssh_key_type"]
    uid = int(facts.text("passwd", what="the user's passwd entry").split(":")[2])
    expected = {"type": "regular file", "owner_uid": uid, "mode": "0600", "key_type": key_type}
    stat = _stat_or_absent(facts, "key.stat", path)
    if stat is None:
        return Outcome.compare(expected, "absent", evidence={"path": path})
    pub = facts.section("key.type")
    if pub.rc != 0:
        return Outcome.error(f"cannot tell the key type of {path}: no readable {path}.pub beside it "
                             f"(the private key itself is never read)", expected=expected)
    algorithm = pub.out.strip()
    observed_type = "ed25519" if algorithm == "ssh-ed25519" else algorithm.removeprefix("ssh-").split("-")[0]
    observed = {"type": "regular file" if stat.is_regular else stat.kind, "owner_uid": stat.uid,
                "mode": stat.mode, "key_type": observed_type}
    return Outcome.compare(expected, observed, evidence={"path": path, "public_key_algorithm": algorithm})


@control("host.gitea_ssh.config")
def gitea_ssh_config(facts: HostFacts, desired: Desired) -> Outcome:
    alias = desired["gitea_ssh_host_alias"]
    home = _home(facts)
    expected = {"host_block": alias, "hostname": desired["gitea_ssh_hostname"], "user": desired["gitea_ssh_user"],
                "identityfile": _expand(desired["gitea_ssh_identity_file"], home),
                "port": desired.get("gitea_ssh_nodeport")}
    # resolved by the operator's own ssh, run as the operator (relative Includes, ~ and Match
    # resolve in their home; /etc/ssh/ssh_config applies after theirs, as for any ssh they start)
    text = facts.text("ssh.G", what=f"ssh -G {alias} as {desired['operator_user']}")
    resolved = parse_key_values(text, sep=" ")
    identity_files = [_expand(line.split(" ", 1)[1], home) for line in text.splitlines()
                      if line.startswith("identityfile ")]
    if resolved.get("hostname") == alias:
        has_config = facts.section("ssh.userconfig").rc == 0 if "ssh.userconfig" in facts.sections else None
        where = f"{home}/.ssh/config (with its Includes) or /etc/ssh/ssh_config" if has_config \
            else f"/etc/ssh/ssh_config, and there is no {home}/.ssh/config"
        return Outcome.compare(expected, f"no Host {alias} block in {where}")
    wanted = expected["identityfile"]
    observed = {"host_block": alias, "hostname": resolved.get("hostname"), "user": resolved.get("user"),
                "identityfile": wanted if wanted in identity_files else ", ".join(identity_files),
                "port": int(resolved["port"]) if resolved.get("port", "").isdigit() else resolved.get("port")}
    if expected["port"] is None:
        return Outcome(Status.ERROR, expected, observed,
                       reason="Gitea's SSH NodePort is unknown: give the cluster (--kubeconfig) or set "
                              "gitea_ssh_nodeport, so the block's Port can be compared")
    return Outcome.compare(expected, observed, evidence={"resolved_by": "ssh -G"})


@control("host.gitea_ssh.remotes")
def gitea_ssh_remotes(facts: HostFacts, desired: Desired) -> Outcome:
    prefix = desired["gitea_ssh_origin_prefix"]
    want = git_remote(prefix)
    repos = desired.get("repo_checkouts", [])
    observed: dict[str, str] = {}
    drifted, unreadable = [], []
    for index, path in enumerate(repos):
        section = facts.section(f"repo.{index}")
        if section.rc != 0:
            detail = section.out.strip().splitlines()[-1] if section.out.strip() else f"exit {section.rc}"
            if section.rc == 5 or "ermission denied" in detail:  # could not look: not a fact about the repo
                unreadable.append(f"{path}: {detail}")
                continue
            observed[path] = f"(no origin: {detail})"
            drifted.append(path)
            continue
        fetch = section.out.strip()
        push_section = facts.sections.get(f"repo.{index}.push")
        pushes = push_section.out.split() if push_section is not None and push_section.rc == 0 else [fetch]
        # where fetches and pushes go, as git's transport reads each URL (scp-like == ssh://)
        wrong = [u for u in [fetch, *pushes] if not _to_gitea(git_remote(u), want)]
        if not wrong:
            observed[path] = f"{prefix}..."
        else:
            drifted.append(path)
            observed[path] = fetch if pushes == [fetch] else f"fetch {fetch}; push {', '.join(pushes)}"
    expected = {path: f"{prefix}..." for path in repos}
    if unreadable and not drifted:
        return Outcome(Status.ERROR, expected, observed,
                       reason="cannot read the remotes of " + "; ".join(unreadable))
    status = Status.DRIFT if drifted else Status.PASS
    return Outcome(status, expected, observed, evidence=(("drifted", drifted), ("unreadable", unreadable),
                                                         ("compared", "fetch URL and every push URL (pushurl, "
                                                          "pushInsteadOf) as git reads them, as the operator")))


def _to_gitea(remote, want) -> bool:
    """Same ssh server as the policy's prefix, and a path under its path.

    A URL without a user logs in as the User its ssh config block gives, which host.gitea_ssh.config
    checks, so it matches the prefix's user; an explicit port must equal the prefix's (none: the
    ssh config's Port decides).
    """
    base = want.path if want.path.endswith("/") else want.path + "/"
    same = (remote.scheme, remote.host.lower(), remote.port) == (want.scheme, want.host.lower(), want.port) \
        and remote.user in (want.user, None)
    return same and (base == "/" or (remote.path + "/").startswith(base))
