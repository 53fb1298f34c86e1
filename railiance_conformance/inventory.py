"""Read the operators' Ansible inventory with ansible-core's own parser, templar and vault.

INI or YAML inventories, group_vars/, host_vars/ and their precedence are what ``ansible-playbook -i``
sees; values are rendered by ansible-core's templar and decrypted by its vault (``ansible_vault.py``),
with ansible.cfg's settings (``ansible_config.py``); connection variables are mapped by testinfra's
Ansible support. Each value keeps its origin (file:line).
Example: ``read_inventory("inventory/hosts.ini", limit="coulomb", keys={"swap_size_gb"})``.
Errors: ``PolicyError`` naming the file, the variable and the remedy (pytest's usage error, exit 4).
"""
from __future__ import annotations

import configparser
import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from railiance_conformance.ansible_config import (
    ansible_config,
    ansible_config_file,
    ansible_constants,
    ssh_connection_options,
)
from railiance_conformance.ansible_vault import (
    VAULT_REMEDY,
    VaultOptions,
    encrypted_vars_files,
    is_vaulted,
    vault_context,
    vault_error,
    vault_secrets,
)
from railiance_conformance.policy import PolicyError
from railiance_conformance.targets import Connection, HostTarget, desired_keys, merge_desired, validate_targets

# The connection variables the suite honours, as Ansible's ssh connection reads them;
# the legacy ansible_ssh_* spellings are aliases (Ansible's ssh plugin accepts both).
CONNECTION_VARS = ("ansible_connection", "ansible_host", "ansible_port", "ansible_user",
                   "ansible_ssh_private_key_file", "ansible_private_key_file", "ansible_ssh_args",
                   "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_become", "ansible_become_user")
ALIASES = {"ansible_ssh_host": "ansible_host", "ansible_ssh_port": "ansible_port", "ansible_ssh_user": "ansible_user"}
# testinfra's backend names for Ansible's connection plugin names it does not alias itself
CONNECTION_NAMES = {"paramiko": "paramiko_ssh", "ansible.builtin.ssh": "ssh", "ansible.builtin.paramiko_ssh":
                    "paramiko_ssh", "ansible.builtin.local": "local"}
# Connection fields, named as in Connection, that a vaulted variable fills
_FIELD_OF = {"ansible_host": "address", "ansible_user": "user", "ansible_port": "port",
             "ansible_ssh_private_key_file": "identity_file", "ansible_private_key_file": "identity_file",
             "ansible_ssh_args": "ssh_args", "ansible_ssh_common_args": "ssh_args", "ansible_ssh_extra_args": "ssh_args",
             "ansible_become_user": "become_user"}



@dataclass(frozen=True, slots=True)
class InventoryHost:
    name: str
    url: str
    vars: Mapping[str, Any]
    var_sources: Mapping[str, str]
    connection: Connection | None = None
    secret_keys: frozenset[str] = frozenset()


def _plain(value: Any) -> Any:
    """Strip ansible-core's data tags: tagged ints/strs become plain Python values."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _origin(value: Any, fallback: str) -> str:
    try:
        from ansible._internal._datatag._tags import Origin  # ansible-core >= 2.19
    except ImportError:  # pragma: no cover - older ansible-core: name the inventory only
        return fallback
    origin = Origin.get_tag(value)
    return str(origin) if origin else fallback


def _cause(ansible_output: str, exc: Exception) -> str:
    causes = re.findall(r"Failed to parse inventory: (.+)", ansible_output)
    return causes[-1] if causes else str(exc)


# --- reading -------------------------------------------------------------------------------

class _HostResolver:
    """Renders and decrypts one host's variables the suite uses (ansible-core's templar)."""

    def __init__(self, loader: Any, host: str, hostvars: Mapping[str, Any], source: str, has_secrets: bool,
                 password_sources: str):
        from ansible.template import Templar

        self.host, self.hostvars, self.source = host, hostvars, source
        self.has_secrets, self.password_sources = has_secrets, password_sources
        self.templar = Templar(loader=loader, variables=hostvars)
        self.secret: set[str] = set()

    def origin(self, key: str) -> str:
        return _origin(self.hostvars[key], self.source)

    def value(self, key: str) -> Any:
        """The plain value of ``key``; a vault-derived one is noted in ``self.secret``."""
        raw = self.hostvars[key]
        try:
            rendered = self.templar.template(raw)
            vaulted = is_vaulted(raw) or is_vaulted(rendered)
            value = _plain(rendered)
        except Exception as exc:  # noqa: BLE001 - ansible's template/vault errors -> a usage error
            raise self._error(key, exc) from None
        if vaulted:
            self.secret.add(key)
            value = _scalar(value)
        return value

    def _error(self, key: str, exc: Exception) -> PolicyError:
        where = f"{key} (host {self.host})"
        vault = vault_error(exc)
        if vault is None:
            return PolicyError(self.origin(key), where, f"cannot render its value: {getattr(exc, 'message', exc)}")
        cipher_origin = _origin(getattr(vault, "obj", None), "")
        vaulted_var = next((k for k, v in self.hostvars.items()
                            if cipher_origin and _origin(v, "") == cipher_origin), key)
        what = "is vault-encrypted" if vaulted_var == key else \
            f"uses the vault-encrypted variable {vaulted_var}" + (f" ({cipher_origin})" if cipher_origin else "")
        if not self.has_secrets:
            return PolicyError(self.origin(key), where, f"{what} and no vault password was given: {VAULT_REMEDY}")
        return PolicyError(self.origin(key), where, f"{what} and the vault password given ({self.password_sources}) "
                                                    f"does not decrypt it: check --vault-password-file / --vault-id")


def _scalar(value: Any) -> Any:
    """A decrypted vault value is text; read it as the YAML scalar it stands for ('512' -> 512),
    as an Ansible module's argument spec would convert it."""
    if not isinstance(value, str):
        return value
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (int, float)) and not isinstance(parsed, bool) else value


def _boolean(value: Any) -> bool:
    from ansible.module_utils.parsing.convert_bool import boolean

    return boolean(value, strict=False)


def _connection(name: str, resolver: _HostResolver, config: configparser.ConfigParser, default_key: str | None,
                default_become: bool, default_become_user: str | None) -> Connection:
    """testinfra's Ansible mapping applied to this host's resolved connection variables."""
    from testinfra.utils.ansible_runner import get_ansible_host

    hostvars = resolver.hostvars
    conn_vars: dict[str, Any] = {}
    for alias, canonical in ALIASES.items():
        if alias in hostvars and canonical not in hostvars:
            conn_vars[canonical] = resolver.value(alias)
            if alias in resolver.secret:
                resolver.secret.add(canonical)
    for key in CONNECTION_VARS:
        if key in hostvars:
            conn_vars[key] = resolver.value(key)
    connection = str(conn_vars.get("ansible_connection") or "ssh")
    conn_vars["ansible_connection"] = CONNECTION_NAMES.get(connection, connection)
    # booleans as ansible-core reads them (testinfra would take the text "no" as true)
    become = _boolean(conn_vars.pop("ansible_become")) if "ansible_become" in conn_vars else default_become
    inventory = {"_meta": {"hostvars": {name: conn_vars}}, "all": {"hosts": [name]}}
    host = get_ansible_host(config, inventory, name, ssh_identity_file=default_key)
    if host is None:
        raise PolicyError(resolver.origin("ansible_connection"), f"ansible_connection (host {name})",
                          f"{connection!r} is not a connection the suite can use (testinfra's Ansible support: "
                          "ssh, paramiko_ssh, local, docker, lxc, lxd); leave the host out with --limit")
    backend = host.backend
    spec = getattr(backend, "host", None)
    secret_fields = frozenset(_FIELD_OF[k] for k in resolver.secret if k in _FIELD_OF)
    try:
        if backend.NAME == "ssh":  # user, port and ssh args as Ansible's ssh connection itself resolves them
            user, port, ssh_args = ssh_connection_options(conn_vars)
        else:
            user, ssh_args = getattr(spec, "user", None), getattr(backend, "ssh_extra_args", None) or ""
            spec_port = getattr(spec, "port", None)
            port = int(spec_port) if spec_port else None
    except ValueError as exc:  # a port that is not a number, from the host's vars, ANSIBLE_REMOTE_PORT or ansible.cfg
        port_key = next((k for k in ("ansible_port", "ansible_ssh_port") if k in resolver.hostvars), None)
        source = resolver.origin(port_key) if port_key else \
            ("ANSIBLE_REMOTE_PORT" if "ANSIBLE_REMOTE_PORT" in os.environ else ansible_config_file() or "ansible.cfg")
        reason = "its vaulted value is not shown" if port_key in resolver.secret else str(exc)
        raise PolicyError(source, f"{port_key or 'remote_port'} (host {name})", f"not a port number: {reason}") from None
    return Connection(
        backend=backend.NAME, address=getattr(spec, "name", None), user=user, port=port,
        identity_file=getattr(backend, "ssh_identity_file", None) or None, ssh_args=ssh_args,
        become=become, become_user=(conn_vars.get("ansible_become_user") or default_become_user) if become else None,
        secret_fields=secret_fields)



def connection_url(connection: Connection) -> str:
    """``ssh://tegwick@10.0.0.5:2222`` (never a password); ``local://`` for a local connection."""
    if connection.backend == "local":
        return "local://"
    address = connection.address or ""
    if ":" in address:
        address = f"[{address}]"
    user = f"{connection.user}@" if connection.user else ""
    port = f":{connection.port}" if connection.port else ""
    return f"{connection.backend}://{user}{address}{port}"


def read_inventory(path: str | Sequence[str], *, limit: str | None, keys: Iterable[str],
                   vault: VaultOptions | None = None) -> list[InventoryHost]:
    """Every host of the inventory ``path`` (a file, a directory, or several) matching ``limit``
    (an Ansible host pattern: ``coulomb:!legacy``, ``coulombcore[01:02]``), with its values of
    ``keys`` and its connection. Raises ``PolicyError`` (file, variable, remedy) on bad input."""
    sources = [path] if isinstance(path, str) else list(path)
    named = ",".join(sources)
    for source in sources:
        if not Path(source).exists():
            raise PolicyError(source, "", "inventory not found")
    C = ansible_constants()
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    vault = vault or VaultOptions()
    loader = DataLoader()
    secrets = vault_secrets(loader, vault)
    password_sources = ", ".join(str(getattr(s, "filename", None) or label) for label, s in secrets)
    output = io.StringIO()
    with vault_context(secrets):
        try:
            with contextlib.redirect_stderr(output), contextlib.redirect_stdout(output):
                inventory = InventoryManager(loader=loader, sources=sources)
                variables = VariableManager(loader=loader, inventory=inventory)
                hosts = inventory.get_hosts(limit or "all")
                all_vars = {h.name: variables.get_vars(host=h, include_hostvars=False) for h in hosts}
        except Exception as exc:  # ansible raises AnsibleError subclasses with the cause in warnings
            if vault_error(exc) is not None:
                files = ", ".join(encrypted_vars_files(sources)) or named
                if not secrets:
                    raise PolicyError(files, "", f"vault-encrypted vars file and no vault password was given: "
                                                 f"{VAULT_REMEDY}") from None
                raise PolicyError(files, "", f"vault-encrypted vars file that the vault password given "
                                             f"({password_sources}) does not decrypt") from None
            raise PolicyError(named, "", f"not a valid Ansible inventory: {_cause(output.getvalue(), exc)}") from None
        if not hosts:
            raise PolicyError(named, f"limit {limit!r}" if limit else "hosts", "no hosts matched")
        config = ansible_config()
        default_key = C.config.get_config_value("DEFAULT_PRIVATE_KEY_FILE")
        default_become = _boolean(C.config.get_config_value("DEFAULT_BECOME"))
        default_become_user = C.config.get_config_value("DEFAULT_BECOME_USER")
        wanted = set(keys)
        result = []
        for host in hosts:
            hostvars = all_vars[host.name]
            resolver = _HostResolver(loader, host.name, hostvars, named, bool(secrets), password_sources)
            picked = {k: resolver.value(k) for k in sorted(wanted) if k in hostvars}
            desired_secrets = frozenset(resolver.secret & wanted)
            connection = _connection(host.name, resolver, config, default_key, default_become, default_become_user)
            result.append(InventoryHost(
                name=str(host.name),  # a plain str: ansible-core tags names from dynamic inventories
                url=connection_url(connection),
                vars=picked,
                var_sources={k: resolver.origin(k) for k in picked},
                connection=connection,
                secret_keys=desired_secrets,
            ))
    return result


def hosts_from_inventory(path: str | Sequence[str], defaults: Mapping[str, Any], *, limit: str | None,
                         policy_source: str, vault: Any = None, validate: bool = True) -> list[HostTarget]:
    """Every host of the Ansible inventory (or of ``limit``), with its desired-state vars and
    connection. ``vault``: an ``inventory.VaultOptions`` (default: none given on the command line;
    ANSIBLE_VAULT_PASSWORD_FILE and ansible.cfg still apply, as for ansible-playbook)."""
    targets = []
    for host in read_inventory(path, limit=limit, keys=desired_keys(), vault=vault):
        desired, sources = merge_desired(defaults, host.vars, host.var_sources, policy_source)
        targets.append(HostTarget(host.name, host.url, desired, sources, host.connection, host.secret_keys))
    if validate:  # validate=False: the caller calls validate_targets (early_inventory, in the parent)
        validate_targets(targets)
    return targets
