"""Goss check kind: railiance-infra keeps a Goss test for each value a task promises (T01, T02).

The workplan's Done-when lines say "Goss verify passes" (T01) and "Goss test for nproc limit added"
(T02). The suite does not run goss on the host (it verifies the same values itself, read-only);
it checks that the operators' goss files test the stated values, so ``make verify`` would catch
their drift too. Example: ``CHECK_KINDS["repo.goss.tests"].evaluate({"railiance-infra": Path(...)},
{"repo": "railiance-infra", "tests": [{"kernel_param": "vm.swappiness", "value": 10}]})`` -> ``Outcome(PASS, ...)``.

Goss files are the checkout's ``goss.yaml``/``goss.yml``, ``*.goss.yaml``/``*.goss.yml`` and every
``*.yaml``/``*.yml`` under a ``goss/`` directory (so a ``gossfile:`` include is read too). What counts
as a test of a value (goss resource types, https://goss.readthedocs.io/en/stable/gossfile/):

* a file size: ``file: {/swapfile: {size: 4294967296}}`` (``size`` an integer, numeric string or ``{eq: N}``);
* a kernel parameter: ``kernel-param: {vm.swappiness: {value: "10"}}`` (goss compares strings);
* a user's nproc limit, soft and hard each: a ``command`` whose command names the user and
  ``ulimit -u``/``-Su`` (soft) or ``ulimit -Hu`` (hard), with the value in its ``stdout``
  expectation; or a ``file`` under /etc/security/limits.conf / limits.d whose ``contents``/``contains``
  patterns hold ``USER soft|hard|- nproc VALUE``.

A goss file that is not YAML (a Go template, ``{{ .Vars.x }}``) is named in the evidence; a repo
not given is a could-not-verify (ERROR).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from railiance_conformance.controls.grammar import Params
from railiance_conformance.finding import Outcome
from railiance_conformance.policy import YAML_MAX_BYTES
from railiance_conformance.resources.repo_files import repo_files
from railiance_conformance.vocabulary import check_kind

GIB = 1024 ** 3

_FILE_ITEM = r"(?P<path>/[A-Za-z0-9._/@+-]+) is (?P<size_gib>\d+) GiB"
_PARAM_ITEM = r"(?P<key>[a-z0-9_]+(?:\.[a-z0-9_]+)+) is (?P<value>-?\d+)"
_NPROC_ITEM = r"(?P<user>[a-z_][a-z0-9_-]*)'s nproc is soft (?P<soft>\d+) and hard (?P<hard>\d+)"
_ITEM = re.sub(r"\?P<\w+>", "?:", rf"(?:{_FILE_ITEM}|{_PARAM_ITEM}|{_NPROC_ITEM})")  # the items, ungrouped
ITEM_PATTERNS = (re.compile(_FILE_ITEM), re.compile(_PARAM_ITEM), re.compile(_NPROC_ITEM))


def _items(text: str) -> list[dict[str, Any]]:
    """``"/swapfile is 4 GiB; vm.swappiness is 10"`` -> ``[{"file": "/swapfile", "size_gib": 4}, {...}]``."""
    out = []
    for part in text.split("; "):
        file, param, nproc = (p.fullmatch(part) for p in ITEM_PATTERNS)
        if file:
            out.append({"file": file["path"], "size_gib": int(file["size_gib"])})
        elif param:
            out.append({"kernel_param": param["key"], "value": int(param["value"])})
        elif nproc:
            out.append({"nproc_user": nproc["user"], "soft": int(nproc["soft"]), "hard": int(nproc["hard"])})
    return out


def goss_files(files: list[str]) -> list[str]:
    """The goss files among a checkout's files (see the module docstring)."""
    def is_goss(path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        yaml_file = name.endswith((".yaml", ".yml"))
        return name in ("goss.yaml", "goss.yml") or name.endswith((".goss.yaml", ".goss.yml")) or \
            (yaml_file and "goss" in path.split("/")[:-1])
    return [f for f in files if is_goss(f)]


def _number(value: Any) -> int | None:
    if isinstance(value, Mapping):
        value = value.get("eq", value.get("equal"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _mentions(text: str, number: int) -> bool:
    return re.search(rf"(?<![\d.]){number}(?![\d.])", text) is not None


def _tests_file(doc: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    entry = (doc.get("file") or {}).get(item["file"])
    return isinstance(entry, Mapping) and _number(entry.get("size")) == item["size_gib"] * GIB


def _tests_param(doc: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    entry = (doc.get("kernel-param") or {}).get(item["kernel_param"])
    return isinstance(entry, Mapping) and str(entry.get("value", "")).strip() == str(item["value"])


def _nproc_halves(doc: Mapping[str, Any], user: str, soft: int, hard: int) -> set[str]:
    """Which halves (``soft``, ``hard``) of the user's nproc limit this goss document tests."""
    found: set[str] = set()
    for name, entry in (doc.get("command") or {}).items():
        entry = entry if isinstance(entry, Mapping) else {}
        command = str(entry.get("exec") or name)
        if not re.search(rf"(?<![\w-]){re.escape(user)}(?![\w-])", command):
            continue
        stdout = json.dumps(entry.get("stdout", ""))
        if re.search(r"ulimit\s+-(?:S?u|uS)\b", command) and _mentions(stdout, soft):
            found.add("soft")
        if re.search(r"ulimit\s+-(?:Hu|uH)\b", command) and _mentions(stdout, hard):
            found.add("hard")
    for path, entry in (doc.get("file") or {}).items():
        if not str(path).startswith("/etc/security/limits") or not isinstance(entry, Mapping):
            continue
        patterns = [_blanks(str(p)) for key in ("contents", "contains") for p in _strings(entry.get(key))]
        for half, number in (("soft", soft), ("hard", hard)):
            if any(re.search(rf"(?<![\w-]){re.escape(user)} +(?:{half}|-) +nproc +{number}(?!\d)", p) for p in patterns):
                found.add(half)
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _blanks(pattern: str) -> str:
    """A goss content pattern (``/^tegwick\\s+soft\\s+nproc\\s+512/``) with its blank matchers as spaces."""
    return re.sub(r"(?:\\s[+*]?|\\t[+*]?|\[\[:space:\]\][+*]?|[ \t]+)+", " ", pattern)


@check_kind("repo.goss.tests", rf"the goss files of (?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*) test (?P<tests>{_ITEM}(?:; {_ITEM})*)",
            target="repo", convert=lambda g: {"repo": g["repo"], "tests": _items(g["tests"])},
            schema={"required": ["repo", "tests"],
                    "properties": {"tests": {"type": "array", "minItems": 1, "items": {"type": "object", "oneOf": [
                        {"required": ["file", "size_gib"]}, {"required": ["kernel_param", "value"]},
                        {"required": ["nproc_user", "soft", "hard"]}]}}}})
def goss_tests(repos: Mapping[str, Path], params: Params) -> Outcome:
    """The repo's goss files test each stated value (a file's size, a kernel parameter, a user's soft and
    hard nproc limit), as goss resources would: which file tests which value is the evidence."""
    name = params["repo"]
    path = repos.get(name)
    expected = {_label(item): "tested" for item in params["tests"]}
    if path is None or not Path(path).is_dir():
        return Outcome.error(f"no checkout of {name}" + (f" at {path}" if path is not None else " given"),
                             expected=expected)
    files, _ = repo_files(Path(path))
    docs: dict[str, Mapping[str, Any]] = {}
    unreadable = []
    for relative in goss_files(files):
        try:
            text = (Path(path) / relative).read_text(encoding="utf-8")[:YAML_MAX_BYTES]
            doc = yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            unreadable.append(relative)
            continue
        if isinstance(doc, Mapping):
            docs[relative] = doc
    observed: dict[str, str] = {}
    where: dict[str, list[str]] = {}
    for item in params["tests"]:
        label = _label(item)
        if "file" in item:
            hits = [f for f, d in docs.items() if _tests_file(d, item)]
        elif "kernel_param" in item:
            hits = [f for f, d in docs.items() if _tests_param(d, item)]
        else:
            halves = {f: _nproc_halves(d, item["nproc_user"], item["soft"], item["hard"]) for f, d in docs.items()}
            covered = set().union(*halves.values()) if halves else set()
            hits = [f for f, h in halves.items() if h] if covered == {"soft", "hard"} else []
            if covered and not hits:
                observed[label] = f"only the {' and '.join(sorted(covered))} limit is tested"
                continue
        observed[label] = "tested" if hits else "no goss test"
        where[label] = hits
    evidence = {"goss_files": sorted(docs), "tested_in": where}
    if unreadable:
        evidence["not_yaml"] = unreadable  # a Go-templated goss file cannot be read statically
    reason = "" if docs else f"{name} has no goss file (goss.yaml, *.goss.yaml or goss/*.yaml)"
    return Outcome.compare(expected, observed, reason=reason, evidence=evidence)


def _label(item: Mapping[str, Any]) -> str:
    if "file" in item:
        return f"{item['file']} is {item['size_gib']} GiB"
    if "kernel_param" in item:
        return f"{item['kernel_param']} is {item['value']}"
    return f"{item['nproc_user']}'s nproc is soft {item['soft']} and hard {item['hard']}"
