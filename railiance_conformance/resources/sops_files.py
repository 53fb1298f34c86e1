"""Whether a SOPS file is encrypted as sops' own rules require: key paths of plaintext leaves, never values.

``check_sops_file(Path("helm/valkey-values.sops.yaml"))`` -> ``SopsCheck(plaintext=("auth.password",))``;
file-level problems (not YAML, no ``sops:`` metadata, a MAC that is not ``ENC[...]``) in
``problems``; comment-based rules, which cannot be checked, in ``unverifiable``. Source: sops
``stores/yaml/store.go`` (a YAML stream, one ``sops:`` block per document) and ``Tree.shouldBeEncrypted``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ENC_VALUE = re.compile(r"^ENC\[[A-Z0-9_]+,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,"
                       r"type:(?:str|int|float|bool|bytes|comment)\]$")
SOPS_RULES = ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex",
              "unencrypted_comment_regex", "encrypted_comment_regex")


@dataclass(frozen=True)
class SopsCheck:
    """Problems of one SOPS file: file-level ``problems``, key paths of ``plaintext`` leaves (never values)."""

    problems: tuple[str, ...] = ()
    plaintext: tuple[str, ...] = ()
    unverifiable: str = ""


def check_sops_file(path: Path) -> SopsCheck:
    """``check_sops_file(Path("helm/valkey-values.sops.yaml"))`` -> ``SopsCheck(plaintext=("auth.password",))``.

    The file is read as a YAML stream, as sops reads it (stores/yaml/store.go ``LoadEncryptedFile``
    decodes document after document): a multi-document file (``---`` between two Secrets) is one
    SOPS file whose every document carries its own ``sops:`` block (``EmitEncryptedFile`` writes the
    metadata into each document). A UTF-8 byte-order mark is dropped, as PyYAML drops it. Key paths
    of a document after the first are prefixed with ``[document N]``.

    A leaf must be an ``ENC[...]`` string unless sops' own rules (its shouldBeEncrypted) leave it
    plain: the file's unencrypted_suffix (default ``_unencrypted`` when no rule is set),
    encrypted_suffix, unencrypted_regex, encrypted_regex, checked against every key on the path.
    """
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError):
        return SopsCheck(problems=("cannot be read as UTF-8 text",))
    except yaml.YAMLError as exc:  # the message could quote the file: keep only the position
        mark = getattr(exc, "problem_mark", None)
        return SopsCheck(problems=(f"not valid YAML{f' (line {mark.line + 1})' if mark else ''}",))
    if not documents:
        return SopsCheck(problems=("no top-level sops metadata: not SOPS-encrypted",))
    problems: list[str] = []
    plaintext: list[str] = []
    unverifiable = ""
    for number, data in enumerate(documents, 1):
        where = f"document {number}: " if len(documents) > 1 else ""
        prefix = f"[document {number}] " if number > 1 else ""
        if not isinstance(data, dict) or not isinstance(data.get("sops"), dict):
            problems.append(f"{where}no top-level sops metadata: not SOPS-encrypted")
            continue
        result = _check_sops_document(data, path)
        problems += [where + p for p in result.problems]
        plaintext += [prefix + k for k in result.plaintext]
        unverifiable = unverifiable or result.unverifiable
    return SopsCheck(problems=tuple(problems), plaintext=tuple(plaintext), unverifiable=unverifiable)


def _check_sops_document(data: dict[str, Any], path: Path) -> SopsCheck:
    """One YAML document with its own ``sops:`` block."""
    meta: dict[str, Any] = data["sops"]
    problems = [] if isinstance(meta.get("mac"), str) and ENC_VALUE.match(meta["mac"]) else ["sops.mac missing or not ENC[...]"]
    rules = {key: str(meta[key]) for key in SOPS_RULES if meta.get(key)}
    if len(rules) > 1:
        problems.append(f"sops metadata sets more than one of {', '.join(sorted(rules))} (sops refuses the file)")
    if any(key.endswith("comment_regex") for key in rules):
        return SopsCheck(problems=tuple(problems), unverifiable=f"{path}: comment-based sops rules cannot be checked")
    rules = rules or {"unencrypted_suffix": "_unencrypted"}
    try:
        compiled = {key: re.compile(value) for key, value in rules.items() if key.endswith("regex")}
    except re.error:
        return SopsCheck(problems=(*problems, "a sops regex rule does not compile"))
    plaintext = [dotted for dotted, keys, value in _leaves(data) if keys[0] != "sops"
                 and _should_be_encrypted(keys, rules, compiled) and not (isinstance(value, str) and ENC_VALUE.match(value))]
    return SopsCheck(problems=tuple(problems), plaintext=tuple(plaintext))


def _should_be_encrypted(keys: list[str], rules: dict[str, str], compiled: dict[str, re.Pattern]) -> bool:
    """sops' Tree.shouldBeEncrypted for key rules, in sops' order."""
    encrypted = True
    if "unencrypted_suffix" in rules and any(k.endswith(rules["unencrypted_suffix"]) for k in keys):
        encrypted = False
    if "encrypted_suffix" in rules:
        encrypted = any(k.endswith(rules["encrypted_suffix"]) for k in keys)
    if "unencrypted_regex" in compiled and any(compiled["unencrypted_regex"].search(k) for k in keys):
        encrypted = False
    if "encrypted_regex" in compiled:
        encrypted = any(compiled["encrypted_regex"].search(k) for k in keys)
    return encrypted


def _leaves(node: Any, dotted: str = "", keys: tuple[str, ...] = ()) -> Iterator[tuple[str, list[str], Any]]:
    """(dotted path, the keys on the path — list indexes are not keys in sops —, leaf value)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{dotted}.{key}" if dotted else str(key), (*keys, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{dotted}[{index}]", keys)
    else:
        yield dotted, list(keys), node
