"""Build Ansible inventories with vaulted values for the tests (encrypted by ansible-core itself)."""
from __future__ import annotations

from pathlib import Path

PASSWORD = "correct horse battery staple"


def vault_text(plain: str, password: str = PASSWORD) -> str:
    """``$ANSIBLE_VAULT;1.1;AES256`` text of ``plain``, as ``ansible-vault encrypt_string`` writes it."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    return VaultLib([("default", VaultSecret(password.encode()))]).encrypt(plain).decode()


def vault_var(name: str, plain: str, password: str = PASSWORD) -> str:
    """One YAML ``name: !vault |`` entry."""
    body = "\n".join(f"  {line}" for line in vault_text(plain, password).splitlines())
    return f"{name}: !vault |\n{body}\n"


def password_file(directory: Path, password: str = PASSWORD, name: str = "vault-pass") -> Path:
    path = directory / name
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path
