"""Keep secrets out of everything the suite records: one redaction step, whatever the form.

Every value that becomes part of a Finding (expected, observed, reason, evidence) goes through
:func:`redact` in the recorder, and every string the suite writes from a target's config goes
through :func:`redact_text`. Forms masked (each with ``***``):

* URL userinfo: ``redis://:pw@h``, ``https://user:p/w@d@host/x`` (the password runs to the *last*
  ``@`` of the token, so a ``/`` or ``@`` inside it is masked too), and an access token used as the
  whole userinfo of an http(s) URL (``https://TOKEN@host``);
* scp-like git remotes with a password or token as userinfo (``oauth2:TOKEN@host:org/r.git``);
  a plain ``git@host:org/r.git`` keeps its user (an ssh login name is not a secret);
* ``key=value`` pairs whose key names a secret (``password=``, ``passwd=``, ``pwd=``, ``token=``,
  ``access_token=``, ``private_token=``, ``secret=``, ``api_key=`` …) separated by ``,`` ``;`` ``&``
  or blanks, including libpq's quoted DSN values (``password='a b\\'c'``) and URL query parameters
  (``?password=…``, ``&access_token=…``);
* ``KEY = value`` / ``KEY: value`` lines whose key names a secret (app.ini's ``PASSWD``,
  ``SECRET_KEY``, ``INTERNAL_TOKEN``, YAML ``password:``);
* HTTP ``Authorization: Bearer …`` / ``Basic …`` credentials;
* ssh command-line forms: ``sshpass -p PASSWORD`` (also inside a ProxyCommand), every value of
  ``SetEnv NAME=VALUE …``, any ``NAME=value`` whose name contains password/passwd/passphrase
  (``-o XPassword=…``; a yes/no switch such as ``PasswordAuthentication=no`` stays);
* URL query parameters with a token-ish name (``?token=``, ``&access_token=``, ``&sig=``, ``&key=``,
  ``&code=``, ``X-Amz-Signature=``);
* mapping entries whose key names a secret (``{"password": "x"}`` -> ``{"password": "***"}``).

Example: ``redact_text("network=tcp,addr=valkey:6379,password=S3cret,db=0")``
-> ``"network=tcp,addr=valkey:6379,password=***,db=0"``.

Over-masking is the safe direction: when a form is ambiguous, more is masked, never less.
"""
from __future__ import annotations

import functools
import re
from typing import Any

MASK = "***"

# Key names that hold a secret (matched case-insensitively, as a whole key or its suffix).
_SECRET_NAME = (r"(?:[A-Za-z0-9_.\-]*?(?:passwd|password|passphrase|pwd|pass|secret|token|api[_-]?key|apikey|"
               r"private[_-]?key|access[_-]?key|secret[_-]?key|master[_-]?key|client[_-]?secret|credentials?|auth[_-]?key|"
               r"signature))")
SECRET_KEY = re.compile(rf"^{_SECRET_NAME}$", re.IGNORECASE)

# scheme://userinfo@ : the userinfo runs to the last "@" before the next blank (passwords may hold "/" or "@").
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s\"'<>]*)@(?=[^\s@\"'<>]*(?:$|[\s\"'<>]))")
# user:password@host:path (scp-like git remote) — the token before the colon is the user.
_SCP_USERINFO = re.compile(r"(?P<pre>(?:^|[\s\"'(=,]))(?P<user>[A-Za-z0-9._~+\-]+):(?!//)(?P<password>[^\s\"']+)"
                           r"@(?P<host>[A-Za-z0-9.\-\[\]]+):")
# "password": "value" inside JSON or a Python repr
_QUOTED_PAIR = re.compile(rf"(?P<key>[\"'](?:{_SECRET_NAME})[\"'])(?P<eq>\s*:\s*)(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')",
                          re.IGNORECASE)
# key=value (DSN keywords, go-redis' old form, query parameters); quoted values as libpq reads them.
_KV = re.compile(rf"(?P<key>(?<![A-Za-z0-9_.\-]){_SECRET_NAME})(?P<eq>\s*=\s*)"
                 r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&#'\"]+)", re.IGNORECASE)
# KEY = value / KEY: value to the end of the line (ini, env, yaml).
_LINE = re.compile(rf"(?im)^(?P<key>\s*[\"']?{_SECRET_NAME}[\"']?)(?P<eq>\s*[:=]\s*)(?P<value>\S.*?)\s*$")
# "Authorization: Bearer x" / "Basic x" / "token x" after the header name; a bare "Bearer <8+ chars>"
_AUTH_HEADER = re.compile(r"(?i)\b(?P<head>(?:proxy-)?authorization\s*[:=]\s*(?:(?:bearer|basic|token|digest|negotiate)\s+)?)"
                          r"(?P<cred>[^\s,;\"']+)")
_BEARER = re.compile(r"\b(?P<head>[Bb]earer\s+)(?P<cred>[A-Za-z0-9._~+/\-]{8,}=*)")
_VALUE = r"(?:'[^']*'|\"[^\"]*\"|[^\s\"']+)"
# sshpass -p PASSWORD (also -pPASSWORD, after other sshpass options)
_SSHPASS = re.compile(rf"(?P<head>\bsshpass\b(?:\s+-[dfPv]\s*\S+|\s+-[ev])*\s+-p\s*)(?P<cred>{_VALUE})")
# ssh's SetEnv NAME=VALUE [NAME=VALUE ...]: every value is sent to the host's environment
_SETENV = re.compile(rf"(?i)(?P<head>\bsetenv\b\s*[=\s]\s*)(?P<pairs>[A-Za-z_][A-Za-z0-9_]*={_VALUE}"
                     rf"(?:\s+[A-Za-z_][A-Za-z0-9_]*={_VALUE})*)")
_PAIR = re.compile(rf"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>{_VALUE})")
# any option or parameter whose name contains password/passwd/passphrase (-o XPasswordY=v, --db-password=v),
# unless its value is a yes/no switch (PasswordAuthentication=no)
_PASSWORD_OPTION = re.compile(r"(?i)(?P<key>(?<![A-Za-z0-9_])[A-Za-z0-9_.\-]*(?:password|passwd|passphrase)[A-Za-z0-9_.\-]*)"
                              r"(?P<eq>\s*=\s*)(?!(?:yes|no|true|false|on|off)\b|\*\*\*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;&#\"']+)")
# URL query parameters with a token-ish name (?token=, &access_token=, &sig=, &X-Amz-Signature=, &key=, &code=)
_QUERY = re.compile(r"(?i)(?P<key>[?&](?:[^=&#\s]*(?:token|key|secret|sig|signature|auth|password|passwd|pwd|"
                    r"credential|code)[^=&#\s]*))=(?P<value>[^&#\s\"'<>]+)")


def _mask_userinfo(match: re.Match) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    if ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{scheme}{user}:{MASK}@"
    if scheme.lower().startswith(("http", "git+http")):
        return f"{scheme}{MASK}@"  # https://TOKEN@host: the whole userinfo is the credential
    return match.group(0)  # ssh://git@host: a login name


def redact_text(text: str) -> str:
    """Mask every credential form listed in the module docstring; other text is unchanged.

    A pure function of ``text``: answers for strings of up to 4096 characters are kept for the most recent
    16384 distinct ones (a run at many hosts redacts the same expected values, reasons and remedies once
    per host, eleven regular expressions each); longer text (file contents) is never kept."""
    if not text:
        return text
    return _redact_short(text) if len(text) <= 4096 else _redact(text)


@functools.lru_cache(maxsize=16384)
def _redact_short(text: str) -> str:
    return _redact(text)


def _redact(text: str) -> str:
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _SCP_USERINFO.sub(lambda m: f"{m['pre']}{m['user']}:{MASK}@{m['host']}:", text)
    text = _QUOTED_PAIR.sub(lambda m: f"{m['key']}{m['eq']}{m['value'][0]}{MASK}{m['value'][0]}", text)
    text = _LINE.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)
    text = _KV.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m['head']}{MASK}", text)
    text = _SSHPASS.sub(lambda m: f"{m['head']}{MASK}", text)
    text = _SETENV.sub(lambda m: m["head"] + _PAIR.sub(lambda p: f"{p['name']}={MASK}", m["pairs"]), text)
    text = _PASSWORD_OPTION.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)
    text = _QUERY.sub(lambda m: f"{m['key']}={MASK}", text)
    return _BEARER.sub(lambda m: f"{m['head']}{MASK}", text)


def redact_url(text: str) -> str:
    """Backwards-compatible name for :func:`redact_text` (URLs are one of its forms)."""
    return redact_text(text)


@functools.lru_cache(maxsize=16384)
def _secret_key(key: str) -> bool:
    """``SECRET_KEY`` matches ``key`` (kept: every host's facts repeat the same keys, and the pattern's lazy
    prefix before its alternation is tried at each position of the key)."""
    return SECRET_KEY.match(key) is not None


NOT_CONTAINERS = frozenset({int, float, bool, type(None)})  # what redact returns as it is


def masked_entry(key: Any, value: Any) -> bool:
    """Whether a mapping entry is masked whole: its key names a secret (``SECRET_KEY``) and its value is
    one (not empty, not already ``***``, not a number, switch, list or mapping, which are walked instead)."""
    return isinstance(key, str) and _secret_key(key) and value not in (None, "", MASK) \
        and not isinstance(value, (bool, int, float, list, dict))


def redact(value: Any) -> Any:
    """``value`` with every secret masked, recursively: strings via :func:`redact_text`, mapping
    entries whose key names a secret replaced by ``***``. Tuples stay tuples, lists lists."""
    kind = type(value)
    if kind in NOT_CONTAINERS:
        return value
    if kind is str:
        return redact_text(value)
    if kind is tuple:  # the exact built-in containers first (evidence is a tuple of pairs): as the branches below
        return tuple([v if type(v) in NOT_CONTAINERS else redact(v) for v in value])
    if kind is list:
        return [v if type(v) in NOT_CONTAINERS else redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: MASK if masked_entry(k, v) else v if type(v) in NOT_CONTAINERS else redact(v)
                for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
