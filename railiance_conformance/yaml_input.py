"""Input files read safely: ``PolicyError`` (bad input, naming file, field and problem) and YAML parsed
within bounds (size, nesting depth, aliases, expanded nodes) and without duplicate keys, before
anything walks the data. Example: ``read_yaml_file(Path("policies/waivers.yaml"))`` -> the document,
or ``PolicyError("waivers.yaml: line 3, column 1: duplicate key 'expires' ...")``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class PolicyError(Exception):
    """Bad input: names the file, the field and what was expected."""

    def __init__(self, source: str, field: str, problem: str):
        self.source, self.field, self.problem = source, field, problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # pickled as its three parts (the inventory reader sends it from a child process)
        return PolicyError, (self.source, self.field, self.problem)


# Bounds for every YAML file the suite reads (policy, waivers, inventory vars, workplan front
# matter). The real files are a few KiB with no aliases; the bounds refuse a "billion laughs"
# (nested aliases that expand to billions of nodes while the file stays tiny) or a pathologically
# deep document in well under a second, before anything walks the data.
YAML_MAX_BYTES = 4 * 1024 * 1024
YAML_MAX_DEPTH = 64
YAML_MAX_NODES = 200_000  # scalars and collections after every alias is expanded
YAML_MAX_ALIASES = 1_000
# libyaml's parser when PyYAML was built with it (Debian's and PyPI's wheels are): ~10x faster than
# the pure-Python one, and the same safe constructors; pure Python otherwise.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_yaml_bounds(text: str, source: str, *, loader: type = SAFE_LOADER) -> None:
    """Raise PolicyError unless ``text`` stays within the bounds above (size, nesting depth, alias
    count, and node count with every alias expanded) and has no duplicate mapping key (naming line,
    column and key). Reads only the event stream: no node graph
    is built, nothing is expanded, so a hostile file costs time linear in its size.
    ``check_yaml_bounds("a: &x [1]\nb: *x", "f.yaml")`` -> None."""
    if len(text) > YAML_MAX_BYTES:
        raise PolicyError(source, "", f"refused: {len(text)} characters, more than {YAML_MAX_BYTES} "
                                      f"(a policy or inventory file is a few KiB)")
    sizes: dict[str, int] = {}  # anchor -> expanded node count of the anchored node
    # anchor of a mapping -> {key: the anchor of the mapping that sets it} (what "<<: *anchor" brings)
    anchor_keys: dict[str, dict] = {}
    # open collections: [anchor, node count so far, keys seen (mappings) or None, nodes,
    #                    mappings: their merge state; sequences: the mapping whose "<<" they are, or None]
    stack: list[list] = []
    total = aliases = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            merge_list_of = None
            if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)) \
                    and stack:
                if stack[-1][2] is not None:
                    _check_key(stack[-1], event, source)
                    merge_list_of = _track_merge(stack[-1], event, anchor_keys)
                elif stack[-1][4] is not None and isinstance(event, yaml.AliasEvent):  # <<: [*a, *b]
                    _merged(stack[-1][4], anchor_keys.get(event.anchor or "", {}), event)
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                is_mapping = isinstance(event, yaml.MappingStartEvent)
                stack.append([event.anchor, 1, {} if is_mapping else None, 0, {} if is_mapping else merge_list_of])
                if len(stack) > YAML_MAX_DEPTH:
                    raise _bound(source, event, f"nested deeper than {YAML_MAX_DEPTH} levels")
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                entry = stack.pop()
                anchor, count = entry[:2]
                if entry[2] is not None:
                    _check_merges(entry, source)
                    if anchor is not None:
                        anchor_keys[anchor] = {**{k: origin for k, (_, origin) in entry[4].get("sources", {}).items()},
                                               **{k: anchor for k in entry[2]}}
            elif isinstance(event, yaml.ScalarEvent):
                anchor, count = event.anchor, 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > YAML_MAX_ALIASES:
                    raise _bound(source, event, f"more than {YAML_MAX_ALIASES} aliases")
                anchor, count = None, sizes.get(event.anchor or "", 1)
            else:
                continue
            if anchor is not None:
                sizes[anchor] = count
            if stack:
                stack[-1][1] += count
            else:
                total += count
            if total + sum(entry[1] for entry in stack) > YAML_MAX_NODES:
                raise _bound(source, event, f"expands to more than {YAML_MAX_NODES} nodes (nested aliases: "
                                            f"a 'billion laughs' document?)")
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):  # libyaml refuses deep nesting while scanning ahead of the events
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise PolicyError(source, where, f"refused: nested deeper than {YAML_MAX_DEPTH} levels") from None
        return  # the parser's own error, with its position, comes from the real load
    except RecursionError:
        raise PolicyError(source, "", "refused: nested too deeply to parse") from None


_KEY_RESOLVER = yaml.resolver.Resolver()
_KEY_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _check_key(mapping: list, event, source: str) -> None:
    """``event`` is the next node of an open mapping: when it is a key (every other node), refuse a key
    the mapping already has. YAML 1.2 requires keys to be unique; PyYAML and libyaml keep the last one
    silently, so a reviewer who reads the first would approve something else. Keys compare by value
    as the loader builds them and its dict compares them (``a``, ``"a"``, ``'a'`` and ``!!str a`` are one
    key; ``1``, ``0x1``, ``!!int "1"`` and ``true`` too, as Python's ``1 == True``); the
    merge key ``<<`` may repeat."""
    position = mapping[3]
    mapping[3] += 1
    if position % 2 or not isinstance(event, yaml.ScalarEvent):
        return
    value = event.value
    if event.implicit[0] and value == "<<":
        return
    if event.implicit[0] and not event.style:
        tag = _KEY_RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
    elif event.tag and event.tag != "!":
        tag = event.tag  # "!!str expires" is the key "expires"; "!!int 1" the key 1
    else:
        tag = "tag:yaml.org,2002:str"
    try:  # the key as the loader builds it, compared as its dict does (so 1, 0x1 and true are one key)
        key: Any = _KEY_CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, value))
        hash(key)
    except (yaml.YAMLError, TypeError, ValueError):
        key = (tag, value)
    mark = event.start_mark  # a parsed event always has one
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    first = mapping[2].get(key)
    if first is not None:
        raise PolicyError(source, f"line {line}, column {column}",
                          f"duplicate key {value!r} (first at line {first}): refused, a YAML reader would keep "
                          f"only the last one and silently drop the other")
    mapping[2][key] = line


def _track_merge(mapping: list, event, anchor_keys: dict[str, dict]) -> list | None:
    """Note a merge key's value in ``mapping`` (whose position _check_key has just advanced): an alias
    brings its mapping's keys; a sequence is returned as a list of aliases whose keys it brings."""
    state = mapping[4]
    if (mapping[3] - 1) % 2 == 0:  # a key
        state["merge_next"] = isinstance(event, yaml.ScalarEvent) and event.implicit[0] and event.value == "<<"
        return None
    if not state.pop("merge_next", False):
        return None
    if isinstance(event, yaml.AliasEvent):
        _merged(mapping, anchor_keys.get(event.anchor or "", {}), event)
    elif isinstance(event, yaml.SequenceStartEvent):
        return mapping
    return None


def _merged(mapping: list, keys: dict, event) -> None:
    """``keys`` ({key: the anchor that sets it}) merged into ``mapping``; one key from two different
    settings is a conflict (the same anchor's value reached twice is not)."""
    sources, conflicts = mapping[4].setdefault("sources", {}), mapping[4].setdefault("conflicts", {})
    for key, origin in keys.items():
        if key in sources and sources[key][1] != origin:
            conflicts.setdefault(key, (event.start_mark.line + 1, event.start_mark.column + 1, sources[key][0]))
        elif key not in sources:
            sources[key] = (event.start_mark.line + 1, origin)


def _check_merges(mapping: list, source: str) -> None:
    """Two merges bringing one key that the mapping does not set itself: which one wins is the
    reader's choice (the merge-key spec, yaml.org/type/merge.html: the earlier in ``<<: [*a, *b]``;
    PyYAML 6 keeps the later; two ``<<`` keys are a duplicate key), so a reviewer cannot tell."""
    for key, (line, column, first) in mapping[4].get("conflicts", {}).items():
        if key not in mapping[2]:
            raise PolicyError(source, f"line {line}, column {column}",
                              f"key {key!r} is merged twice (first at line {first}) and not set here: refused, "
                              f"YAML readers differ on which merge wins; set it in this mapping")


def _bound(source: str, event, problem: str) -> PolicyError:
    mark = event.start_mark
    return PolicyError(source, f"line {mark.line + 1}, column {mark.column + 1}", f"refused: {problem}")


def load_yaml_text(text: str, source: str, *, loader: type = SAFE_LOADER) -> Any:
    """``yaml.load`` with ``loader`` after ``check_yaml_bounds``; a syntax error is PolicyError
    with line and column."""
    check_yaml_bounds(text, source, loader=loader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - loader is SafeLoader or a subclass of it
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise PolicyError(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise PolicyError(source, "", "refused: nested too deeply to parse") from None


def read_yaml_file(path: Path, *, loader: type = SAFE_LOADER) -> Any:
    """Read and parse one YAML file within the bounds; unreadable, too big or bad YAML is PolicyError."""
    try:
        size = Path(path).stat().st_size
        if size > YAML_MAX_BYTES:
            raise PolicyError(str(path), "", f"refused: {size} bytes, more than {YAML_MAX_BYTES}")
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), f"byte {exc.start}", "not UTF-8 text") from None
    return load_yaml_text(text, str(path), loader=loader)


def check_inventory_yaml(inventory: str | Path) -> None:
    """Apply ``check_yaml_bounds`` to every YAML file ansible-core would read for ``inventory``
    (the inventory itself if YAML, every file under it if a directory, and the group_vars/ and
    host_vars/ beside it) before ansible-core's own loader sees them: it has no such bounds.
    PolicyError names the file."""
    root = Path(inventory)
    base = root if root.is_dir() else root.parent
    candidates = [root] if root.is_file() else []
    for directory in ([root] if root.is_dir() else []) + [base / "group_vars", base / "host_vars"]:
        if directory.is_dir():
            candidates += sorted(p for p in directory.rglob("*") if p.is_file())
    for path in candidates:
        if path.suffix not in (".yml", ".yaml", ".json", "") and path != root:
            continue
        try:
            if path.stat().st_size > YAML_MAX_BYTES:
                raise PolicyError(str(path), "", f"refused: {path.stat().st_size} bytes, more than {YAML_MAX_BYTES}")
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # ansible-core names an unreadable file itself
        if path.suffix in (".yml", ".yaml", ".json") or path.parent.name in ("group_vars", "host_vars") \
                or path.parent.parent.name in ("group_vars", "host_vars"):
            check_yaml_bounds(text, str(path))
