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
        """Which backend, address, user, port, identity file and jump host were used; never a
        password (a vaulted field is ``***``). ``identity_override``: the suite's --ssh-identity-file."""
        if self.connection is None:
            parts = urlsplit(self.url)
            evidence = {"backend": parts.scheme, "address": parts.hostname, "user": parts.username,
                        "port": parts.port, "identity_file": identity_override, "jump_host": None}
            return {k: v for k, v in evidence.items() if v is not None or k in ("identity_file", "jump_host")}
        c = self.connection
        evidence = {"backend": c.backend, "address": c.address, "user": c.user, "port": c.port,
                    "identity_file": identity_override or c.identity_file, "jump_host": c.jump_host}
        if c.proxy_command:
            evidence["proxy_command"] = c.proxy_command
        if c.ssh_args:
            evidence["ssh_args"] = c.ssh_args
        if c.become:
            evidence["become_user"] = c.become_user or "root"
        for name in c.secret_fields & set(evidence):
            evidence[name] = "***"
        if "ssh_args" in c.secret_fields:
            evidence.update({k: "***" for k in ("ssh_args", "jump_host", "proxy_command") if evidence.get(k)})
        return evidence


def desired_keys() -> frozenset[str]:
    return frozenset(schema("host-policy")["$defs"]["desired"]["properties"])


def _merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any], override_sources: Mapping[str, str],
           policy_source: str) -> tuple[Mapping[str, Any], Mapping[str, str]]:
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
            desired, sources = _merge(defaults, {}, {}, policy_source)
            targets.append(HostTarget(name, url if "://" in url else f"ssh://{url}", desired, sources))
    validate_targets(targets)
    return targets


def hosts_from_inventory(path: str, defaults: Mapping[str, Any], *, limit: str | None,
                         policy_source: str, vault: Any = None, validate: bool = True) -> list[HostTarget]:
    """Every host of the Ansible inventory (or of ``limit``), with its desired-state vars and
    connection. ``vault``: an ``inventory.VaultOptions`` (default: none given on the command line;
    ANSIBLE_VAULT_PASSWORD_FILE and ansible.cfg still apply, as for ansible-playbook)."""
    from railiance_conformance.inventory import read_inventory  # ansible-core: import only when used

    targets = []
    for host in read_inventory(path, limit=limit, keys=desired_keys(), vault=vault):
        desired, sources = _merge(defaults, host.vars, host.var_sources, policy_source)
        targets.append(HostTarget(host.name, host.url, desired, sources, host.connection, host.secret_keys))
    if validate:  # validate=False: the caller calls validate_targets (early_inventory, in the parent)
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
            validate_host_desired(target.desired, source=f"host {target.name}")
        except PolicyError as exc:
            key = exc.field.split(".")[0].split("[")[0]
            source = target.desired_sources.get(key, exc.source)
            problem = exc.problem
            if key in target.secret_keys:  # a vaulted value is never printed, not even when invalid
                problem = mask_text(problem, [target.desired[key]])
            raise PolicyError(source, f"{exc.field} (host {target.name})", problem) from None
        if key is not None:
            valid.add(key)
