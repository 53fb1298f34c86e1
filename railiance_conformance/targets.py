"""Where the suite looks: host targets from testinfra-style URLs or an Ansible inventory.

Targets are environment facts, kept apart from policy: a target carries its address and
the inventory's values for the desired-state keys (host_vars/group_vars win over the
policy defaults, as the roles read them).
Example: ``hosts_from_urls(["ssh://tegwick@127.0.0.2:2222"], defaults)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from railiance_conformance.policy import PolicyError, schema, validate_host_desired

# testinfra backends that run commands on a host (testinfra.backend.BACKENDS)
HOST_BACKENDS = frozenset({"ssh", "safe-ssh", "paramiko", "local", "docker", "podman",
                           "kubectl", "openshift", "lxc", "chroot", "salt", "ansible", "winrm"})


@dataclass(frozen=True, slots=True)
class HostTarget:
    """One host to probe. ``name`` is what reports call it (the inventory name or host:port)."""

    name: str
    url: str
    desired: Mapping[str, Any]
    desired_sources: Mapping[str, str] = field(default_factory=dict)


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
                         policy_source: str) -> list[HostTarget]:
    """Every host of the Ansible inventory (or of ``limit``), with its desired-state vars."""
    from railiance_conformance.inventory import read_inventory  # ansible-core: import only when used

    targets = []
    for host in read_inventory(path, limit=limit, keys=desired_keys()):
        desired, sources = _merge(defaults, host.vars, host.var_sources, policy_source)
        targets.append(HostTarget(host.name, host.url, desired, sources))
    validate_targets(targets)
    return targets


def validate_targets(targets: list[HostTarget]) -> None:
    """Each host's merged desired state must satisfy the policy schema (names the source)."""
    for target in targets:
        try:
            validate_host_desired(target.desired, source=f"host {target.name}")
        except PolicyError as exc:
            key = exc.field.split(".")[0].split("[")[0]
            source = target.desired_sources.get(key, exc.source)
            raise PolicyError(source, f"{exc.field} (host {target.name})", exc.problem) from None
