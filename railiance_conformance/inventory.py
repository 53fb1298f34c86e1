"""Read the operators' Ansible inventory with ansible-core's own parser.

INI or YAML inventories, group_vars/ and host_vars/ and their precedence are exactly what
``ansible-playbook -i`` sees. Each value keeps its origin (file:line) for error messages.
Example: ``read_inventory("inventory/hosts.ini", limit="coulomb", keys={"swap_size_gb"})``.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from railiance_conformance.policy import PolicyError

# A source no plugin can parse is an error, not an empty inventory.
os.environ.setdefault("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "True")
os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")


@dataclass(frozen=True, slots=True)
class InventoryHost:
    name: str
    url: str
    vars: Mapping[str, Any]
    var_sources: Mapping[str, str]


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


def _url(name: str, hostvars: Mapping[str, Any]) -> str:
    connection = str(hostvars.get("ansible_connection") or "ssh")
    if connection == "local":
        return "local://"
    address = hostvars.get("ansible_host") or name
    user = hostvars.get("ansible_user")
    port = hostvars.get("ansible_port")
    backend = "paramiko" if connection == "paramiko" else "ssh"
    return f"{backend}://{f'{user}@' if user else ''}{address}{f':{port}' if port else ''}"


def read_inventory(path: str, *, limit: str | None, keys: Iterable[str]) -> list[InventoryHost]:
    if not Path(path).exists():
        raise PolicyError(path, "", "inventory not found")
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    output = io.StringIO()
    try:
        with contextlib.redirect_stderr(output), contextlib.redirect_stdout(output):
            inventory = InventoryManager(loader=loader, sources=[path])
            variables = VariableManager(loader=loader, inventory=inventory)
            hosts = inventory.get_hosts(limit or "all")
            all_vars = {h.name: variables.get_vars(host=h, include_hostvars=False) for h in hosts}
    except Exception as exc:  # ansible raises AnsibleError subclasses with the cause in warnings
        raise PolicyError(path, "", f"not a valid Ansible inventory: {_cause(output.getvalue(), exc)}") from None
    if not hosts:
        raise PolicyError(path, f"limit {limit!r}" if limit else "hosts", "no hosts matched")
    wanted = set(keys)
    result = []
    for host in hosts:
        hostvars = all_vars[host.name]
        picked = {k: hostvars[k] for k in wanted if k in hostvars}
        result.append(InventoryHost(
            name=host.name,
            url=_url(host.name, hostvars),
            vars={k: _plain(v) for k, v in picked.items()},
            var_sources={k: _origin(v, path) for k, v in picked.items()},
        ))
    return result
