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


def _encode(value: Any) -> str:
    # default=str: what json.dumps(default=str) gives for a value JSON has no type for (a Path); datetimes and
    # dataclasses passed to it too (orjson would write them itself: "T" in a datetime, a dataclass as an object)
    # OPT_NON_STR_KEYS: an int key is written as its text, as json.dumps does
    options = (orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
               | orjson.OPT_PASSTHROUGH_DATACLASS)
    return orjson.dumps(value, default=str, option=options).decode("utf-8")


def json_text(value: Any) -> str:
    """``value`` as indented JSON text, non-ASCII escaped as JSON escapes it (``\\uXXXX``, surrogate pairs
    past U+FFFF). Raises TypeError for a value neither orjson nor ``str`` can write."""
    text = _encode(value)
    return text if text.isascii() else _NON_ASCII.sub(lambda m: json.dumps(m.group())[1:-1], text)


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
    text = _encode(value)
    return _YAML_ESCAPED.sub(_yaml_escape, text) if not text.isascii() or "\x7f" in text else text
