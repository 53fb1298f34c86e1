"""Read the operators' Ansible inventory with ansible-core's own parser, vault and ansible.cfg.

INI or YAML inventories, group_vars/ and host_vars/ and their precedence are exactly what
``ansible-playbook -i`` sees; ``{{ templates }}`` in the values the suite uses are rendered by
ansible-core's templar; vaulted values (``!vault`` or whole encrypted vars files) are decrypted
by ansible-core with the passwords given as to ansible-playbook (``--vault-password-file``,
``--vault-id``, ``ANSIBLE_VAULT_PASSWORD_FILE``, ansible.cfg ``vault_password_file``).
ansible.cfg is the one Ansible finds (``ANSIBLE_CONFIG``, ``./ansible.cfg``, ``~/.ansible.cfg``,
``/etc/ansible/ansible.cfg``). Connection variables are mapped by testinfra's own Ansible
support (``testinfra.utils.ansible_runner.get_ansible_host``). Each value keeps its origin
(file:line) for error messages.
Example: ``read_inventory("inventory/hosts.ini", limit="coulomb", keys={"swap_size_gb"})``.

Errors: ``PolicyError`` naming the file, the variable and the remedy (the plugin turns it into
pytest's usage error, exit status 4), e.g. a vaulted variable the suite needs and no password.
"""
from __future__ import annotations

import configparser
import contextlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from railiance_conformance.policy import PolicyError
from railiance_conformance.targets import Connection, HostTarget, desired_keys, merge_desired, validate_targets

# A source no plugin can parse is an error, not an empty inventory.
os.environ.setdefault("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "True")
os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")

VAULT_REMEDY = ("pass --vault-password-file FILE or --vault-id [LABEL@]FILE "
                "(or set ANSIBLE_VAULT_PASSWORD_FILE), as to ansible-playbook")

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
class VaultOptions:
    """Vault passwords as ansible-playbook takes them: ``--vault-password-file FILE`` and
    ``--vault-id [LABEL@]FILE`` (repeatable). ANSIBLE_VAULT_PASSWORD_FILE, ANSIBLE_VAULT_IDENTITY_LIST
    and ansible.cfg's ``vault_password_file``/``vault_identity_list`` are added by ansible-core."""

    password_files: tuple[str, ...] = ()
    vault_ids: tuple[str, ...] = ()


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


# --- ansible.cfg ---------------------------------------------------------------------------

_CONFIG_CANDIDATES = ("ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg")


def ansible_cfg_may_apply() -> bool:
    """Whether ANSIBLE_INVENTORY, ANSIBLE_CONFIG or an ansible.cfg in Ansible's search path exists:
    only then can ansible-core's configuration name an inventory (checked without importing it)."""
    return "ANSIBLE_INVENTORY" in os.environ or "ANSIBLE_CONFIG" in os.environ \
        or any(Path(p).expanduser().is_file() for p in _CONFIG_CANDIDATES)


UTF8_LOCALES = ("C.UTF-8", "C.utf8")


def ensure_utf8_locale() -> None:
    """ansible-core needs a UTF-8 locale: its CLI module, imported for the vault, calls
    ``locale.setlocale(LC_ALL, "")`` and exits (SystemExit: "Ansible requires the locale encoding to
    be UTF-8") otherwise (``ansible/cli/__init__.py`` ``initialize_locale``). With a non-UTF-8 locale
    (``LC_ALL=C``, as in many CI images and cron) the suite sets ``LC_ALL=C.UTF-8`` for itself and
    ansible-core, as ansible-playbook's documentation asks the user to; when no C.UTF-8 locale is
    installed either, it is a usage error naming LC_ALL/LANG. Nothing else the suite does depends on
    the locale (it reads and writes UTF-8 explicitly)."""
    import locale

    try:
        locale.setlocale(locale.LC_ALL, "")
        encoding = locale.getlocale()[1]
    except (locale.Error, ValueError):
        encoding = None
    if encoding and encoding.lower().replace("-", "") == "utf8":
        return
    for candidate in UTF8_LOCALES:
        try:
            locale.setlocale(locale.LC_ALL, candidate)
        except locale.Error:
            continue
        os.environ["LC_ALL"] = candidate  # initialize_locale() reads the environment again
        return
    current = ", ".join(f"{k}={os.environ[k]}" for k in ("LC_ALL", "LC_CTYPE", "LANG") if k in os.environ) or "unset"
    raise PolicyError("LC_ALL/LANG", current, "ansible-core (the inventory reader) needs a UTF-8 locale and "
                                              "no C.UTF-8 locale is installed: set LC_ALL or LANG to a UTF-8 "
                                              "locale (locale -a lists them)")


def _constants():
    """ansible-core's ``constants`` (it reads ansible.cfg and ANSIBLE_* at import); a broken
    ansible.cfg is bad input: PolicyError naming the file, not a crash."""
    ensure_utf8_locale()
    try:
        from ansible import constants as C
    except Exception as exc:  # noqa: BLE001 - AnsibleOptionsError("Error reading config file (PATH): ...")
        candidates = [os.environ.get("ANSIBLE_CONFIG", ""), *(str(Path(p).expanduser()) for p in _CONFIG_CANDIDATES)]
        source = next((str(Path(c).resolve()) for c in candidates if c and Path(c).is_file()), "ansible.cfg")
        raise PolicyError(source, "", f"ansible-core cannot read it: {getattr(exc, 'message', None) or exc}") from None
    return C


def ansible_config_file() -> str | None:
    """The ansible.cfg ansible-core itself uses (its search order), or None."""
    C = _constants()

    # ConfigManager keeps the file it found with find_ini_config_file(); it has no public name
    return getattr(C.config, "_config_file", None)


def ansible_config() -> configparser.ConfigParser:
    """That ansible.cfg, parsed as ansible-core parses it (``;`` comments, values read raw)."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    path = ansible_config_file()
    if path:
        parser.read(path)
    return parser


def configured_inventory() -> list[str] | None:
    """ansible.cfg's ``[defaults] inventory`` (or ANSIBLE_INVENTORY), paths resolved as Ansible
    resolves them; None when neither is set (Ansible's own /etc/ansible/hosts default is not used)."""
    if not ansible_cfg_may_apply():
        return None  # nothing configured: do not import ansible-core at all
    C = _constants()

    value, origin = C.config.get_config_value_and_origin("DEFAULT_HOST_LIST")
    return None if origin == "default" or not value else [str(v) for v in value]


# --- vault ---------------------------------------------------------------------------------

def _vault_secrets(loader: Any, vault: VaultOptions) -> list:
    C = _constants()
    try:
        from ansible.cli import CLI
    except SystemExit as exc:  # its import-time checks (UTF-8 locale, blocking stdio) exit the process
        raise PolicyError("ansible-core", "", f"refuses to start: {exc}") from None
    from ansible.errors import AnsibleError

    vault_ids = [*vault.vault_ids, *(C.DEFAULT_VAULT_IDENTITY_LIST or [])]
    output = io.StringIO()
    try:
        with contextlib.redirect_stderr(output), contextlib.redirect_stdout(output):
            return CLI.setup_vault_secrets(loader, vault_ids, list(vault.password_files), auto_prompt=False,
                                           initialize_context=False)
    except AnsibleError as exc:  # a missing or unreadable password file
        option = "--vault-id" if vault.vault_ids else "--vault-password-file"
        raise PolicyError(option, "", f"cannot read the vault password: {exc.message}") from None


@contextlib.contextmanager
def _vault_context(secrets: list) -> Iterator[None]:
    """ansible-playbook sets the process-wide VaultSecretsContext once; the suite sets it for
    the time it reads the inventory (and restores it: tests read several inventories)."""
    from ansible.parsing.vault import VaultSecretsContext

    previous = VaultSecretsContext.current(optional=True)
    VaultSecretsContext._current = VaultSecretsContext(secrets)
    try:
        yield
    finally:
        VaultSecretsContext._current = previous


def _vault_error(exc: BaseException) -> BaseException | None:
    """The vault error behind ``exc`` (undecryptable value, no or wrong password), or None."""
    from ansible.parsing.vault import AnsibleVaultError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, AnsibleVaultError) or type(exc).__name__ == "UndecryptableVaultError":
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _is_vaulted(value: Any) -> bool:
    """Encrypted (``!vault``), decrypted from it, or read from a vault-encrypted vars file."""
    from ansible.parsing.vault import VaultHelper

    if isinstance(value, Mapping):
        return any(_is_vaulted(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_is_vaulted(v) for v in value)
    if VaultHelper.get_ciphertext(value, with_tags=False) is not None:
        return True
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:  # pragma: no cover
        return False
    origin = Origin.get_tag(value)
    return bool(origin and origin.path and _encrypted_file(origin.path))


def _encrypted_file(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(14) == b"$ANSIBLE_VAULT"
    except OSError:
        return False


def _encrypted_vars_files(sources: Sequence[str]) -> list[str]:
    """group_vars/host_vars files beside the inventory that are vault-encrypted as a whole."""
    found = []
    for source in sources:
        base = Path(source) if Path(source).is_dir() else Path(source).parent
        for sub in ("group_vars", "host_vars"):
            for path in sorted((base / sub).rglob("*")) if (base / sub).is_dir() else []:
                if path.is_file() and _encrypted_file(str(path)):
                    found.append(str(path))
    return found


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
            vaulted = _is_vaulted(raw) or _is_vaulted(rendered)
            value = _plain(rendered)
        except Exception as exc:  # noqa: BLE001 - ansible's template/vault errors -> a usage error
            raise self._error(key, exc) from None
        if vaulted:
            self.secret.add(key)
            value = _scalar(value)
        return value

    def _error(self, key: str, exc: Exception) -> PolicyError:
        where = f"{key} (host {self.host})"
        vault = _vault_error(exc)
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
            port = int(spec.port) if getattr(spec, "port", None) else None
    except ValueError as exc:  # a port that is not a number, from the host's vars, ANSIBLE_REMOTE_PORT or ansible.cfg
        key = next((k for k in ("ansible_port", "ansible_ssh_port") if k in resolver.hostvars), None)
        source = resolver.origin(key) if key else \
            ("ANSIBLE_REMOTE_PORT" if "ANSIBLE_REMOTE_PORT" in os.environ else ansible_config_file() or "ansible.cfg")
        reason = "its vaulted value is not shown" if key in resolver.secret else str(exc)
        raise PolicyError(source, f"{key or 'remote_port'} (host {name})", f"not a port number: {reason}") from None
    return Connection(
        backend=backend.NAME, address=getattr(spec, "name", None), user=user, port=port,
        identity_file=getattr(backend, "ssh_identity_file", None) or None, ssh_args=ssh_args,
        become=become, become_user=(conn_vars.get("ansible_become_user") or default_become_user) if become else None,
        secret_fields=secret_fields)


def ssh_connection_options(variables: Mapping[str, Any]) -> tuple[str | None, int | None, str]:
    """(user, port, ssh args) as ansible-core's ``ssh`` connection plugin resolves its options
    ``remote_user``, ``port``, ``ssh_args``, ``ssh_common_args`` and ``ssh_extra_args`` for a host
    with these (rendered) connection ``variables``: each from the host's variable if it has one
    (``ansible_user``, ``ansible_port``, ``ansible_ssh_args``, ``ansible_ssh_common_args``,
    ``ansible_ssh_extra_args``), else the environment (``ANSIBLE_REMOTE_USER``, ``ANSIBLE_REMOTE_PORT``,
    ``ANSIBLE_SSH_ARGS``, ``ANSIBLE_SSH_COMMON_ARGS``, ``ANSIBLE_SSH_EXTRA_ARGS``), else ansible.cfg:
    ansible-core's ConfigManager with the plugin's own option definitions decides, so the precedence is
    Ansible's. testinfra's mapping lets the environment win over the host's variables and ignores
    ANSIBLE_SSH_ARGS: not used for these. The ssh args are ``ssh_args`` (unless only its default,
    ``-C -o ControlMaster=auto -o ControlPersist=60s``: the suite keeps no master) then the common and
    the extra args, in the order Ansible puts them on ssh's command line.
    Example: ``ssh_connection_options({"ansible_user": "alice"})`` -> ``("alice", None, "")`` (no
    ansible.cfg or ANSIBLE_* set)."""
    C = _constants()
    from ansible.plugins.loader import connection_loader

    connection_loader.get("ssh", class_only=True)  # registers the plugin's option definitions

    def option(name: str) -> tuple[Any, str]:
        return C.config.get_config_value_and_origin(name, plugin_type="connection", plugin_name="ssh",
                                                    variables=variables)

    user, _ = option("remote_user")
    try:
        port, _ = option("port")
        port = int(port) if port not in (None, "") else None
    except Exception as exc:  # noqa: BLE001 - ansible-core's own type check of an integer option
        raise ValueError(getattr(exc, "message", None) or str(exc)) from None
    args, origin = option("ssh_args")
    parts = [args if origin != "default" else "", option("ssh_common_args")[0], option("ssh_extra_args")[0]]
    return (str(user) if user not in (None, "") else None, port, " ".join(str(p) for p in parts if p).strip())


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
    C = _constants()
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    vault = vault or VaultOptions()
    loader = DataLoader()
    secrets = _vault_secrets(loader, vault)
    password_sources = ", ".join(str(getattr(s, "filename", None) or label) for label, s in secrets)
    output = io.StringIO()
    with _vault_context(secrets):
        try:
            with contextlib.redirect_stderr(output), contextlib.redirect_stdout(output):
                inventory = InventoryManager(loader=loader, sources=sources)
                variables = VariableManager(loader=loader, inventory=inventory)
                hosts = inventory.get_hosts(limit or "all")
                all_vars = {h.name: variables.get_vars(host=h, include_hostvars=False) for h in hosts}
        except Exception as exc:  # ansible raises AnsibleError subclasses with the cause in warnings
            if _vault_error(exc) is not None:
                files = ", ".join(_encrypted_vars_files(sources)) or named
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


def hosts_from_inventory(path: str, defaults: Mapping[str, Any], *, limit: str | None,
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
