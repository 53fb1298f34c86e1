"""The inventory's hosts kept between runs while everything ansible-core reads for them is unchanged, so a
run with the same static inventory reads them without importing ansible-core (``derived_cache``).

``input_key(option)``: the key of what the read depends on, or None when the inputs rule reuse out;
``reusable(targets)``: asked where ansible-core read them (its configuration is loaded there). Never kept:
a vault (password options, ``ANSIBLE_VAULT*``, ansible.cfg's, an encrypted file or value), an inventory
script or plugin, a templated value (``{{``), a value that redaction masks, a read that printed anything.
What the key covers and why: docs/architecture.md.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import stat
from hashlib import sha256
from pathlib import Path
from typing import Any

from railiance_conformance import derived_cache
from railiance_conformance.paths import DEFAULT_POLICY_DIR

# the command-line options the hosts are computed from (early_inventory.INPUTS, named here: no cycle)
OPTIONS = ("ansible_inventory", "hosts", "connection", "limit", "vault_password_file", "vault_id")
# set by ansible_config at import (setdefault): the same in every run of the suite
OWN_ENV = frozenset({"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "ANSIBLE_INVENTORY_UNPARSED_WARNING",
                     "ANSIBLE_LOCALHOST_WARNING"})
# ansible-core's search path for ansible.cfg after ANSIBLE_CONFIG (config/manager.py find_ini_config_file)
CONFIG_FILES = ("ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg")
# a file holding one of these is never reused: Jinja (lookups, now(), env: a value that changes with no file
# changing) and the vault (encrypted files and values)
MARKERS = (b"{{", b"{%", b"{#", b"$ANSIBLE_VAULT", b"!vault")
# an inventory plugin's configuration file (the auto plugin reads YAML files with a top-level plugin: key)
_PLUGIN_FILE = re.compile(rb"^plugin\s*:", re.M)
# the configuration that decides which plugins and files take part: reused only at ansible-core's defaults
DEFAULT_SETTINGS = ("VARIABLE_PLUGINS_ENABLED", "INVENTORY_ENABLED", "DEFAULT_VARS_PLUGIN_PATH",
                    "DEFAULT_INVENTORY_PLUGIN_PATH", "RUN_VARS_PLUGINS", "DEFAULT_VAULT_PASSWORD_FILE",
                    "DEFAULT_VAULT_IDENTITY_LIST", "DEFAULT_VAULT_IDENTITY", "INVENTORY_IGNORE_EXTS",
                    "INVENTORY_IGNORE_PATTERNS")
NAME = "inventory"
# entries kept per inventory and checkout: the key covers the whole environment, and runs that alternate between
# a few (an operator's shell, a CI job, a timer's unit) each keep theirs instead of replacing each other's
ENTRIES = 4


class _NotReusable(Exception):
    pass


def input_key(option: Any) -> str | None:
    """The key of this read: the options, the working directory (and its mode: ansible-core ignores an
    ansible.cfg in a world-writable one), the environment, every inventory source (paths, modes, bytes),
    the group_vars/ and host_vars/ trees beside each source and in the working directory (the loader's
    basedir), every ansible.cfg ansible-core may read, the default plugin directories' listings,
    the bundled catalog (the host policy schema), ansible-core's, testinfra's and jsonschema's installed
versions and this package's code. None: not reusable (no
    ``--ansible-inventory``, a vault option or variable, a source that is missing, executable or a
    plugin's configuration, a file with a Jinja or vault marker) or the cache is off."""
    if derived_cache.cache_dir() is None or not getattr(option, "ansible_inventory", None):
        return None
    if getattr(option, "vault_password_file", None) or getattr(option, "vault_id", None) \
            or any(k.startswith("ANSIBLE_VAULT") for k in os.environ):
        return None
    digest = sha256(NAME.encode())
    try:
        _add_inputs(digest, option)
    except (_NotReusable, OSError):
        return None
    digest.update(derived_cache.code_key().encode())
    return digest.hexdigest()[:32]


def _add_inputs(digest: Any, option: Any) -> None:
    def add(*parts: object) -> None:
        digest.update(repr(parts).encode())
        digest.update(b"\0")

    add([getattr(option, name, None) for name in OPTIONS])
    cwd = os.getcwd()
    add(cwd, os.stat(cwd).st_mode, sorted((k, v) for k, v in os.environ.items() if k not in OWN_ENV))
    sources = option.ansible_inventory
    basedirs = [Path(cwd)]
    for source in [sources] if isinstance(sources, str) else sources:
        path = Path(source)
        if path.is_dir():
            basedirs.append(path)
            files = [p for p in _tree(path) if p.relative_to(path).parts[0] not in ("group_vars", "host_vars")]
        elif path.is_file():
            basedirs.append(path.parent)
            files = [path]
        else:
            raise _NotReusable(source)  # not found: read (and refused) every time
        add("source", source, str(path.resolve()))
        for file in files:
            data = _file(add, file)
            if os.stat(file).st_mode & 0o111 or _PLUGIN_FILE.search(data):
                raise _NotReusable(file)  # an inventory script or an inventory plugin's configuration
    for base in basedirs:
        for sub in ("group_vars", "host_vars"):
            tree = base / sub
            add("vars", str(tree), tree.is_dir())
            for file in _tree(tree):
                _file(add, file)
    config = os.environ.get("ANSIBLE_CONFIG")
    for candidate in ([config] if config else []) + list(CONFIG_FILES):
        path = Path(candidate).expanduser()
        add("cfg", candidate, path.is_file() and path.read_bytes())
    home = Path(os.environ.get("ANSIBLE_HOME") or "~/.ansible").expanduser()
    for directory in (home / "plugins" / "vars", home / "plugins" / "inventory",
                      Path("/usr/share/ansible/plugins/vars"), Path("/usr/share/ansible/plugins/inventory")):
        add("plugins", str(directory), [str(p) for p in _tree(directory)])
    # the hosts are kept validated (early_inventory): the host policy schema is the bundled catalog's vars
    # (policy.host_policy_schema) and the validator jsonschema's
    add("policy", (DEFAULT_POLICY_DIR / "controls.yaml").read_bytes())
    for module, code_file in (("ansible", "release.py"), ("testinfra", "utils/ansible_runner.py"),
                         ("jsonschema", "validators.py"), ("referencing", "_core.py")):
        spec = importlib.util.find_spec(module)  # found, not imported
        origin = Path(spec.origin).parent / code_file if spec is not None and spec.origin else None
        info = origin.stat() if origin is not None and origin.exists() else None
        add("code", module, str(origin), info and (info.st_size, info.st_mtime_ns))


def _tree(root: Path) -> list[Path]:
    """Every regular file under ``root`` (itself if a file), sorted; [] when it does not exist."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file())


def _file(add: Any, path: Path) -> bytes:
    data = path.read_bytes()
    if any(marker in data for marker in MARKERS):
        raise _NotReusable(path)
    add("file", str(path), stat.S_IMODE(path.stat().st_mode), data)
    return data


def reusable(targets: list) -> bool:
    """Whether hosts just read by ansible-core (``inventory.hosts_from_inventory``) may be kept: none holds a
    vault value or a string that redaction masks, and ansible-core's configuration that chooses plugins,
    their directories and the vault is at its defaults, with no plugin in those directories."""
    try:
        return _reusable(targets)
    except Exception:  # noqa: BLE001 - a configuration this cannot judge: not kept
        return False


def _reusable(targets: list) -> bool:
    from railiance_conformance.ansible_config import ansible_constants
    from railiance_conformance.redact import redact

    for target in targets:
        connection = target.connection
        if target.secret_keys or (connection is not None and connection.secret_fields):
            return False
        plain = [target.name, target.url, dict(target.desired), dict(target.desired_sources),
                 dataclasses.asdict(connection) if connection is not None else None]
        if redact(plain) != plain:
            return False
    C = ansible_constants()
    for name in DEFAULT_SETTINGS:
        if C.config.get_config_value_and_origin(name)[1] != "default":
            return False
    for name in ("DEFAULT_VARS_PLUGIN_PATH", "DEFAULT_INVENTORY_PLUGIN_PATH"):
        for directory in C.config.get_config_value(name) or ():
            if _tree(Path(directory).expanduser()):
                return False
    return True


def load(option: Any, key: str | None) -> list | None:
    """The hosts kept under ``key`` for this inventory (validated against the host policy schema when
    kept: the key covers the schema and the validator), or None."""
    if key is None:
        return None
    found = derived_cache.load(_family(option), key)
    return None if found is derived_cache.MISSING else found


def store(option: Any, key: str | None, targets: list) -> None:
    """Keep ``targets`` under ``key`` when the inputs are still those ``key`` was made from (a file that
    changed during the read is read again next time)."""
    if key is not None and input_key(option) == key:
        derived_cache.store(_family(option), key, targets, keep=ENTRIES)


def _family(option: Any) -> str:
    sources = option.ansible_inventory
    return derived_cache.family(NAME, [Path(s) for s in ([sources] if isinstance(sources, str) else sources)])
