"""Keep secrets out of everything the suite records.

Example: ``redact_url("redis://:hunter2@valkey:6379/0")`` -> ``"redis://:***@valkey:6379/0"``;
``redact_url("https://ghp_abc@gitea/x.git")`` -> ``"https://***@gitea/x.git"`` (a token as user).
"""
from __future__ import annotations

import re

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
# http(s) remotes often carry an access token as the whole userinfo (https://TOKEN@host/...)
_TOKEN_USER = re.compile(r"(?P<scheme>https?://)(?P<user>[^:/@\s]+)@", re.IGNORECASE)


def redact_url(text: str) -> str:
    """Mask the password of every ``scheme://user:password@`` and the token of ``https://token@``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _TOKEN_USER.sub(lambda m: f"{m['scheme']}{MASK}@", text)
