"""ssh's own expansion of an ``IdentityFile`` value: ``~``, ``%`` TOKENS and ``${VAR}``.

Example: ``expand_identity_file("%d/.ssh/id_ed25519_gitea", SshContext(local_user="tegwick", uid=1000,
home="/home/tegwick", ...))`` -> ``"/home/tegwick/.ssh/id_ed25519_gitea"``.

``ssh -G`` prints IdentityFile as written (OpenSSH 9.2 ``dump_client_config`` runs before identity
files are expanded); ssh expands them when it loads them, after connecting (ssh.c
``load_public_identity_files``): first ``tilde_expand_filename`` (misc.c: ``~`` and ``~/`` are the
*passwd* home of the local user, ``~user/`` that user's home), then
``default_client_percent_dollar_expand`` (ssh.c/misc.c ``percent_dollar_expand``): ``${VAR}`` from
ssh's environment (an unset variable is fatal: ssh exits) and the TOKENS of ssh_config(5) that
IdentityFile accepts: ``%%`` ``%C`` ``%d`` ``%h`` ``%i`` ``%j`` ``%k`` ``%L`` ``%l`` ``%n`` ``%p``
``%r`` ``%u`` (an unknown one is fatal). ``%d`` is the passwd home (``pw->pw_dir``), not ``$HOME``.
Proved against the identity files ``ssh -v`` loads ("identity file X type N") on generated configs
(tests/differential/test_ssh_tokens_differential.py).

The environment is the operator's login environment as sshd/login set it (session.c
``do_setup_env``: USER, LOGNAME, HOME, SHELL, PATH, MAIL); any other variable is not known to the
suite and is reported as such (``UnknownVariable``), never guessed.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field


class ExpansionFails(ValueError):
    """ssh itself fails on this value (an unknown %-token, an unset ${VAR}, a bad ~user)."""


class UnknownVariable(ValueError):
    """The value names an environment variable the suite cannot know (not part of a login's environment)."""


@dataclass(frozen=True)
class SshContext:
    """What ssh knows when it expands: the local user (name, uid, passwd home), ``ssh -G``'s hostname,
    user, port, hostkeyalias and proxyjump, the alias given on the command line, this machine's
    hostname (``gethostname``), the environment, and other users' homes for ``~user``."""

    local_user: str
    uid: int
    home: str
    hostname: str
    remote_user: str
    port: int | str
    host_arg: str
    local_hostname: str = ""
    host_key_alias: str = ""
    proxy_jump: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    homes: Mapping[str, str] = field(default_factory=dict)


def login_environment(user: str, home: str, shell: str = "/bin/sh") -> dict[str, str]:
    """The variables sshd sets for a login session (session.c ``do_setup_env``) whose values the passwd
    entry decides."""
    return {"USER": user, "LOGNAME": user, "HOME": home, "SHELL": shell, "MAIL": f"/var/mail/{user}"}


def _tilde(path: str, ctx: SshContext) -> str:
    """misc.c ``tilde_expand_filename``: ``~/x`` and ``~`` are the local user's passwd home, ``~user/x``
    that user's; the slashes after the ``~`` part are dropped and one ``/`` joins (``~//x`` -> home/x);
    ``~name`` without a slash is the *own* home followed by ``name``."""
    if not path.startswith("~"):
        return path
    rest = path[1:]
    slash = rest.find("/")
    if slash > 0:
        name = rest[:slash]
        if name == ctx.local_user:
            home = ctx.home
        elif name in ctx.homes:
            home = ctx.homes[name]
        else:
            raise ExpansionFails(f"tilde expansion of {path!r}: no such user {name!r}")
        rest = rest[slash:]
    else:
        home = ctx.home
    rest = rest.lstrip("/")
    return home + ("" if home.endswith("/") else "/") + rest


def _tokens(ctx: SshContext) -> dict[str, str]:
    short = ctx.local_hostname.split(".", 1)[0]
    port = str(ctx.port)
    conn = hashlib.sha1((ctx.local_hostname + ctx.hostname + port + ctx.remote_user + ctx.proxy_jump)
                        .encode()).hexdigest()  # ssh_connection_hash(thishost, host, portstr, user, jumphost)
    return {"%": "%", "C": conn, "d": ctx.home, "h": ctx.hostname, "i": str(ctx.uid), "j": ctx.proxy_jump,
            "k": ctx.host_key_alias or ctx.host_arg, "L": short, "l": ctx.local_hostname, "n": ctx.host_arg,
            "p": port, "r": ctx.remote_user, "u": ctx.local_user}


def expand_identity_file(value: str, ctx: SshContext) -> str:
    """The path ssh loads for one IdentityFile value (see the module docstring for the order and sources)."""
    path = _tilde(value, ctx)
    tokens = _tokens(ctx)
    out, index = [], 0
    while index < len(path):
        char = path[index]
        if char == "$" and path[index + 1:index + 2] == "{":
            end = path.find("}", index)
            if end < 0:
                raise ExpansionFails("environment variable expansion: missing '}'")
            name = path[index + 2:end]
            if not re.fullmatch(r"[A-Za-z0-9_]+", name or "-"):
                raise ExpansionFails(f"environment variable expansion: bad name {name!r}")
            if name not in ctx.environment:
                raise UnknownVariable(f"${{{name}}} comes from the operator's environment, which the suite "
                                      "cannot see (only USER, LOGNAME, HOME, SHELL and MAIL of a login are known)")
            out.append(ctx.environment[name])
            index = end + 1
        elif char == "%":
            key = path[index + 1:index + 2]
            if key not in tokens:
                raise ExpansionFails(f"percent_expand: unknown key %{key}" if key else "percent_expand: invalid format")
            if key in ("l", "L", "C") and not ctx.local_hostname:
                raise UnknownVariable(f"%{key} needs the host's own name, which was not read")
            out.append(tokens[key])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)
