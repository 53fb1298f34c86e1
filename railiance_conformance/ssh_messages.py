"""ssh's own messages read as what they say, never as a value the suite observed.

OpenSSH's client writes a warning banner framed in ``@`` lines when a host's key differs from the one
in known_hosts (``sshconnect.c``, ``warn_changed_key``):

    @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
    @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
    @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
    IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
    ...
    Offending ED25519 key in /home/u/.ssh/known_hosts:3
    Host key for [127.0.0.2]:2222 has changed and you have requested strict checking.
    Host key verification failed.

``changed_host_key`` turns that into one sentence naming the host and the known_hosts line:
``changed_host_key(banner, "gitea-local")`` -> ``"the host key of [127.0.0.2]:2222 changed (ssh: REMOTE
HOST IDENTIFICATION HAS CHANGED; the old key is /home/u/.ssh/known_hosts:3)"``; ``without_banner`` drops
the ``@`` frame from any ssh output before a line of it is shown.
"""
from __future__ import annotations

import re

_CHANGED = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for \S+ has changed")
_HOST = re.compile(r"Host key for (\S+) has changed")
_OFFENDING = re.compile(r"Offending \S+ key in (\S+?):(\d+)")
_BANNER = re.compile(r"^\s*@.*@\s*$|^\s*@+\s*$")


def changed_host_key(text: str, host: str) -> str | None:
    """The sentence for a changed host key in ssh's output ``text`` (``host``: who was asked, when ssh does
    not name it), or None when ``text`` does not say the key changed."""
    if not _CHANGED.search(text or ""):
        return None
    named = _HOST.search(text)
    offending = _OFFENDING.search(text)
    old = f"; the old key is {offending[1]}:{offending[2]}" if offending else ""
    return f"the host key of {named[1] if named else host} changed (ssh: REMOTE HOST IDENTIFICATION HAS CHANGED{old})"


def without_banner(text: str) -> str:
    """``text`` without ssh's ``@``-framed banner lines."""
    return "\n".join(line for line in (text or "").splitlines() if not _BANNER.match(line))
