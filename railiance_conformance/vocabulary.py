"""The step vocabulary: check kinds, each one family of Gherkin sentences that states a desired state.

A check kind (``check_kind``) declares its sentence (a regular expression with named groups),
``convert`` (groups -> typed params), the params' JSON Schema, the facts (host) or API kinds
(cluster) it reads, and its evaluator. ``load_specs`` reads every feature before any probe runs;
``resolve`` applies a target's inventory vars. Every problem is a ``PolicyError`` naming
``file:line``. Design: docs/architecture.md; the sentences: docs/vocabulary.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from railiance_conformance.policy import PolicyError, validate, var_names

CONTROL_TITLE = re.compile(r"^(?P<id>[a-z][a-z0-9_]*(?:\.[a-z0-9_*]+)+)\s+[—-]\s+")


@dataclass(frozen=True)
class CheckKind:
    """One family of sentences and the check behind it (see the module docstring)."""

    name: str
    target: str                                   # "host" | "cluster" | "repo"
    sentence: re.Pattern[str]
    evaluate: Callable[..., Any]
    convert: Callable[[dict[str, str]], dict[str, Any]]
    schema: Mapping[str, Any]
    facts: Callable[[Mapping[str, Any]], list] | None = None
    reads: Callable[[Mapping[str, Any]], list[str]] | None = None


CHECK_KINDS: dict[str, CheckKind] = {}


def check_kinds() -> Mapping[str, CheckKind]:
    """Every check kind by name (``CHECK_KINDS``), after importing ``railiance_conformance.controls``:
    its ``KIND_MODULES`` is the registry of the modules that declare them."""
    import railiance_conformance.controls  # noqa: F401 - the registry of kind modules

    return CHECK_KINDS


def check_kind(name: str, sentence: str, *, target: str, schema: Mapping[str, Any] | None = None,
               convert: Callable[[dict[str, str]], dict[str, Any]] | None = None,
               facts: Callable[[Mapping[str, Any]], list] | None = None,
               reads: Callable[[Mapping[str, Any]], list[str]] | None = None):
    """Register the decorated evaluator as check kind ``name`` for sentences matching ``sentence``."""
    def register(evaluate: Callable[..., Any]) -> Callable[..., Any]:
        if name in CHECK_KINDS:
            raise ValueError(f"check kind {name} is registered twice")
        CHECK_KINDS[name] = CheckKind(name, target, re.compile(sentence), evaluate,
                                convert or (lambda groups: {k: v for k, v in groups.items() if v is not None}),
                                {"type": "object", **(schema or {})}, facts, reads)
        return evaluate
    return register


@dataclass(frozen=True)
class ControlSpec:
    """One scenario's desired state: its control, the kind of its Then step and the typed params."""

    control_id: str
    kind: str
    params: Mapping[str, Any]
    source: str                                   # "features/S1/T01-swapfile.feature:14"
    sentence: str = ""
    scenario: str = ""
    tags: frozenset[str] = field(default_factory=frozenset)


def match(sentence: str) -> tuple[CheckKind, dict[str, Any]] | None:
    """The kind whose sentence matches ``sentence`` (whole text) and its converted params."""
    found = [(kind, m) for kind in check_kinds().values() if (m := kind.sentence.fullmatch(sentence))]
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"the sentence matches several check kinds: {', '.join(k.name for k, _ in found)}")
    kind, m = found[0]
    return kind, kind.convert(m.groupdict())


def control_id_of(title: str) -> str | None:
    """``"host.swap.file — the swapfile exists"`` -> ``"host.swap.file"``."""
    m = CONTROL_TITLE.match(title)
    return m["id"] if m else None


def load_specs(features_dir: Path, catalog: Any, *, root: Path | None = None) -> dict[str, ControlSpec]:
    """Every scenario of every ``*.feature`` under ``features_dir``, as ControlSpecs by control id.

    Raises PolicyError (``file:line``, the field, the problem) for an unknown control id, a
    control stated twice, a scenario without exactly one Then step, a sentence no kind knows,
    or params that fail the kind's schema.
    """
    from pytest_bdd.parser import FeatureParser

    root = root or features_dir.parent
    specs: dict[str, ControlSpec] = {}
    for path in sorted(features_dir.rglob("*.feature")):
        relative = path.relative_to(root).as_posix()
        try:
            feature = FeatureParser(str(path.parent), path.name).parse()
        except Exception as exc:  # noqa: BLE001 - a Gherkin syntax error names its file
            raise PolicyError(relative, "Gherkin", str(exc)) from None
        for scenario in feature.scenarios.values():
            where = f"{relative}:{scenario.line_number}"
            control_id = control_id_of(scenario.name)
            if control_id is None:
                raise PolicyError(where, "Scenario", f"{scenario.name!r} does not start with a control id "
                                                      f"('host.swap.file — …')")
            if control_id not in catalog.controls:
                raise PolicyError(where, "Scenario", f"unknown control id {control_id!r} (not in policies/controls.yaml)")
            if control_id in specs:
                raise PolicyError(where, "Scenario", f"control {control_id!r} is already stated at {specs[control_id].source}")
            tags = frozenset(scenario.tags) | frozenset(feature.tags)
            thens = [s for s in scenario.steps if s.type == "then"]
            if len(thens) != 1:
                raise PolicyError(where, "Then", f"a control's scenario has exactly one Then step, found {len(thens)}")
            step = thens[0]
            step_where = f"{relative}:{step.line_number}"
            try:
                found = match(step.name)
            except ValueError as exc:
                raise PolicyError(step_where, "Then", str(exc)) from None
            if found is None:
                raise PolicyError(step_where, "Then", f"no check kind states {step.name!r} "
                                                      "(see docs/vocabulary.md for the sentences the suite knows)")
            kind, params = found
            validate(params, kind.schema, source=step_where)
            check_control_vars(catalog.controls[control_id], kind, params)
            specs[control_id] = ControlSpec(control_id, kind.name, params, step_where, step.name, scenario.name, tags)
    return specs


def check_control_vars(control: Any, kind: CheckKind, params: Mapping[str, Any] = {}) -> None:
    """Raise PolicyError (the catalog entry's ``file:line``) when the control's ``vars`` name a param
    its check kind does not have: ``vars: {valu: swap_swappiness}`` for a kind whose params are
    ``key`` and ``value``. ``properties.MemoryMax`` names the entry ``MemoryMax`` of the mapping param
    ``properties``; the entry is checked too where the kind's schema lists the mapping's keys.
    A kind's params: those its schema names (``properties``, ``required``) and those its sentence gave
    (``params``, the converted groups)."""
    known = {**{name: {} for name in (*kind.schema.get("required", ()), *params)}, **(kind.schema.get("properties") or {})}
    for param in getattr(control, "vars", None) or {}:
        head, _, leaf = param.partition(".")
        where = (getattr(control, "var_sources", None) or {}).get(param) or getattr(control, "source", "") \
            or "policies/controls.yaml"
        if head not in known:
            raise PolicyError(where, f"{control.id}.vars.{param}",
                              f"unknown param {head!r} of check kind {kind.name!r} (its params: "
                              f"{', '.join(sorted(known)) or 'none'})")
        entries = known[head].get("properties") if isinstance(known[head], Mapping) else None
        if leaf and entries and known[head].get("additionalProperties") is False and leaf not in entries:
            raise PolicyError(where, f"{control.id}.vars.{param}",
                              f"unknown entry {leaf!r} of param {head!r} of check kind {kind.name!r} "
                              f"(its entries: {', '.join(sorted(entries))})")


def resolve(spec: ControlSpec, variables: Mapping[str, str], values: Mapping[str, Any],
            sources: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The params of ``spec`` for one target, and where each came from.

    ``variables`` is the catalog entry's ``vars`` (param -> Ansible var name or ``"{var}"``
    template); ``values``/``sources`` are the target's inventory vars and their ``file:line``.
    An inventory value wins over the feature's.
    """
    params = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in spec.params.items()}
    origin = {name: spec.source for name in params}
    for param, var in variables.items():
        names = var_names(var)
        if not names or any(name not in values for name in names):
            continue
        value = var.format(**values) if "{" in var else values[var]
        head, _, leaf = param.partition(".")  # "properties.MemoryMax": one entry of a mapping param
        if leaf:
            params.setdefault(head, {})[leaf] = value
        else:
            params[head] = value
        origin[param] = sources.get(names[0], "inventory")
    return params, origin
