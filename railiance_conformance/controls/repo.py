"""Static checks of local checkouts of the railiance-* repos: repos + layer map -> Outcome.

Example: ``EVALUATORS["repo.make.targets"]({"railiance-apps": Path("~/railiance-apps"), ...},
load_layer_map(policy_dir))``. ``repos`` maps a repo name to its checkout; a repo the policy needs
but that is not given is a could-not-verify (ERROR) unless something else already drifts.
No recipe is ever run (see ``resources.repo_files``); SOPS files are reported by file and key
path, never by value.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from railiance_conformance.controls import control
from railiance_conformance.finding import Outcome, Status
from railiance_conformance.resources.repo_files import (
    MakeUnavailable,
    check_sops_file,
    markdown_sections,
    matching,
    printed_layers,
    read_make_database,
    repo_files,
)
from railiance_conformance.workplan import read_front_matter

Repos = Mapping[str, Path]
LayerMap = Mapping[str, Any]
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


@control("repo.make.targets")
def make_targets(repos: Repos, desired: LayerMap) -> Outcome:
    expected, observed, errors, counts = {}, {}, [], {}
    for name, targets in desired["repos"]["make_targets"].items():
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
        counts[name] = len(rules)
        expected[name], observed[name] = sorted(targets), sorted(t for t in targets if t in rules)
    return _result(expected, observed, errors, {"targets_in_database": counts, "source": "make -p (no recipe run)"})


SOPS_CONFIG_NAMES = frozenset({".sops.yaml", ".sops.yml"})


@control("repo.sops.encrypted")
def sops_encrypted(repos: Repos, desired: LayerMap) -> Outcome:
    want = "sops metadata with a mac; every leaf ENC[...] unless sops' own rules leave it plain"
    expected, observed, errors, checked, skipped = {}, {}, [], 0, []
    for name in sorted(repos):
        path = _checkout(repos, name, errors)
        if path is None:
            continue
        files, _ = repo_files(path)
        for relative in matching(files, desired["repos"]["sops_patterns"]):
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
    return _result(expected, observed, errors, {"files_checked": checked, "patterns": desired["repos"]["sops_patterns"],
                                                "skipped": skipped})


@control("repo.workplan.superseded")
def workplan_superseded(repos: Repos, desired: LayerMap) -> Outcome:
    expected, observed, errors = {}, {}, []
    for entry in desired["repos"]["superseded_workplans"]:
        path = _checkout(repos, entry["repo"], errors)
        if path is None:
            continue
        found = sorted(path.glob(entry["glob"]))
        if not found:
            expected[f"{entry['repo']}/{entry['glob']}"] = "superseded"
            observed[f"{entry['repo']}/{entry['glob']}"] = "no such workplan"
        for file in found:
            key = f"{entry['repo']}/{file.relative_to(path).as_posix()}"
            try:
                status = str(read_front_matter(file).get("status") or "no status in front matter")
            except ValueError as exc:
                status = f"unreadable front matter: {str(exc).split(': ', 1)[-1]}"
            expected[key], observed[key] = "superseded", status
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


@control("repo.deploy_stack.doc")
def deploy_stack_doc(repos: Repos, desired: LayerMap) -> Outcome:
    cfg = desired["repos"]["deploy_stack"]
    errors: list[str] = []
    path = _checkout(repos, cfg["repo"], errors)
    doc_key, make_key = f"{cfg['repo']}/{cfg['doc']}", f"make {cfg['target']} prints"
    expected = {doc_key: {s["name"]: "present" for s in cfg["sections"]}, make_key: list(cfg["order"])}
    if path is None:
        return _result(expected, expected, errors)
    doc = path / cfg["doc"]
    sections = markdown_sections(doc.read_text(encoding="utf-8", errors="replace")) if doc.is_file() else None
    observed: dict[str, Any] = {doc_key: {s["name"]: "missing: no such file" if sections is None
                                          else _section_state(sections, s) for s in cfg["sections"]}}
    # The recipe is read from make's database and never run: `make -n deploy-stack` would still run
    # its `+` and $(MAKE) lines (and remake makefiles), so "what it prints" is taken from its echo/printf lines.
    try:
        rules = read_make_database(path)
        observed[make_key] = printed_layers(rules, cfg["target"]) if cfg["target"] in rules \
            else f"no {cfg['target']} target"
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


@control("boundary.values.location")
def values_location(repos: Repos, desired: LayerMap) -> Outcome:
    expected, observed, errors = {}, {}, []
    for entry in desired["repos"]["values_location"]:
        home, old = _checkout(repos, entry["repo"], errors), _checkout(repos, entry["moved_from"], errors)
        file, tomb = entry["file"], f"{entry['moved_from']}/{entry['tombstone']}"
        if home is not None:
            key = f"{entry['repo']}/{entry['dir']}/{file}"
            expected[key] = "present"
            observed[key] = "present" if f"{entry['dir']}/{file}" in repo_files(home)[0] else "missing"
        if old is not None:
            key = f"{entry['moved_from']}: copies of {file}"
            expected[key] = []
            observed[key] = [f for f in repo_files(old)[0] if f.rsplit("/", 1)[-1] == file]
            line = f"a line naming {file} → {entry['repo']}"
            expected[tomb] = line
            observed[tomb] = line if _tombstone(old / entry["tombstone"], file, entry["repo"]) else (
                f"no line naming {file} → {entry['repo']}" if (old / entry["tombstone"]).is_file() else "missing")
    return _result(expected, observed, errors)
