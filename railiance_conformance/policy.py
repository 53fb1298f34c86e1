"""Policy files: YAML documents validated by JSON Schema before any probe runs.

Example: ``load_document(Path("policies/hosts.yaml"), "host-policy")`` -> dict, or
``PolicyError("policies/hosts.yaml: desired.swap_size_gb: 'four' is not of type 'integer'")``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY_DIR = REPO_ROOT / "policies"
SCHEMA_DIR = DEFAULT_POLICY_DIR / "schemas"


class PolicyError(Exception):
    """Bad input: names the file, the field and what was expected."""

    def __init__(self, source: str, field: str, problem: str):
        self.source, self.field, self.problem = source, field, problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``policies/schemas/<name>.schema.json``."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def field_path(path: Any) -> str:
    """``deque(['desired', 'swap_size_gb'])`` -> ``desired.swap_size_gb``; list indexes as [i]."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def validate(data: Any, schema_doc: Mapping[str, Any], *, source: str, prefix: str = "") -> None:
    """Raise PolicyError for the first schema violation, most specific field first."""
    validator = jsonschema.Draft202012Validator(schema_doc)
    errors = sorted(validator.iter_errors(data), key=lambda e: (-len(e.absolute_path), str(e.absolute_path)))
    if errors:
        error = jsonschema.exceptions.best_match(errors) if len(errors) > 1 else errors[0]
        # best_match prefers shallow errors; report the deepest one on the same branch
        deepest = max((e for e in errors if list(e.absolute_path)[: len(error.absolute_path)]
                       == list(error.absolute_path)), key=lambda e: len(e.absolute_path))
        field = field_path(list(deepest.absolute_path))
        if prefix:
            field = f"{prefix}.{field}" if field != "(document)" else prefix
        raise PolicyError(source, field, f"{_describe(deepest)}")


def _describe(error: jsonschema.ValidationError) -> str:
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
    """Parse one YAML file; syntax errors become PolicyError with line and column."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise PolicyError(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None


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


@dataclass(frozen=True, slots=True)
class Catalog:
    workplan: str
    controls: Mapping[str, Control]

    def __getitem__(self, control_id: str) -> Control:
        try:
            return self.controls[control_id]
        except KeyError:
            raise PolicyError("policies/controls.yaml", "controls", f"unknown control id {control_id!r}") from None

    def task_id(self, control: Control) -> str:
        """``RAIL-HO-WP-0004-T01``"""
        return f"{self.workplan}-{control.task}"


def load_catalog(policy_dir: Path) -> Catalog:
    path = policy_dir / "controls.yaml"
    doc = load_document(path, "control-catalog")
    controls: dict[str, Control] = {}
    for index, item in enumerate(doc["controls"]):
        if item["id"] in controls:
            raise PolicyError(str(path), f"controls[{index}].id", f"duplicate control id {item['id']!r}")
        controls[item["id"]] = Control(**item)
    return Catalog(doc["workplan"], controls)


def load_host_policy(policy_dir: Path) -> dict[str, Any]:
    """The desired-state defaults for hosts (``policies/hosts.yaml`` -> ``desired``)."""
    return load_document(policy_dir / "hosts.yaml", "host-policy")["desired"]


def load_cluster_policy(policy_dir: Path) -> dict[str, Any]:
    """The desired state of the cluster (``policies/cluster.yaml`` -> ``desired``)."""
    return load_document(policy_dir / "cluster.yaml", "cluster-policy")["desired"]


def validate_host_desired(desired: Mapping[str, Any], *, source: str) -> None:
    """Check one host's merged desired values (policy defaults + inventory vars)."""
    validate(dict(desired), schema("host-policy")["$defs"]["desired"] | {"$defs": schema("host-policy")["$defs"]},
             source=source)
