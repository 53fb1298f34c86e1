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

# PolicyError and the bounded YAML reader live in yaml_input; re-exported for the modules that import them from here
from railiance_conformance.yaml_input import (  # noqa: F401 - re-exported
    SAFE_LOADER,
    YAML_MAX_BYTES,
    PolicyError,
    check_yaml_bounds,
    read_yaml_file,
)

SCHEMA_DIR = DEFAULT_POLICY_DIR / "schemas"



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
        import jsonschema  # here, not at import: a run that validates nothing (the early inventory reader) needs none

        found = _VALIDATORS[id(schema_doc)] = (schema_doc, jsonschema.Draft202012Validator(schema_doc))
    return found[1]


def validate(data: Any, schema_doc: Mapping[str, Any], *, source: str, prefix: str = "",
             remember: bool = True) -> None:
    """Raise PolicyError for the first schema violation, most specific field first. A document this exact
    schema found valid before (any run: ``derived_cache``) is valid without importing jsonschema.
    ``remember=False``: the document holds a secret (a vaulted value): neither looked up nor kept, so no
    digest of it is ever written to the cache."""
    known = _valid_key(data, schema_doc) if remember else None
    if known is not None and known in _known_valid():
        return
    validator = _validator(schema_doc)
    errors = sorted(validator.iter_errors(data), key=lambda e: (-len(e.absolute_path), str(e.absolute_path)))
    if not errors and known is not None:
        _remember_valid(known)
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


def _plain_json(value: Any) -> Any:
    """``value`` as exact JSON text parts, or raise TypeError: only dict (str keys), list, str, int, float,
    bool and None, told apart by type (jsonschema reads a tuple, a date or a str subclass otherwise)."""
    kind = type(value)
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise TypeError("a key that is not a str")
        return ["d", sorted((k, _plain_json(v)) for k, v in value.items())]
    if kind is list:
        return ["l", [_plain_json(v) for v in value]]
    if kind in (str, int, float, bool) or value is None:
        return [kind.__name__, value]
    raise TypeError(f"not plain JSON: {kind.__name__}")


def _valid_key(data: Any, schema_doc: Mapping[str, Any]) -> str | None:
    """The memo key of (schema, document): their exact plain-JSON form and the installed jsonschema; None
    when either is not plain JSON (then always validated)."""
    import hashlib

    try:
        text = json.dumps([_plain_json(dict(schema_doc)), _plain_json(data)])
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(f"{_jsonschema_stamp()}\0{text}".encode()).hexdigest()


@cache
def _jsonschema_stamp() -> str:
    import importlib.util

    spec = importlib.util.find_spec("jsonschema")  # found, not imported
    origin = Path(spec.origin).parent if spec is not None and spec.origin else None
    return repr([(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(origin.glob("*.py"))]
                if origin is not None else None)


_VALID: set[str] | None = None  # the keys of documents found valid (derived_cache "validated"), this process
_VALID_FAMILY = "validated"
_VALID_MAX = 4096


def _known_valid() -> set[str]:
    global _VALID
    if _VALID is None:
        from railiance_conformance import derived_cache

        found = derived_cache.load(derived_cache.family(_VALID_FAMILY, []), derived_cache.code_key()[:32])
        _VALID = set(found) if isinstance(found, (set, frozenset)) else set()
    return _VALID


def _remember_valid(key: str) -> None:
    from railiance_conformance import derived_cache

    known = _known_valid()
    if key in known:
        return
    if len(known) >= _VALID_MAX:
        known.clear()
    known.add(key)
    derived_cache.store(derived_cache.family(_VALID_FAMILY, []), derived_cache.code_key()[:32], frozenset(known))


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


def validate_host_desired(desired: Mapping[str, Any], *, source: str, remember: bool = True) -> None:
    """Check one host's Ansible vars that the suite reads (their types: the catalog's ``vars``);
    ``remember=False`` when one of them came from a vault (``validate``)."""
    validate(dict(desired), schema("host-policy")["$defs"]["desired"] | {"$defs": schema("host-policy")["$defs"]},
             source=source, remember=remember)
