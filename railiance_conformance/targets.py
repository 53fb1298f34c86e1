"""Where the suite looks: host targets from testinfra-style URLs or an Ansible inventory.

Targets are environment facts, kept apart from policy: a target carries its address and
the inventory's values for the desired-state keys (host_vars/group_vars win over the
policy defaults, as the roles read them).
Example: ``hosts_from_urls(["ssh://tegwick@127.0.0.2:2222"], defaults)``.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from railiance_conformance.policy import PolicyError, schema, validate_host_desired
from railiance_conformance.secret_mask import mask_text

# testinfra backends that run commands on a host (testinfra.backend.BACKENDS)
HOST_BACKENDS = frozenset({"ssh", "safe-ssh", "paramiko", "local", "docker", "podman",
                           "kubectl", "openshift", "lxc", "chroot", "salt", "ansible", "winrm"})


@dataclass(frozen=True, slots=True)
class Connection:
    """How to log in to one inventory host, as Ansible's ssh connection would.

    Built by testinfra's own Ansible mapping (``testinfra.utils.ansible_runner.get_ansible_host``)
    from the host's connection variables and ansible.cfg: ``identity_file`` from
    ``ansible_ssh_private_key_file``/``ansible_private_key_file`` (else ansible.cfg
    ``private_key_file``), ``become``/``become_user`` from ``ansible_become``/``ansible_become_user``.
    For ssh hosts, ``user``, ``port`` and ``ssh_args`` (``ssh_args`` unless only Ansible's default, then
    the common and the extra args: one string, ssh's own syntax) are resolved by ansible-core's ssh
    plugin options, so a host's variable wins over ``ANSIBLE_*`` and ansible.cfg as in Ansible
    (``inventory.ssh_connection_options``). A password is never carried. ``secret_fields`` name the
    fields whose value came from the vault.
    Example: ``Connection("ssh", "10.0.0.5", "tegwick", 22, "~/.ssh/id_ops", "-o ProxyJump=bastion")``.
    """

    backend: str
    address: str | None = None
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    ssh_args: str = ""
    become: bool = False
    become_user: str | None = None
    secret_fields: frozenset[str] = frozenset()

    def testinfra_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``testinfra.get_host`` this connection needs (no password)."""
        kwargs: dict[str, Any] = {}
        if self.identity_file:
            kwargs["ssh_identity_file"] = self.identity_file
        if self.ssh_args:
            kwargs["ssh_extra_args"] = self.ssh_args
        if self.become:
            kwargs["sudo"] = True
            if self.become_user:
                kwargs["sudo_user"] = self.become_user
        return kwargs

    @property
    def jump_host(self) -> str | None:
        """The ``ProxyJump``/``-J`` of ``ssh_args`` (ssh takes the first), or None."""
        return _ssh_option(self.ssh_args, "proxyjump", "-J")

    @property
    def proxy_command(self) -> str | None:
        return _ssh_option(self.ssh_args, "proxycommand", None)


def _ssh_option(args: str, name: str, flag: str | None) -> str | None:
    """The first value of ssh option ``name`` in an ssh argument string (``-o Name=v``, ``-oName v``)."""
    try:
        words = shlex.split(args)
    except ValueError:
        return None
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if flag and word == flag:
            return following or None
        if flag and word.startswith(flag) and len(word) > len(flag):
            return word[len(flag):]
        option = following if word == "-o" else word[2:] if word.startswith("-o") else None
        if option:
            key, _, value = option.replace("=", " ", 1).partition(" ")
            if key.lower() == name:
                return value.strip() or None
    return None


@dataclass(frozen=True, slots=True)
class HostTarget:
    """One host to probe. ``name`` is what reports call it (the inventory name or host:port).

    ``connection`` is set for inventory hosts (their connection variables); ``secret_keys``
    name the desired values that came from an Ansible vault: reports show them as ``***``.
    """

    name: str
    url: str
    desired: Mapping[str, Any]
    desired_sources: Mapping[str, str] = field(default_factory=dict)
    connection: Connection | None = None
    secret_keys: frozenset[str] = frozenset()

    def __reduce__(self):
        """Pickled with its read-only mappings as dicts (``early_inventory`` sends targets from a child)."""
        return _unpickle_host_target, (self.name, self.url, dict(self.desired), dict(self.desired_sources),
                                       self.connection, self.secret_keys)

    def connection_kwargs(self) -> dict[str, Any]:
        """Extra ``testinfra.get_host`` arguments from the inventory (identity, ssh args, become)."""
        return self.connection.testinfra_kwargs() if self.connection else {}

    def connection_evidence(self, identity_override: str | None = None) -> dict[str, Any]:
        """How the host was reached, as facts: backend, address, user, port, identity file path, the
        jump hosts by name (``jump_host``: the first, ``jump_hosts``: all, from ProxyJump/-J or the
        ``ssh`` inside a ProxyCommand) and, for a ProxyCommand, only its program (``proxy: "ssh"``).
        Never raw ssh arguments or a ProxyCommand line (they can carry ``sshpass -p``, ``SetEnv``
        values or a vault-decrypted password); a vaulted field is ``***``. ``identity_override``:
        the suite's --ssh-identity-file."""
        if self.connection is None:
            parts = urlsplit(self.url)
            evidence: dict[str, Any] = {"backend": parts.scheme, "address": parts.hostname, "user": parts.username,
                        "port": parts.port, "identity_file": identity_override, "jump_host": None}
            return {k: v for k, v in evidence.items() if v is not None or k in ("identity_file", "jump_host")}
        c = self.connection
        jumps, proxy = jump_hosts(c.ssh_args)
        evidence = {"backend": c.backend, "address": c.address, "user": c.user, "port": c.port,
                    "identity_file": identity_override or c.identity_file, "jump_host": jumps[0] if jumps else None}
        if jumps:
            evidence["jump_hosts"] = jumps
        if proxy:
            evidence["proxy"] = proxy
        if c.become:
            evidence["become_user"] = c.become_user or "root"
        for name in c.secret_fields & set(evidence):
            evidence[name] = "***"
        if "ssh_args" in c.secret_fields:
            evidence.update({k: "***" for k in ("jump_host", "jump_hosts", "proxy") if evidence.get(k)})
        return evidence


# ssh(1) options that take an argument (OpenSSH 9: "46AaCfGgKkMNnqsTtVvXxYy" take none)
_SSH_ARG_OPTIONS = frozenset("BbcDEeFIiJLlmOoPpQRSWw")


def _jump_name(text: str) -> str:
    """``[user@]host[:port]`` of one ProxyJump entry (an ``ssh://`` URI loses any password)."""
    if "://" in text:
        parts = urlsplit(text)
        user = f"{parts.username}@" if parts.username else ""
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{user}{parts.hostname or ''}{port}"
    user, at, host = text.rpartition("@")
    return f"{user.split(':', 1)[0]}{at}{host}" if at else host


def _ssh_destination(words: list[str]) -> tuple[list[str], str | None]:
    """The jump hosts (-J) and the destination of one ``ssh ARGS`` word list (after the word ``ssh``)."""
    jumps: list[str] = []
    user = None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if word.startswith("-") and len(word) > 1:
            letter = word[1]
            if letter in _SSH_ARG_OPTIONS:
                value = word[2:] or (words[i + 1] if i + 1 < len(words) else "")
                i += 1 if word[2:] else 2
                if letter == "J":
                    jumps += [_jump_name(j) for j in value.split(",") if j]
                elif letter == "l":
                    user = value
                elif letter == "o" and value.replace("=", " ", 1).partition(" ")[0].lower() == "proxyjump":
                    jumps += [_jump_name(j) for j in value.replace("=", " ", 1).partition(" ")[2].strip().split(",") if j]
                continue
            i += 1
            continue
        break
    destination = _jump_name(words[i]) if i < len(words) else None
    if destination and user and "@" not in destination:
        destination = f"{user}@{destination}"
    return jumps, destination


def jump_hosts(ssh_args: str) -> tuple[list[str], str | None]:
    """(jump hosts by name, the ProxyCommand's program or None) of an ssh argument string:
    ProxyJump/-J entries in order, then the host an ``ssh`` inside the ProxyCommand connects to
    (its own -J hosts first). Nothing else of the command line is kept.
    ``jump_hosts('-o ProxyCommand="sshpass -p X ssh -W %h:%p ops@bastion"')`` -> (["ops@bastion"], "ssh")."""
    jumps: list[str] = []
    direct = _ssh_option(ssh_args, "proxyjump", "-J")
    if direct and direct.lower() != "none":
        jumps += [_jump_name(j) for j in direct.split(",") if j]
    command = _ssh_option(ssh_args, "proxycommand", None)
    if not command or command.lower() == "none":
        return jumps, None
    try:
        words = shlex.split(command)
    except ValueError:
        return jumps, "a command"
    for index, word in enumerate(words):
        name = word.rsplit("/", 1)[-1]
        if name == "ssh":
            inner, destination = _ssh_destination(words[index + 1:])
            return jumps + inner + ([destination] if destination else []), "ssh"
    program = next((w.rsplit("/", 1)[-1] for w in words if "=" not in w.split("/", 1)[0]), "a command")
    return jumps, program


def desired_keys() -> frozenset[str]:
    return frozenset(schema("host-policy")["$defs"]["desired"]["properties"])


def merge_desired(defaults: Mapping[str, Any], overrides: Mapping[str, Any], override_sources: Mapping[str, str],
                  policy_source: str) -> tuple[Mapping[str, Any], Mapping[str, str]]:
    """A host's desired state (``overrides``, the inventory's vars, win over ``defaults``) and the
    source of each key (``override_sources``' for an override, else ``policy_source``), read-only."""
    desired = dict(defaults) | dict(overrides)
    sources = {key: override_sources.get(key, policy_source) for key in desired}
    return MappingProxyType(desired), MappingProxyType(sources)


def parse_host_url(url: str) -> tuple[str, str]:
    """``ssh://tegwick@127.0.0.2:2222`` -> (backend, display name ``127.0.0.2:2222``)."""
    parts = urlsplit(url if "://" in url else f"ssh://{url}")
    if parts.scheme not in HOST_BACKENDS:
        raise PolicyError("--hosts", url, f"unknown backend {parts.scheme!r}; expected one of "
                          f"{', '.join(sorted(HOST_BACKENDS))}")
    if parts.scheme == "local":
        return parts.scheme, "localhost"
    if not parts.hostname:
        raise PolicyError("--hosts", url, "no host name in the URL; expected e.g. ssh://tegwick@host:22")
    try:
        port = parts.port
    except ValueError:
        raise PolicyError("--hosts", url, "the port is not a number between 0 and 65535") from None
    return parts.scheme, f"{parts.hostname}:{port}" if port and port != 22 else parts.hostname


def hosts_from_urls(urls: Iterable[str], defaults: Mapping[str, Any], *, policy_source: str) -> list[HostTarget]:
    targets = []
    seen: set[str] = set()
    for raw in urls:
        for url in filter(None, (u.strip() for u in raw.split(","))):
            _, name = parse_host_url(url)
            if name in seen:
                raise PolicyError("--hosts", url, f"host {name!r} is given twice")
            seen.add(name)
            desired, sources = merge_desired(defaults, {}, {}, policy_source)
            targets.append(HostTarget(name, url if "://" in url else f"ssh://{url}", desired, sources))
    validate_targets(targets)
    return targets


def _unpickle_host_target(name, url, desired, sources, connection, secret_keys) -> HostTarget:
    return HostTarget(name, url, MappingProxyType(desired), MappingProxyType(sources), connection, secret_keys)


def validate_targets(targets: list[HostTarget]) -> None:
    """Each host's merged desired state must satisfy the policy schema (names the source). Hosts whose
    desired state is the same plain JSON as a host's already found valid (hosts of one group share their
    group_vars) are not validated again: the client's cost per host stays small."""
    valid: set[str] = set()
    for target in targets:
        try:
            key = json.dumps(dict(target.desired), sort_keys=True)
        except (TypeError, ValueError):  # a value JSON cannot hold as it is (a vault object): always validated
            key = None
        if key is not None and key in valid:
            continue
        try:
            validate_host_desired(target.desired, source=f"host {target.name}", remember=not target.secret_keys)
        except PolicyError as exc:
            key = exc.field.split(".")[0].split("[")[0]
            source = target.desired_sources.get(key, exc.source)
            problem = exc.problem
            if key in target.secret_keys:  # a vaulted value is never printed, not even when invalid
                problem = mask_text(problem, [target.desired[key]])
            raise PolicyError(source, f"{exc.field} (host {target.name})", problem) from None
        if key is not None:
            valid.add(key)
