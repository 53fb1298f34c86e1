"""Keep secrets out of everything the suite records.

Example: ``redact_url("redis://:hunter2@valkey:6379/0")`` -> ``"redis://:***@valkey:6379/0"``.
"""
from __future__ import annotations

import re

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")


def redact_url(text: str) -> str:
    """Mask the password of every ``scheme://user:password@`` in ``text``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
