"""Vault passwords and vaulted values as ansible-playbook reads them (ansible-core's own vault):
``--vault-password-file``, ``--vault-id``, ``ANSIBLE_VAULT_PASSWORD_FILE``, ansible.cfg; which values are
vaulted (``!vault``, decrypted from it, or from a vault-encrypted vars file). Decrypted values stay in memory.
Errors: ``PolicyError`` naming the option and the remedy.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from railiance_conformance.ansible_config import ansible_constants
from railiance_conformance.policy import PolicyError

VAULT_REMEDY = ("pass --vault-password-file FILE or --vault-id [LABEL@]FILE "
                "(or set ANSIBLE_VAULT_PASSWORD_FILE), as to ansible-playbook")


@dataclass(frozen=True, slots=True)
class VaultOptions:
    """Vault passwords as ansible-playbook takes them: ``--vault-password-file FILE`` and
    ``--vault-id [LABEL@]FILE`` (repeatable). ANSIBLE_VAULT_PASSWORD_FILE, ANSIBLE_VAULT_IDENTITY_LIST
    and ansible.cfg's ``vault_password_file``/``vault_identity_list`` are added by ansible-core."""

    password_files: tuple[str, ...] = ()
    vault_ids: tuple[str, ...] = ()


def vault_secrets(loader: Any, vault: VaultOptions) -> list:
    C = ansible_constants()
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
def vault_context(secrets: list) -> Iterator[None]:
    """ansible-playbook sets the process-wide VaultSecretsContext once; the suite sets it for
    the time it reads the inventory (and restores it: tests read several inventories)."""
    from ansible.parsing.vault import VaultSecretsContext

    previous = VaultSecretsContext.current(optional=True)
    VaultSecretsContext._current = VaultSecretsContext(secrets)
    try:
        yield
    finally:
        VaultSecretsContext._current = previous


def vault_error(exc: BaseException) -> BaseException | None:
    """The vault error behind ``exc`` (undecryptable value, no or wrong password), or None."""
    from ansible.parsing.vault import AnsibleVaultError

    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AnsibleVaultError) or type(current).__name__ == "UndecryptableVaultError":
            return current
        current = current.__cause__ or current.__context__
    return None


def is_vaulted(value: Any) -> bool:
    """Encrypted (``!vault``), decrypted from it, or read from a vault-encrypted vars file."""
    from ansible.parsing.vault import VaultHelper

    if isinstance(value, Mapping):
        return any(is_vaulted(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_vaulted(v) for v in value)
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


def encrypted_vars_files(sources: Sequence[str]) -> list[str]:
    """group_vars/host_vars files beside the inventory that are vault-encrypted as a whole."""
    found = []
    for source in sources:
        base = Path(source) if Path(source).is_dir() else Path(source).parent
        for sub in ("group_vars", "host_vars"):
            for path in sorted((base / sub).rglob("*")) if (base / sub).is_dir() else []:
                if path.is_file() and _encrypted_file(str(path)):
                    found.append(str(path))
    return found
