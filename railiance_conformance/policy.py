"""Policy files: YAML documents validated by JSON Schema before any probe runs.

Example: ``load_document(Path("policies/cluster.yaml"), "cluster-policy")`` -> dict, or
``PolicyError("policies/cluster.yaml: desired.namespaces: 'gitea' is not of type 'array'")``.
The catalog (``policies/controls.yaml``) is the one declaration of a control and of the vars it
reads; a host's vars are checked against the schema built from it (``host_policy_schema``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import yaml

if TYPE_CHECKING:  # jsonschema is imported where a document is validated, not at import
    import jsonschema

from railiance_conformance.paths import DEFAULT_POLICY_DIR, REPO_ROOT  # noqa: F401 - re-exported

SCHEMA_DIR = DEFAULT_POLICY_DIR / "schemas"


class PolicyError(Exception):
    """Bad input: names the file, the field and what was expected."""

    def __init__(self, source: str, field: str, problem: str):
        self.source, self.field, self.problem = source, field, problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # pickled as its three parts (early_inventory sends it from a child process)
        return PolicyError, (self.source, self.field, self.problem)


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``policies/schemas/<name>.schema.json``; ``"host-policy"`` (a host's vars) is
    built from the catalog's ``vars`` (``host_policy_schema``): it has no file of its own."""
    if name == HOST_POLICY:
        return host_policy_schema(DEFAULT_POLICY_DIR)
    doc = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    if name == "control-catalog":  # the layers and severities have one declaration: levels.py
        from railiance_conformance.levels import LAYERS, SEVERITIES

        fields = doc["properties"]["controls"]["items"]["properties"]
        fields["layer"] = {"enum": list(LAYERS)}
        fields["severity"] = {"enum": list(SEVERITIES)}
    return doc


def field_path(path: Any) -> str:
    """``deque(['desired', 'swap_size_gb'])`` -> ``desired.swap_size_gb``; list indexes as [i]."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


_VALIDATORS: dict[int, tuple[Any, Any]] = {}


def _validator(schema_doc: Mapping[str, Any]) -> Any:
    """One compiled validator per schema object (the schemas and the check kinds' schemas live for the run)."""
    found = _VALIDATORS.get(id(schema_doc))
    if found is None or found[0] is not schema_doc:
        import jsonschema  # here, not at import: the inventory's reader (early_inventory's child) needs none

        found = _VALIDATORS[id(schema_doc)] = (schema_doc, jsonschema.Draft202012Validator(schema_doc))
    return found[1]


def validate(data: Any, schema_doc: Mapping[str, Any], *, source: str, prefix: str = "") -> None:
    """Raise PolicyError for the first schema violation, most specific field first."""
    validator = _validator(schema_doc)
    errors = sorted(validator.iter_errors(data), key=lambda e: (-len(e.absolute_path), str(e.absolute_path)))
    if errors:
        import jsonschema

        error = jsonschema.exceptions.best_match(errors) if len(errors) > 1 else errors[0]
        # best_match prefers shallow errors; report the deepest one on the same branch
        deepest = max((e for e in errors if list(e.absolute_path)[: len(error.absolute_path)]
                       == list(error.absolute_path)), key=lambda e: len(e.absolute_path))
        field = field_path(list(deepest.absolute_path))
        if prefix:
            field = f"{prefix}.{field}" if field != "(document)" else prefix
        raise PolicyError(source, field, f"{_describe(deepest)}")


def _describe(error: "jsonschema.ValidationError") -> str:
    if error.validator == "additionalProperties":
        return f"{error.message} (allowed: {', '.join(sorted(error.schema.get('properties', {})))})"
    if error.validator in ("oneOf", "anyOf"):
        options = "; or ".join(s.get("description") or _short(s) for s in error.validator_value)
        return f"{error.instance!r} is not valid: expected {options}"
    return error.message


def _short(schema_part: Mapping[str, Any]) -> str:
    if "$ref" in schema_part:
        return schema_part["$ref"].rsplit("/", 1)[-1]
    return ", ".join(f"{k}={v!r}" for k, v in schema_part.items())


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
                    _merged(stack[-1][4], anchor_keys.get(event.anchor, {}), event)
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
                anchor, count = None, sizes.get(event.anchor, 1)
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
    mark = event.start_mark
    first = mapping[2].get(key)
    if first is not None:
        raise PolicyError(source, f"line {mark.line + 1}, column {mark.column + 1}",
                          f"duplicate key {value!r} (first at line {first}): refused, a YAML reader would keep "
                          f"only the last one and silently drop the other")
    mapping[2][key] = mark.line + 1


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
        _merged(mapping, anchor_keys.get(event.anchor, {}), event)
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


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; syntax errors become PolicyError with line and column (bounded, as above)."""
    return read_yaml_file(path)


def load_document(path: Path, schema_name: str) -> dict[str, Any]:
    """Read and validate one policy file against ``schemas/<schema_name>.schema.json``."""
    data = read_yaml(path)
    validate(data, schema(schema_name), source=str(path))
    return data


@dataclass(frozen=True, slots=True)
class Control:
    """The immutable definition of one control (kube-bench style: data, not code)."""

    id: str
    task: str
    layer: str
    severity: str
    title: str
    remediation: str
    pending: str = ""
    # param of the control's Then sentence -> the Ansible var (or "{var}" template) that overrides it per host
    vars: Mapping[str, str] = field(default_factory=dict)
    source: str = ""                                        # "policies/controls.yaml:12": the entry
    var_sources: Mapping[str, str] = field(default_factory=dict)  # param -> "policies/controls.yaml:14"


@dataclass(frozen=True, slots=True)
class Catalog:
    workplan: str
    controls: Mapping[str, Control]
    # every Ansible var a control reads -> the JSON Schema of its value (the catalog's top-level "vars")
    vars: Mapping[str, Any] = field(default_factory=dict)
    defs: Mapping[str, Any] = field(default_factory=dict)  # the shared types the vars' "$ref"s name

    def __getitem__(self, control_id: str) -> Control:
        try:
            return self.controls[control_id]
        except KeyError:
            raise PolicyError("policies/controls.yaml", "controls", f"unknown control id {control_id!r}") from None

    def task_id(self, control: Control) -> str:
        """``RAIL-HO-WP-0004-T01``"""
        return f"{self.workplan}-{control.task}"


HOST_POLICY = "host-policy"


def var_names(var: str) -> list[str]:
    """The Ansible vars a catalog ``vars`` value names: ``"swap_file"`` -> ``["swap_file"]``,
    ``"user-{operator_uid}.slice"`` -> ``["operator_uid"]``."""
    import string

    return [f for _, f, _, _ in string.Formatter().parse(var) if f] if "{" in var else [var]


def yaml_lines(text: str) -> dict[tuple, int]:
    """The 1-based line of every node of a YAML document by its path: ``("controls", 3, "vars", "size_gib")``
    -> the line of that key. Read from PyYAML's node graph (``yaml.compose``), which keeps each node's mark."""
    lines: dict[tuple, int] = {}

    def walk(node: Any, path: tuple) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    root = yaml.compose(text, Loader=SAFE_LOADER)
    if root is not None:
        walk(root, ())
    return lines


def load_catalog(policy_dir: Path) -> Catalog:
    """``policy_dir/controls.yaml`` validated, every control with the line of its entry.

    Raises PolicyError naming ``controls.yaml:LINE`` for a duplicate id, a control's ``vars`` naming a
    var not declared under the top-level ``vars`` (with its type), a declared var no control reads,
    or a declared type that is not a JSON Schema. (A param the control's check kind does not have is
    refused by ``vocabulary.load_specs``, which knows the kind.)"""
    path = policy_dir / "controls.yaml"
    doc = load_document(path, "control-catalog")
    lines = yaml_lines(path.read_text(encoding="utf-8"))

    def where(*at: Any) -> str:
        return f"{path}:{lines.get(at, 1)}"

    declared = doc.get("vars") or {}
    used: set[str] = set()
    controls: dict[str, Control] = {}
    for index, item in enumerate(doc["controls"]):
        if item["id"] in controls:
            raise PolicyError(where("controls", index, "id"), f"controls[{index}].id", f"duplicate control id {item['id']!r}")
        for param, var in (item.get("vars") or {}).items():
            for name in var_names(var):
                if name not in declared:
                    raise PolicyError(where("controls", index, "vars", param), f"controls[{index}].vars.{param}",
                                      f"unknown var {name!r} (control {item['id']}): declare it with the JSON Schema "
                                      f"of its value under the catalog's top-level 'vars' (declared: "
                                      f"{', '.join(sorted(declared)) or 'none'})")
                used.add(name)
        controls[item["id"]] = Control(**item, source=where("controls", index),
                                       var_sources={p: where("controls", index, "vars", p) for p in item.get("vars") or {}})
    for name in declared:
        if name not in used:
            raise PolicyError(where("vars", name), f"vars.{name}", "declared, but no control's 'vars' reads it "
                                                                   "(remove it, or name it in a control's vars)")
    import jsonschema

    defs = doc.get("$defs") or {}
    for section, types in (("$defs", defs), ("vars", declared)):
        for name, type_schema in types.items():
            try:
                jsonschema.Draft202012Validator.check_schema(type_schema)
            except jsonschema.SchemaError as exc:
                raise PolicyError(where(section, name), f"{section}.{name}", f"not a JSON Schema: {exc.message}") from None
            for ref in _refs(type_schema):  # a typo in "#/$defs/NAME" fails here, not at a host's value
                if not ref.startswith("#/$defs/") or ref.removeprefix("#/$defs/") not in defs:
                    raise PolicyError(where(section, name), f"{section}.{name}", f"$ref {ref!r} names no entry of the "
                                      f"catalog's $defs (defined: {', '.join(sorted(defs)) or 'none'})")
    return Catalog(doc["workplan"], controls, MappingProxyType(dict(declared)), MappingProxyType(dict(defs)))


def _refs(node: Any) -> list[str]:
    if isinstance(node, Mapping):
        return [*([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
                *(r for value in node.values() for r in _refs(value))]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def host_policy_document(catalog_doc: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a host's vars, built from a catalog document's ``vars`` and ``$defs``: the
    desired-value schema has no other source (a var reaches a host's desired state only if declared)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://railiance.local/schemas/host-policy.schema.json",
        "title": "Host vars: the Ansible vars of the operators' roles that override a feature's desired values per host",
        "type": "object", "required": ["kind", "version", "desired"], "additionalProperties": False,
        "properties": {"kind": {"const": "HostPolicy"}, "version": {"const": 1}, "desired": {"$ref": "#/$defs/desired"}},
        "$defs": {**(catalog_doc.get("$defs") or {}), "desired": {
            "type": "object", "additionalProperties": False, "properties": dict(catalog_doc.get("vars") or {}),
            "description": "the role vars the suite reads from an inventory's host_vars/group_vars "
                           "(policies/controls.yaml 'vars' declares each and its type)"}},
    }


@cache
def host_policy_schema(policy_dir: Path) -> dict[str, Any]:
    """``host_policy_document`` of ``policy_dir/controls.yaml`` (read without validation: cheap enough
    for the inventory reader; ``load_catalog`` validates the same file before any probe runs)."""
    return host_policy_document(read_yaml(policy_dir / "controls.yaml") or {})


def load_cluster_policy(policy_dir: Path) -> dict[str, Any]:
    """The desired state of the cluster (``policies/cluster.yaml`` -> ``desired``)."""
    return load_document(policy_dir / "cluster.yaml", "cluster-policy")["desired"]


def validate_host_desired(desired: Mapping[str, Any], *, source: str) -> None:
    """Check one host's Ansible vars that the suite reads (their types: the catalog's ``vars``)."""
    validate(dict(desired), schema("host-policy")["$defs"]["desired"] | {"$defs": schema("host-policy")["$defs"]},
             source=source)
