"""Repo check kinds: static checks of local checkouts of the railiance-* repos, repos + params -> Outcome.

Each kind is one family of Then sentences (``vocabulary.check_kind``) that states what a repo must
hold (make targets, encrypted files, a front-matter field, a runbook's sections, where a file
lives). Example: ``CHECK_KINDS["repo.make.targets"].evaluate({"railiance-apps": Path("~/railiance-apps"), ...},
{"targets": {"railiance-apps": ["gitea-deploy"]}})``. ``repos`` maps a repo name to its checkout; a
repo a sentence names but that is not given is a could-not-verify (ERROR) unless something else
already drifts.
No recipe is ever run (see ``resources.makefiles``); SOPS files are reported by file and key
path, never by value.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from railiance_conformance.controls.grammar import RELPATH, REPO, Params, and_list
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.resources.makefiles import (
    MakeUnavailable,
    make_prints,
    make_provides,
    printed_layers_in,
    read_make_database,
)
from railiance_conformance.resources.repo_files import markdown_sections, matching, repo_files
from railiance_conformance.resources.sops_files import check_sops_file
from railiance_conformance.vocabulary import check_kind
from railiance_conformance.workplan import read_front_matter

Repos = Mapping[str, Path]
_TARGET = r"[^\s:=#%,;]+"
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?\S", re.MULTILINE)


def _checkout(repos: Repos, name: str, errors: list[str]) -> Path | None:
    path = repos.get(name)
    if path is None or not Path(path).is_dir():
        errors.append(f"no checkout of {name}" + (f" at {path}" if path is not None else " given"))
        return None
    return Path(path)


def _result(expected: Any, observed: Any, errors: list[str], evidence: dict[str, Any] | None = None) -> Outcome:
    """Drift wins over could-not-verify (what did verify is still reported); errors alone are an ERROR."""
    if expected != observed:
        return Outcome(Status.DRIFT, expected, observed, "; ".join(errors), tuple((evidence or {}).items()))
    if errors:
        return Outcome(Status.ERROR, expected, None, "; ".join(errors), tuple((evidence or {}).items()))
    return Outcome(Status.PASS, expected, observed, "", tuple((evidence or {}).items()))


def _targets(text: str) -> dict[str, list[str]]:
    """``"db-deploy and db-status in railiance-platform; deploy-stack in railiance-infra"`` -> by repo."""
    groups = {}
    for group in text.split("; "):
        targets, _, repo = group.rpartition(" in ")
        groups[repo] = and_list(targets)
    return groups


_TARGETS = rf"{_TARGET}(?:(?:, | and ){_TARGET})* in {REPO}"


@check_kind("repo.make.targets", rf"make knows the targets (?P<targets>{_TARGETS}(?:; {_TARGETS})*)", target="repo",
            convert=lambda g: {"targets": _targets(g["targets"])},
            schema={"required": ["targets"], "properties": {"targets": {
                "type": "object", "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": r"^[^\s:=#%]+$"}}}}})
def make_targets(repos: Repos, params: Params) -> Outcome:
    """Each repo's make can make the targets: an explicit rule or a pattern rule (``%-status:``), as
    ``make -q TARGET`` decides it with no recipe run (``resources.makefiles.make_provides``)."""
    expected: dict[str, Any] = {}
    observed: dict[str, Any] = {}
    errors: list[str] = []
    counts: dict[str, int] = {}
    by_pattern: dict[str, list[str]] = {}
    for name, targets in params["targets"].items():
        path = _checkout(repos, name, errors)
        if path is None:
            continue
        try:
            rules = read_make_database(path)
        except FileNotFoundError:
            expected[name], observed[name] = sorted(targets), "no Makefile"
            continue
        except MakeUnavailable as exc:
            errors.append(f"{name}: {exc}")
            continue
        try:
            provided = make_provides(path, list(targets))
        except MakeUnavailable as exc:
            errors.append(f"{name}: {exc}")
            continue
        counts[name] = len(rules)
        by_pattern[name] = sorted(t for t, known in provided.items() if known and t not in rules)
        expected[name], observed[name] = sorted(targets), sorted(t for t, known in provided.items() if known)
    return _result(expected, observed, errors, {"targets_in_database": counts, "made_by_pattern_rules": by_pattern,
                                                "source": "make -p and make -q TARGET (SHELL=/bin/false: no recipe run)"})


SOPS_CONFIG_NAMES = frozenset({".sops.yaml", ".sops.yml"})


@check_kind("repo.sops.encrypted",
            r"every file matching (?P<patterns>\S+(?:(?:, | or )\S+)*) is SOPS-encrypted with a mac and no plaintext value",
            target="repo", convert=lambda g: {"patterns": and_list(g["patterns"])},
            schema={"required": ["patterns"], "properties": {"patterns": {"type": "array", "minItems": 1}}})
def sops_encrypted(repos: Repos, params: Params) -> Outcome:
    """Every tracked file matching the patterns, in every repo, is SOPS-encrypted (reported by key path, never value)."""
    want = "sops metadata with a mac; every leaf ENC[...] unless sops' own rules leave it plain"
    expected: dict[str, Any] = {}
    observed: dict[str, Any] = {}
    errors: list[str] = []
    checked, skipped = 0, []
    for name in sorted(repos):
        path = _checkout(repos, name, errors)
        if path is None:
            continue
        files, _ = repo_files(path)
        for relative in matching(files, params["patterns"]):
            # files that only look like the target: sops' own configuration (.sops.yaml, looked up by
            # sops in the working directory and its parents: config.go configFileName) holds
            # creation_rules and is never encrypted; a gitlink or a tracked file deleted from the
            # working tree is no file to check
            if relative.rsplit("/", 1)[-1] in SOPS_CONFIG_NAMES:
                skipped.append(f"{name}/{relative}: sops' configuration, never encrypted")
                continue
            if not (path / relative).is_file():
                skipped.append(f"{name}/{relative}: not a file in the working tree")
                continue
            checked += 1
            result = check_sops_file(path / relative)
            if result.unverifiable:
                errors.append(f"{name}/{relative}: comment-based sops rules cannot be checked")
            if result.problems or result.plaintext:
                expected[f"{name}/{relative}"] = want
                observed[f"{name}/{relative}"] = {"problems": list(result.problems),
                                                  "plaintext_keys": list(result.plaintext)}
    return _result(expected, observed, errors, {"files_checked": checked, "patterns": list(params["patterns"]),
                                                "skipped": skipped})


@check_kind("repo.front_matter",
            rf"the front matter of (?P<repo>{REPO})/(?P<glob>{RELPATH}) has (?P<field>[A-Za-z_][A-Za-z0-9_-]*) "
            r"(?P<value>\S+)", target="repo", schema={"required": ["repo", "glob", "field", "value"]})
def front_matter(repos: Repos, params: Params) -> Outcome:
    """Every file matching the glob in the repo has the field in its YAML front matter (e.g. status superseded)."""
    expected: dict[str, Any] = {}
    observed: dict[str, Any] = {}
    errors: list[str] = []
    repo, pattern, field, want = params["repo"], params["glob"], params["field"], params["value"]
    path = _checkout(repos, repo, errors)
    if path is not None:
        found = sorted(path.glob(pattern))
        if not found:
            expected[f"{repo}/{pattern}"] = want
            observed[f"{repo}/{pattern}"] = "no such file"
        for file in found:
            key = f"{repo}/{file.relative_to(path).as_posix()}"
            try:
                value = str(read_front_matter(file).get(field) or f"no {field} in front matter")
            except ValueError as exc:
                value = f"unreadable front matter: {str(exc).split(': ', 1)[-1]}"
            expected[key], observed[key] = want, value
    return _result(expected, observed, errors)


def _section_state(sections: list[tuple[int, str, str]], want: Mapping[str, Any]) -> str:
    candidates = [(title, body) for _, title, body in sections if re.search(want["heading"], title, re.IGNORECASE)]
    if not candidates:
        return f"no heading matching /{want['heading']}/"
    problems = []
    for title, body in candidates:
        missing = [k for k in want.get("keywords", [])
                   if not re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", f"{title}\n{body}", re.IGNORECASE)]
        items = len(_LIST_ITEM.findall(body))
        if not missing and items >= want.get("min_list_items", 0):
            return "present"
        problems.append(f"section {title!r}: " + ", ".join(
            ([f"missing {', '.join(missing)}"] if missing else [])
            + ([f"{items} list item(s), expected at least {want['min_list_items']}"]
               if items < want.get("min_list_items", 0) else [])))
    return "; ".join(problems)


_SECTION = r'"(?P<name>[^"]+)" /(?P<heading>[^/]+)/(?: naming (?P<keywords>[^";]+?))?(?: with (?P<min>\d+) list items)?'
_NEXT = r'(?=, and "|, "| and "|$)'


def _sections(text: str) -> list[dict[str, Any]]:
    return [{"name": m["name"], "heading": m["heading"],
             **({"keywords": and_list(m["keywords"])} if m["keywords"] else {}),
             **({"min_list_items": int(m["min"])} if m["min"] else {})}
            for m in re.finditer(_SECTION + _NEXT, text)]


@check_kind("repo.runbook",
            rf"(?P<repo>{REPO})/(?P<doc>{RELPATH}\.md) has the sections (?P<sections>\".+\"?[^;]*); make (?P<target>{_TARGET}) "
            r"prints (?P<order>S[1-5](?:(?:, | and )S[1-5])*) in that order", target="repo",
            convert=lambda g: {"repo": g["repo"], "doc": g["doc"], "sections": _sections(g["sections"]),
                               "target": g["target"], "order": and_list(g["order"])},
            schema={"required": ["repo", "doc", "sections", "target", "order"],
                    "properties": {"sections": {"type": "array", "minItems": 1}}})
def runbook(repos: Repos, params: Params) -> Outcome:
    """A runbook's sections (a heading matching the regex, case-insensitive, whose text down to the next
    heading of the same or a higher level names every keyword and has the list items), and the layers
    a make target prints, in order, as ``make -s TARGET`` prints them (read from ``make -n``'s expanded
    echo/printf lines and for loops over ``$(LAYERS)``; never run)."""
    cfg = params
    errors: list[str] = []
    path = _checkout(repos, cfg["repo"], errors)
    doc_key, make_key = f"{cfg['repo']}/{cfg['doc']}", f"make {cfg['target']} prints"
    expected = {doc_key: {s["name"]: "present" for s in cfg["sections"]}, make_key: list(cfg["order"])}
    if path is None:
        return _result(expected, expected, errors)
    doc = path / cfg["doc"]
    # a UTF-8 BOM is no part of the first line (it would hide a "# heading" there)
    sections = markdown_sections(doc.read_text(encoding="utf-8", errors="replace").removeprefix("\ufeff")) \
        if doc.is_file() else None
    observed: dict[str, Any] = {doc_key: {s["name"]: "missing: no such file" if sections is None
                                          else _section_state(sections, s) for s in cfg["sections"]}}
    # Never run: make -n prints the recipe lines expanded ($(LAYERS) -> S1 … S5) with SHELL=/bin/false, and
    # what they print is read from their echo/printf lines and for loops (resources.makefiles.make_prints).
    try:
        observed[make_key] = printed_layers_in(make_prints(path, cfg["target"]))
    except KeyError:
        observed[make_key] = f"no {cfg['target']} target"
    except FileNotFoundError:
        observed[make_key] = "no Makefile"
    except MakeUnavailable as exc:
        errors.append(f"{cfg['repo']}: {exc}")
        observed[make_key] = expected[make_key]  # unknown, not drift: the error says why
    return _result(expected, observed, errors)


def _tombstone(path: Path, file: str, repo: str) -> bool:
    arrow = r"(?:→|->|=>|⇒|⟶|\bmoved to\b)"
    pattern = re.compile(rf"{re.escape(file)}.*?{arrow}.*?(?<![\w-]){re.escape(repo)}(?![\w-])", re.IGNORECASE)
    return path.is_file() and any(pattern.search(line) for line in path.read_text(errors="replace").splitlines())


@check_kind("repo.file.moved",
            rf"(?P<file>[^\s/,]+) lives in (?P<repo>{REPO})/(?P<dir>{RELPATH}), with no copy left in (?P<moved_from>{REPO}) "
            rf"and a tombstone in (?P<tombstone_repo>{REPO})/(?P<tombstone>{RELPATH})", target="repo",
            schema={"required": ["file", "repo", "dir", "moved_from", "tombstone_repo", "tombstone"]})
def values_location(repos: Repos, params: Params) -> Outcome:
    """A file lives in its layer's repo, no copy of it is left in the repo it moved from, and a
    tombstone line there names it with an arrow to the new repo."""
    expected: dict[str, Any] = {}
    observed: dict[str, Any] = {}
    errors: list[str] = []
    file, repo, moved_from = params["file"], params["repo"], params["moved_from"]
    home, old = _checkout(repos, repo, errors), _checkout(repos, moved_from, errors)
    tomb_repo = params["tombstone_repo"]
    tomb_checkout = old if tomb_repo == moved_from else _checkout(repos, tomb_repo, errors)
    if home is not None:
        key = f"{repo}/{params['dir']}/{file}"
        expected[key] = "present"
        observed[key] = "present" if f"{params['dir']}/{file}" in repo_files(home)[0] else "missing"
    if old is not None:
        key = f"{moved_from}: copies of {file}"
        expected[key] = []
        observed[key] = [f for f in repo_files(old)[0] if f.rsplit("/", 1)[-1] == file]
    if tomb_checkout is not None:
        tomb, line = tomb_checkout / params["tombstone"], f"a line naming {file} → {repo}"
        key = f"{tomb_repo}/{params['tombstone']}"
        expected[key] = line
        observed[key] = line if _tombstone(tomb, file, repo) else (
            f"no line naming {file} → {repo}" if tomb.is_file() else "missing")
    return _result(expected, observed, errors)
