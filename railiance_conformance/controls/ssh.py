"""Host kinds about the operator's ssh: what ``ssh -G`` resolves an alias to, and a batch-mode login.
"""
from __future__ import annotations

from railiance_conformance.controls.grammar import USER, Params
from railiance_conformance.controls.host import expand_home, home_of
from railiance_conformance.finding import FactUnavailable, Outcome, Status
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.probes.host_script import NOT_REGULAR, NOT_RUN
from railiance_conformance.resources import ssh_tokens
from railiance_conformance.resources.host_files import parse_key_values
from railiance_conformance.ssh_messages import changed_host_key
from railiance_conformance.vocabulary import check_kind


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
    home = home_of(facts, user)
    expected = {"host_block": alias, "hostname": params["hostname"], "user": params["ssh_user"],
                "identityfile": expand_home(params["identity_file"], home), "port": params.get("port")}
    # resolved by the operator's own ssh, run as the operator (relative Includes, ~ and Match
    # resolve in their home; /etc/ssh/ssh_config applies after theirs, as for any ssh they start)
    text = facts.text(f"ssh.G {user} {alias}", what=f"ssh -G {alias} as {user}")
    resolved = parse_key_values(text, sep=" ")
    entry = facts.text(f"passwd {user}", what=f"the passwd entry of {user}").strip().split(":")
    hostname_section = facts.sections.get("hostname")
    context = ssh_tokens.SshContext(
        local_user=user, uid=int(entry[2]), home=home, hostname=str(resolved.get("hostname", alias)),
        remote_user=str(resolved.get("user", user)), port=resolved.get("port", "22"), host_arg=alias,
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


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


_SSH_UNREACHABLE = ("Connection refused", "Could not resolve host", "timed out", "No route to host",
                    "Network is unreachable", "Connection closed by", "Connection reset", "kex_exchange_identification")


def ssh_failure(text: str, rc: int, alias: str) -> tuple[Status, str] | None:
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
                     last_line(text) or f"ssh exit {rc}")
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
    if section.rc in (5, NOT_REGULAR, NOT_RUN):  # could not run as the user; the user's ssh config blocks
        raise FactUnavailable(last_line(text))
    if section.rc in (124, 137):  # timeout -s KILL (host_script: $T)
        return Outcome.error(f"{alias} cannot be reached from the host: ssh did not finish within "
                             f"{facts.network_timeout_s} s (timed out: the probe's bound for a network check, "
                             "from --command-timeout)", expected={"authenticated": True})
    failure = ssh_failure(text, section.rc, alias)
    expected = {"authenticated": True, "prompt": False}
    if failure is None:
        return Outcome(Status.PASS, expected, {"authenticated": True, "prompt": False},
                       evidence=(("server_answer", last_line(text)[:200]), ("exit", section.rc)))
    status, reason = failure
    if status is Status.ERROR:
        return Outcome.error(reason, expected=expected)
    return Outcome(Status.DRIFT, expected, {"authenticated": False}, reason, (("exit", section.rc),))
