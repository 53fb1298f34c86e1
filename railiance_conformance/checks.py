"""The selected controls' desired state, resolved per target, and the facts each target must give.

Built once the scenarios are collected (and ``-m``/``-k`` have deselected): only the facts the
selected scenarios need are gathered (``-m T02`` gathers only T02's facts), still one SSH
connection and one command per host. Example::

    plan = CheckPlan(catalog, specs, selected={"host.swap.file"})
    plan.params("host.swap.file", target)  # -> ({"path": "/swapfile", "size_gib": 8, ...},
                                           #     {"size_gib": "inventory/host_vars/coulombcore.yml:2", ...})
    plan.host_facts(target)                # -> [Fact("stat /swapfile", ...)]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from railiance_conformance.probes.facts import Fact
from railiance_conformance.targets import HostTarget
from railiance_conformance.vocabulary import CHECK_KINDS, ControlSpec, resolve


class CheckPlan:
    """Specs of the selected controls; params per (control, target) with the source of each value."""

    def __init__(self, catalog: Any, specs: Mapping[str, ControlSpec], selected: Iterable[str] | None = None):
        self.catalog = catalog
        self.specs = dict(specs)
        # in the features' order whatever the order ``selected`` comes in (a set's order changes with the
        # interpreter's hash seed): the fact script reads in this order, so which facts are read before one
        # that blocks until the host's deadline is the same on every run
        chosen = None if selected is None else set(selected)
        self.selected = [c for c in self.specs if chosen is None or c in chosen]
        self._params: dict[tuple[str, str], tuple[dict[str, Any], dict[str, str]]] = {}
        # a kind's facts depend on its params alone: hosts whose params are the same share one list
        self._facts: dict[tuple[str, str], list[Fact]] = {}

    def spec(self, control_id: str) -> ControlSpec:
        return self.specs[control_id]

    def params(self, control_id: str, target: HostTarget | None) -> tuple[dict[str, Any], dict[str, str]]:
        """The control's params for ``target``: the feature's values, the target's inventory vars winning."""
        key = (control_id, target.name if target is not None else "")
        if key not in self._params:
            spec = self.specs[control_id]
            variables = getattr(self.catalog[control_id], "vars", None) or {}
            values = target.desired if target is not None else {}
            sources = target.desired_sources if target is not None else {}
            self._params[key] = resolve(spec, variables, values, sources)
        return self._params[key]

    def secret_params(self, control_id: str, target: HostTarget | None) -> frozenset[str]:
        """The params whose value came from the target's Ansible vault (shown as ``***``)."""
        if target is None or not target.secret_keys:
            return frozenset()
        variables = getattr(self.catalog[control_id], "vars", None) or {}
        return frozenset(p for p, var in variables.items()
                         if any(var == k or "{" + k + "}" in var for k in target.secret_keys))

    def host_facts(self, target: HostTarget) -> list[Fact]:
        """Every fact the selected host controls need on ``target`` (duplicates removed by the script)."""
        found: list[Fact] = []
        for control_id in self.selected:
            kind = CHECK_KINDS[self.specs[control_id].kind]
            if kind.target == "host" and kind.facts is not None and not self.catalog[control_id].pending:
                params = self.params(control_id, target)[0]
                # repr tells apart every value YAML and an inventory give (1, 1.0, "1", True; nested lists
                # and dicts): equal reprs, equal params, the same facts (Fact is frozen: shared safely)
                key = (control_id, repr(params))
                if key not in self._facts:
                    self._facts[key] = kind.facts(params)
                found += self._facts[key]
        return found


def bundled_plan(features_dir: Path | None = None) -> CheckPlan:
    """The plan of every control stated in the bundled features/ (a checkout's), for in-process use."""
    from pathlib import Path

    from railiance_conformance.paths import DEFAULT_POLICY_DIR
    from railiance_conformance.settings import derived_policy

    key = str(features_dir)
    if key not in _BUNDLED:  # the same derived_cache entry as a run of the bundled policy and features
        directory = features_dir or Path(__file__).resolve().parent.parent / "features"
        if directory.is_dir():
            catalog, specs, _, _ = derived_policy(DEFAULT_POLICY_DIR, directory)
        else:  # no features beside the package (an installed wheel): as load_specs finds it
            from railiance_conformance.policy import load_catalog
            from railiance_conformance.vocabulary import load_specs

            catalog = load_catalog(DEFAULT_POLICY_DIR)
            specs = load_specs(directory, catalog)
        _BUNDLED[key] = CheckPlan(catalog, specs)
    return _BUNDLED[key]


_BUNDLED: dict[str, CheckPlan] = {}


def evaluate_control(control_id: str, facts: Any, values: Mapping[str, Any] | None = None) -> Any:
    """Evaluate one control of the bundled features in-process: its kind on ``facts`` with the params
    its feature states, ``values`` (Ansible var name -> value) overriding them as an inventory would.
    Example: ``evaluate_control("host.swappiness.live", HostFacts("h", {"sysctl vm.swappiness": Section(0, "60")}))``
    -> ``Outcome(DRIFT, expected=10, observed=60)``."""
    plan = bundled_plan()
    spec = plan.spec(control_id)
    variables = getattr(plan.catalog[control_id], "vars", None) or {}
    params, _ = resolve(spec, variables, dict(values or {}), {})
    return CHECK_KINDS[spec.kind].evaluate(facts, params)
