"""Read a workplan: its front matter and its task blocks, in markdown source or web-rendered form.

Example: ``parse_workplan(Path("RAIL-HO-WP-0004-production-readiness.md")).tasks["T09"].prerequisites``
-> ``["T04", "T08"]``.

Two formats are understood:

* markdown source: YAML front matter between ``---`` lines; each task is a heading
  ``### T01 — Title`` followed by its ``id:``/``status:``/… lines, in a ```` ```yaml ```` fence or plain;
* the web rendering (the seed copy): the front matter shown as a line of comma-separated keys,
  a line of the same keys and a line of values, then task blocks as plain ``id:`` lines.

Prerequisites are the task ids (``T04``) named on a task's ``Pre-condition:`` lines; ids of other
workplans (``CUST-WP-0011-T01``) are not. Malformed input raises ``ValueError`` naming the file and
what is missing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from railiance_conformance.policy import YAML_MAX_BYTES, PolicyError, check_yaml_bounds

_WP_ID = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-WP-\d+$")
_TASK_ID_LINE = re.compile(r"""^\s*id:\s*["']?(?P<id>[A-Z][A-Z0-9-]*-(?P<short>T\d{2,}))["']?\s*$""")
_TASK_HEADING = re.compile(r"^\s*(?:#{1,6}\s*)?(?P<short>T\d{2,})\b\s*[—–:.\-]*\s*(?P<title>.*?)\s*#*\s*$")
_PRECONDITION = re.compile(r"^\s*(?:[-*•]\s*)?(?:\*\*|__)?pre-?conditions?(?:\*\*|__)?\s*:(?:\*\*|__)?(?P<text>.*)$",
                           re.IGNORECASE)
_SHORT_REF = re.compile(r"(?<![\w-])T\d{2,}(?![\w-])")
_KEY_VALUE = re.compile(r"^\s*[A-Za-z_][\w-]*:(?:\s|$)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_DONE_WHEN = re.compile(r"^\s*(?:[-*•]\s*)?(?:\*\*|__)?done when(?:\*\*|__)?\s*:(?:\*\*|__)?\s*(?P<text>.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Task:
    """One task block: ``Task(id="RAIL-HO-WP-0004-T09", short="T09", status="todo", needs_human=True, ...)``."""

    id: str
    short: str
    title: str
    status: str
    needs_human: bool = False
    intervention_note: str = ""
    prerequisites: list[str] = field(default_factory=list)
    done_when: tuple[str, ...] = ()   # the "Done when:" line's clauses (done_when_clauses)


@dataclass(frozen=True)
class Workplan:
    """A parsed workplan; ``tasks`` is keyed by short id (``"T01"``) in file order."""

    id: str
    status: str
    supersedes: list[str]
    tasks: dict[str, Task]
    title: str = ""
    path: str = ""


def parse_workplan(path: Path) -> Workplan:
    """``parse_workplan(Path("wp.md")).tasks["T01"].status`` -> ``"done"``."""
    path = Path(path)
    lines = _read(path).splitlines()
    front = _front_matter(lines, path)
    wp_id = _required(front, "id", path)
    if not _WP_ID.match(wp_id):
        raise ValueError(f"{path}: front matter id {wp_id!r} is not a workplan id (like RAIL-HO-WP-0004)")
    tasks = _tasks(lines, wp_id, path)
    if not tasks:
        raise ValueError(f"{path}: no task blocks (no 'id: {wp_id}-Tnn' lines)")
    return Workplan(id=wp_id, status=_required(front, "status", path), supersedes=_id_list(front.get("supersedes")),
                    tasks=tasks, title=str(front.get("title") or ""), path=str(path))


def read_front_matter(path: Path) -> dict[str, Any]:
    """Only the front matter: ``read_front_matter(Path("RAIL-PL-WP-0001-platform-baseline.md"))["status"]``."""
    path = Path(path)
    return _front_matter(_read(path).splitlines(), path)


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > YAML_MAX_BYTES:
            raise ValueError(f"{path}: refused: {path.stat().st_size} bytes, more than {YAML_MAX_BYTES}")
        # a UTF-8 byte-order mark before the front matter is no part of the text: PyYAML's reader and
        # every front-matter reader drop it (yaml/reader.py determine_encoding; YAML 1.2 §5.2)
        return path.read_text(encoding="utf-8").removeprefix("\ufeff")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read workplan: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None


def _required(front: dict[str, Any], key: str, path: Path) -> str:
    value = front.get(key)
    if value in (None, ""):
        raise ValueError(f"{path}: front matter has no {key!r}")
    return str(value)


def _id_list(value: Any) -> list[str]:
    if value in (None, "", "-", "null", "~"):
        return []
    items = value if isinstance(value, list) else re.split(r"[,\s]+", str(value))
    return [str(item).strip() for item in items if str(item).strip()]


def _front_matter(lines: list[str], path: Path) -> dict[str, Any]:
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].strip() == "---":
        end = next((i for i in range(first + 1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            raise ValueError(f"{path}: front matter opened with '---' on line {first + 1} is never closed")
        text = "\n".join(lines[first + 1:end])
        try:
            check_yaml_bounds(text, f"{path} (front matter)")
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {first + 2 + mark.line})" if mark else ""
            raise ValueError(f"{path}: front matter is not valid YAML{where}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: front matter is not a mapping of keys to values")
        return data
    return _rendered_front_matter(lines, path)


def _rendered_front_matter(lines: list[str], path: Path) -> dict[str, Any]:
    """The web rendering: ``id, type, title, ...`` / ``id type title ...`` / the values line."""
    header = next((i for i, line in enumerate(lines) if re.fullmatch(r"\s*id(\s*,\s*[\w-]+)+\s*", line)), None)
    if header is None:
        raise ValueError(f"{path}: no front matter (neither a '---' block nor a rendered 'id, type, …' header)")
    keys = [key.strip() for key in lines[header].split(",")]
    rest = [line for line in lines[header + 1:] if line.strip()]
    if rest and rest[0].split() == keys:
        rest = rest[1:]  # the table header repeats the keys
    if not rest:
        raise ValueError(f"{path}: rendered front matter has keys but no values line")
    tokens = rest[0].split()
    if len(tokens) == len(keys):
        values = tokens
    elif len(tokens) > len(keys) and "title" in keys:  # the title is the one field with spaces
        at, after = keys.index("title"), len(keys) - keys.index("title") - 1
        values = tokens[:at] + [" ".join(tokens[at:len(tokens) - after])] + tokens[len(tokens) - after:]
    else:
        raise ValueError(f"{path}: rendered front matter: {len(tokens)} values cannot be matched to {len(keys)} keys")
    return dict(zip(keys, values, strict=True))


def _tasks(lines: list[str], wp_id: str, path: Path) -> dict[str, Task]:
    starts: list[tuple[int, re.Match, bool]] = []  # (line index, id match, inside a fence)
    in_fence = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = _TASK_ID_LINE.match(line)
        if match:
            starts.append((index, match, in_fence))
    tasks: dict[str, Task] = {}
    for number, (index, match, fenced) in enumerate(starts):
        if not match["id"].startswith(wp_id + "-"):
            raise ValueError(f"{path}: line {index + 1}: task id {match['id']} does not belong to workplan {wp_id}")
        short = match["short"]
        if short in tasks:
            raise ValueError(f"{path}: line {index + 1}: task {match['id']} appears twice")
        block_end, block = _block(lines, index, fenced, path)
        title = _heading(lines, index, short)[1]
        next_start = starts[number + 1][0] if number + 1 < len(starts) else len(lines)
        body_end = _heading(lines, next_start, starts[number + 1][1]["short"])[0] if number + 1 < len(starts) else next_start
        tasks[short] = _task(match["id"], short, title, block, lines[block_end:body_end], path, index)
    return tasks


def _block(lines: list[str], start: int, fenced: bool, path: Path) -> tuple[int, dict[str, Any]]:
    """The task's key/value lines: the whole fence, or the run of ``key: value`` lines from ``id:``."""
    end = start
    while end < len(lines) and not _FENCE.match(lines[end]) and (fenced or _KEY_VALUE.match(lines[end])):
        end += 1
    text = "\n".join(lines[start:end])
    try:
        check_yaml_bounds(text, f"{path} (task block at line {start + 1})")
    except PolicyError as exc:
        raise ValueError(str(exc)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):  # a plain line that is not YAML (an unquoted ': '): take it literally
        data = {}
        for line in lines[start:end]:
            key, _, value = line.partition(":")
            data[key.strip()] = value.strip().strip("\"'")
    return end, data


def _heading(lines: list[str], index: int, short: str) -> tuple[int, str]:
    """The ``T01 — Title`` line above a task's ``id:`` line (skipping blanks and a fence opener)."""
    at = index - 1
    while at >= 0 and (not lines[at].strip() or _FENCE.match(lines[at])):
        at -= 1
    match = _TASK_HEADING.match(lines[at]) if at >= 0 else None
    if match and match["short"] == short:
        return at, match["title"]
    return index, ""


def _task(task_id: str, short: str, title: str, block: dict[str, Any], body: list[str], path: Path,
          index: int) -> Task:
    where = f"{path}: task {task_id} (line {index + 1})"
    title = title or str(block.get("title") or "")
    if not title:
        raise ValueError(f"{where}: no title (no '{short} — …' heading above it and no title: key)")
    status = block.get("status")
    if status in (None, ""):
        raise ValueError(f"{where}: no status")
    needs_human = block.get("needs_human", False)
    if isinstance(needs_human, str) and needs_human.lower() in ("true", "yes", "false", "no"):
        needs_human = needs_human.lower() in ("true", "yes")
    if not isinstance(needs_human, bool):
        raise ValueError(f"{where}: needs_human is {needs_human!r}, expected true or false")  # noqa: TRY004
    prerequisites: list[str] = []
    declared = block.get("prerequisites") or block.get("depends_on") or []
    texts = [str(d) for d in (declared if isinstance(declared, list) else [declared])]
    texts += [m["text"] for m in map(_PRECONDITION.match, body) if m]
    for text in texts:
        for ref in _SHORT_REF.findall(text):
            if ref != short and ref not in prerequisites:
                prerequisites.append(ref)
    done_when = next((done_when_clauses(m["text"]) for m in map(_DONE_WHEN.match, body) if m), ())
    return Task(id=task_id, short=short, title=title, status=str(status), needs_human=needs_human,
                intervention_note=str(block.get("intervention_note") or ""), prerequisites=prerequisites,
                done_when=done_when)


def done_when_clauses(text: str) -> tuple[str, ...]:
    """A task's "Done when:" text -> its clauses: the first sentence, split at ``;`` (or, without one, at
    ``,``/``, and``); later sentences are notes (T09's "Permanent WSL2 retirement is out of scope …"), not
    promises. ``done_when_clauses("Convergence runs; free -h shows 4 GB swap.")`` ->
    ``("Convergence runs", "free -h shows 4 GB swap")``."""
    text = re.sub(r"[*_`]{2,}", "", text).strip()
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0].strip().rstrip(".").strip()
    parts = first.split(";") if ";" in first else re.split(r",\s*(?:and\s+)?", first)
    return tuple(part.strip() for part in parts if part.strip())
