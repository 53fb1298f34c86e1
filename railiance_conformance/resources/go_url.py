"""Go's ``net/url.Parse``, as Gitea's redis settings go through it: ``go_url_parse(text)`` -> ``GoURL``.

Example: ``go_url_parse("redis://:p@ss#1@valkey:6379/0")`` raises ``GoURLError("invalid port after
host")``: Parse cuts the fragment at the first ``#`` before anything else, so the authority is
``:p@ss`` … and the text after the last ``@`` of what is left is not a host.

Followed from Go's source (src/net/url/url.go, go1.21-1.23, the versions Gitea 1.21-1.25 build
with): ``Parse`` (cut at ``#``, then ``parse``, then ``setFragment``), ``parse`` (control bytes
rejected, ``getScheme``, the scheme lower-cased, ``?`` cut into RawQuery, a rootless rest is
opaque, ``//`` starts the authority up to the first ``/``), ``parseAuthority`` (userinfo up to the
*last* ``@``, ``validUserinfo``: only ``A-Za-z0-9-._:~!$&'()*+,;=%@``, then ``unescape`` of user
and password), ``parseHost`` (``[...]`` literals; otherwise the text from the last ``:`` must be
``validOptionalPort``: digits only), ``unescape`` (``%XY`` must be two hex digits; in a host only
for bytes >= 0x80 or ``%25``, and an ASCII byte that ``shouldEscape`` in host mode is an
``InvalidHostError``). Go does not run here, so there is no differential test; the cases in
tests/unit/test_endpoints.py are Go's own (url_test.go ``parseRequestURLTests``/``urltests``) plus
the redis forms Gitea users write. Error messages never quote the input (it may hold a password).
"""
from __future__ import annotations

from dataclasses import dataclass

_USERINFO_MARKS = set("-._:~!$&'()*+,;=%@")
_HOST_OK = set("!$&'()*+,;=:[]<>\"-_.~")


class GoURLError(ValueError):
    """``url.Parse`` returns an error (the message says which rule, never the value)."""


@dataclass(frozen=True)
class GoURL:
    """The fields of Go's ``url.URL`` that a client reads (unescaped, as Go keeps them)."""

    scheme: str
    opaque: str = ""
    username: str | None = None
    password: str | None = None
    host: str = ""
    path: str = ""
    raw_query: str = ""
    fragment: str = ""

    @property
    def hostname(self) -> str:
        """``URL.Hostname()``: the host without port and brackets."""
        host = self.host
        if host.startswith("["):
            return host[1:host.find("]")] if "]" in host else host[1:]
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def port(self) -> str:
        """``URL.Port()``: the digits after the host's last colon, or ``""``."""
        host = self.host
        colon = host.rfind(":")
        if colon < 0 or (host.startswith("[") and colon < host.find("]")):
            return ""
        return host[colon + 1:]


def go_url_parse(raw: str) -> GoURL:
    """``url.Parse(raw)``: the parsed URL or GoURLError (url.go ``Parse``)."""
    text, _, fragment = raw.partition("#")
    url = _parse(text)
    if fragment:
        url = GoURL(**{**url.__dict__, "fragment": _unescape(fragment, "fragment")})
    return url


def _parse(raw: str) -> GoURL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise GoURLError("net/url: invalid control character in URL")
    scheme, rest = _get_scheme(raw)
    scheme = scheme.lower()
    query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return GoURL(scheme, opaque=rest, raw_query=query)  # rootless paths are opaque (RFC 3986)
        colon, slash = rest.find(":"), rest.find("/")
        if colon >= 0 and (slash < 0 or colon < slash):
            raise GoURLError("first path segment in URL cannot contain colon")
    username = password = None
    host = ""
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, rest = rest[2:], ""
        if "/" in authority:
            index = authority.index("/")
            authority, rest = authority[:index], authority[index:]
        username, password, host = _parse_authority(authority)
    return GoURL(scheme, username=username, password=password, host=host, path=_unescape(rest, "path"),
                 raw_query=query)


def _get_scheme(raw: str) -> tuple[str, str]:
    for index, char in enumerate(raw):
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if index == 0:
                return "", raw
            continue
        if char == ":":
            if index == 0:
                raise GoURLError("missing protocol scheme")
            return raw[:index], raw[index + 1:]
        return "", raw
    return "", raw


def _parse_authority(authority: str) -> tuple[str | None, str | None, str]:
    at = authority.rfind("@")
    host = _parse_host(authority[at + 1:] if at >= 0 else authority)
    if at < 0:
        return None, None, host
    userinfo = authority[:at]
    if not all((c.isascii() and c.isalnum()) or c in _USERINFO_MARKS for c in userinfo):
        raise GoURLError("net/url: invalid userinfo")
    if ":" not in userinfo:
        return _unescape(userinfo, "userinfo"), None, host
    username, _, password = userinfo.partition(":")
    return _unescape(username, "userinfo"), _unescape(password, "userinfo"), host


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _parse_host(host: str) -> str:
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise GoURLError("missing ']' in host")
        if not _valid_optional_port(host[close + 1:]):
            raise GoURLError("invalid port after host")
    elif ":" in host and not _valid_optional_port(host[host.rfind(":"):]):
        raise GoURLError("invalid port after host")
    return _unescape(host, "host")


def _unescape(text: str, mode: str) -> str:
    """``unescape(s, mode)``: %XY decoding with Go's per-component rules (bytes, then UTF-8)."""
    data = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    index = 0
    hexdigits = b"0123456789abcdefABCDEF"
    while index < len(data):
        byte = data[index]
        if byte == 0x25:  # %
            if index + 2 >= len(data) or data[index + 1] not in hexdigits or data[index + 2] not in hexdigits:
                raise GoURLError(f"invalid URL escape in the {mode}")
            value = int(data[index + 1:index + 3], 16)
            if mode == "host" and value < 0x80 and data[index:index + 3] != b"%25":
                raise GoURLError("invalid URL escape in the host")
            out.append(value)
            index += 3
            continue
        if mode == "host" and byte < 0x80 and not (chr(byte).isalnum() or chr(byte) in _HOST_OK):
            raise GoURLError("invalid character in host name")
        out.append(byte)
        index += 1
    return out.decode("utf-8", "surrogateescape")
