"""JSON text for the report files, written by orjson (its Rust encoder; the standard library's is
pure Python as soon as ``indent`` is given, and was most of findings.json's and policyreport.yaml's cost).

Both functions give two-space indented JSON with every non-ASCII character escaped, as
``json.dumps(value, indent=2, default=str)`` does (``ensure_ascii``): bidi and invisible characters from
a target never reach a file raw. The values are the same as the standard library's; floats are written
in orjson's shortest form (``0.000089`` where ``json`` writes ``8.9e-05``).
Example: ``json_text({"a": "é"})`` -> ``'{\\n  "a": "\\\\u00e9"\\n}'``.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

import orjson
import yaml

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# what a YAML document may not hold raw: past ASCII, and DEL (YAML's printable set, section 5.1, has no #x7F)
_YAML_ESCAPED = re.compile(r"[^\x00-\x7e]")


def _encode_bytes(value: Any) -> bytes:
    # default=str: what json.dumps(default=str) gives for a value JSON has no type for (a Path); datetimes and
    # dataclasses passed to it too (orjson would write them itself: "T" in a datetime, a dataclass as an object)
    # OPT_NON_STR_KEYS: an int key is written as its text, as json.dumps does
    options = (orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
               | orjson.OPT_PASSTHROUGH_DATACLASS)
    return orjson.dumps(value, default=str, option=options)


def _encode(value: Any) -> str:
    return _encode_bytes(value).decode("utf-8")


# UTF-8's lead bytes of U+0080..U+00FF (C2, C3) and of the code points past U+FFFF (F0..F4): where these are
# absent, Python's backslashreplace escapes every non-ASCII character as \uXXXX (4 lower-case hex digits), as
# JSON and YAML escape them; for these it writes \xXX and \UXXXXXXXX, so those texts take the regex below
_NOT_BMP_ESCAPE_LEADS = (b"\xc2", b"\xc3", b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


def _backslash_escapable(raw: bytes) -> bool:
    """Whether every non-ASCII character of the UTF-8 ``raw`` is in U+0100..U+FFFF (byte searches, no decoding)."""
    return not any(lead in raw for lead in _NOT_BMP_ESCAPE_LEADS)


def json_text(value: Any) -> str:
    """``value`` as indented JSON text, non-ASCII escaped as JSON escapes it (``\\uXXXX``, surrogate pairs
    past U+FFFF). Raises TypeError for a value neither orjson nor ``str`` can write."""
    raw = _encode_bytes(value)
    if raw.isascii():
        return raw.decode("ascii")
    if _backslash_escapable(raw):  # the usual case (a dash in a title): one C-level pass instead of a regex scan
        return raw.decode("utf-8").encode("ascii", "backslashreplace").decode("ascii")
    return _NON_ASCII.sub(lambda m: json.dumps(m.group())[1:-1], raw.decode("utf-8"))


def _yaml_escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_NEVER_FLOAT = frozenset({str, int, bool, type(None)})


def _has_float(value: Any) -> bool:
    """Whether a float is anywhere in ``value``'s dicts' values, lists and tuples. One walk without recursion;
    a container whose items are all strings, ints, bools or None is passed over by one C-level type check."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            return True
        items: Iterable[Any]
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, (list, tuple)):
            items = item
        else:
            continue
        if not _NEVER_FLOAT.issuperset(map(type, items)):
            pending.extend(items)
    return False


def yaml_json_text(value: Any) -> str:
    """``value`` as a YAML document in JSON form (YAML's flow style: ``kubectl apply -f`` and every YAML
    parser read it), non-ASCII and DEL escaped as YAML escapes them: ``\\uXXXX``, and ``\\UXXXXXXXX`` past U+FFFF
    (YAML 1.1 and 1.2, section 5.7), never a JSON surrogate pair, which YAML parsers read as two code points.
    A value holding a float is written by PyYAML's libyaml emitter instead (block style): JSON's ``1e-05`` is
    a string to a YAML 1.1 parser (PyYAML's float pattern needs a dot), PyYAML writes ``1.0e-05``."""
    if _has_float(value):
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(value, Dumper=dumper, sort_keys=False, allow_unicode=False, width=4096).rstrip("\n")
    raw = _encode_bytes(value)
    if raw.isascii() and b"\x7f" not in raw:
        return raw.decode("ascii")
    if b"\x7f" not in raw and _backslash_escapable(raw):
        return raw.decode("utf-8").encode("ascii", "backslashreplace").decode("ascii")
    return _YAML_ESCAPED.sub(_yaml_escape, raw.decode("utf-8"))
