"""ansible-core's configuration as ansible-playbook sees it: ansible.cfg (``ANSIBLE_CONFIG``,
``./ansible.cfg``, ``~/.ansible.cfg``, ``/etc/ansible/ansible.cfg``), ``ANSIBLE_*``, the UTF-8 locale it
needs, the inventory it names, and the ssh connection plugin's options of a host.
Errors: ``PolicyError`` naming ansible.cfg or LC_ALL/LANG.
"""
from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any, Mapping

from railiance_conformance.policy import PolicyError

# A source no plugin can parse is an error, not an empty inventory.
os.environ.setdefault("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "True")
os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")

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


def ansible_constants():
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
    C = ansible_constants()

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
    C = ansible_constants()

    value, origin = C.config.get_config_value_and_origin("DEFAULT_HOST_LIST")
    return None if origin == "default" or not value else [str(v) for v in value]


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
    C = ansible_constants()
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
