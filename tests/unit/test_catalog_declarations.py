"""The catalog is the one declaration of a control and of the vars it reads, checked at load.

A control's ``vars`` may name only vars the catalog declares (with their type); a declared var no
control reads, a param its check kind does not have, or a type that is not a JSON Schema is a
PolicyError naming ``controls.yaml:LINE``. A host's vars are validated against the schema built
from the catalog (no other file declares them). A bug in an evaluator is an internal error of the
suite, not unexpected output of the target.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from railiance_conformance.checks import bundled_plan
from railiance_conformance.finding import Outcome, Status, UnexpectedOutput, target_output
from railiance_conformance.policy import (
    DEFAULT_POLICY_DIR,
    Control,
    PolicyError,
    load_catalog,
    read_yaml,
    schema,
    validate_host_desired,
    var_names,
)
from railiance_conformance.recorder import FindingRecorder
from railiance_conformance.resources.sysctl import kernel_write_int
from railiance_conformance.vocabulary import CheckKind, check_control_vars, load_specs

REPO = Path(__file__).resolve().parents[2]


def _policies(tmp_path: Path, edit) -> Path:
    """A copy of policies/ with controls.yaml's text passed through ``edit``."""
    target = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, target)
    catalog = target / "controls.yaml"
    catalog.write_text(edit(catalog.read_text()))
    return target


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_control_naming_an_undeclared_var_fails_at_load_with_file_and_line(tmp_path):
    policies = _policies(tmp_path, lambda t: t.replace("vars: {path: swap_file, size_gib: swap_size_gb}",
                                                       "vars: {path: swap_file, size_gib: swap_size_gbb}"))
    with pytest.raises(PolicyError) as caught:
        load_catalog(policies)
    line = _line_of(policies / "controls.yaml", "swap_size_gbb")
    assert caught.value.source == f"{policies / 'controls.yaml'}:{line}"
    assert "unknown var 'swap_size_gbb'" in str(caught.value) and "host.swap.file" in str(caught.value)


def test_a_template_naming_an_undeclared_var_fails_at_load(tmp_path):
    policies = _policies(tmp_path, lambda t: t.replace('unit: "user-{operator_uid}.slice", properties',
                                                       'unit: "user-{operator_id}.slice", properties', 1))
    with pytest.raises(PolicyError, match=r"controls\.yaml:\d+: controls\[\d+\]\.vars\.unit: unknown var 'operator_id'"):
        load_catalog(policies)


def test_a_declared_var_no_control_reads_fails_at_load_with_its_line(tmp_path):
    policies = _policies(tmp_path, lambda t: t.replace("  operator_uid: {type: integer, minimum: 0}\n",
                                                       "  operator_uid: {type: integer, minimum: 0}\n"
                                                       "  overcommit_mode: {enum: [0, 1, 2]}\n"))
    with pytest.raises(PolicyError) as caught:
        load_catalog(policies)
    assert caught.value.source.endswith(f":{_line_of(policies / 'controls.yaml', 'overcommit_mode')}")
    assert caught.value.field == "vars.overcommit_mode" and "no control" in caught.value.problem


@pytest.mark.parametrize("declaration, problem", [
    ("{type: integr}", "not a JSON Schema"),
    ('{$ref: "#/$defs/sise"}', "names no entry of the catalog's $defs"),
])
def test_a_declared_type_that_is_not_a_schema_fails_at_load(tmp_path, declaration, problem):
    policies = _policies(tmp_path, lambda t: t.replace("  swap_size_gb: {type: integer, minimum: 1}",
                                                       f"  swap_size_gb: {declaration}"))
    with pytest.raises(PolicyError) as caught:
        load_catalog(policies)
    assert caught.value.source.endswith(f":{_line_of(policies / 'controls.yaml', '  swap_size_gb: ')}")
    assert problem in caught.value.problem


def test_a_param_the_kind_does_not_have_fails_at_load_with_the_catalog_line(tmp_path):
    policies = _policies(tmp_path, lambda t: t.replace("vars: {path: swap_file, size_gib: swap_size_gb}",
                                                       "vars: {path: swap_file, size_gb: swap_size_gb}"))
    catalog = load_catalog(policies)
    bundled_plan()  # every check kind registered
    with pytest.raises(PolicyError) as caught:
        load_specs(REPO / "features", catalog, root=REPO)
    assert caught.value.source == f"{policies / 'controls.yaml'}:{_line_of(policies / 'controls.yaml', 'size_gb: swap')}"
    assert "unknown param 'size_gb' of check kind 'host.file'" in caught.value.problem


def test_an_entry_of_a_mapping_param_is_checked_where_the_kind_lists_its_entries():
    kind = CheckKind("example.limits", "host", re.compile("x"), lambda *a: None, dict,
                     {"type": "object", "properties": {"unit": {}, "limits": {
                         "type": "object", "additionalProperties": False,
                         "properties": {"memory.max": {}, "memory.high": {}}}}})
    good = Control("host.x.y", "T02", "S1", "high", "t", "r", vars={"limits.memory.max": "user_memory_max"},
                   var_sources={"limits.memory.max": "policies/controls.yaml:9"})
    check_control_vars(good, kind)
    bad = Control("host.x.y", "T02", "S1", "high", "t", "r", vars={"limits.memory.maks": "user_memory_max"},
                  var_sources={"limits.memory.maks": "policies/controls.yaml:9"})
    with pytest.raises(PolicyError, match=r"^policies/controls.yaml:9: host.x.y.vars.limits.memory.maks: "
                                          r"unknown entry 'memory.maks' of param 'limits'"):
        check_control_vars(bad, kind)


def test_the_bundled_catalog_loads_and_every_var_has_a_type():
    catalog = load_catalog(DEFAULT_POLICY_DIR)
    declared = read_yaml(DEFAULT_POLICY_DIR / "controls.yaml")["vars"]
    read = {name for control in catalog.controls.values() for var in control.vars.values()
            for name in var_names(var)}
    assert read == set(declared) == set(catalog.vars)
    assert all(c.source.startswith(str(DEFAULT_POLICY_DIR / "controls.yaml") + ":") for c in catalog.controls.values())


def test_the_host_vars_schema_is_built_from_the_catalog_and_nowhere_else():
    """No policies/schemas/host-policy.schema.json: the host vars' types are the catalog's."""
    assert not (DEFAULT_POLICY_DIR / "schemas" / "host-policy.schema.json").exists()
    desired = schema("host-policy")["$defs"]["desired"]
    assert desired["properties"] == read_yaml(DEFAULT_POLICY_DIR / "controls.yaml")["vars"]
    assert desired["additionalProperties"] is False
    validate_host_desired({"swap_swappiness": 10, "user_memory_max": "1500M"}, source="host h")
    with pytest.raises(PolicyError, match=r"host h: swap_swappiness: 300 is greater than the maximum of 200"):
        validate_host_desired({"swap_swappiness": 300}, source="host h")
    with pytest.raises(PolicyError, match="user_memory_max"):
        validate_host_desired({"user_memory_max": "lots"}, source="host h")


# -- a bug in an evaluator is the suite's, unexpected output is the target's -----------------------------

def _finding(evaluation):
    recorder = FindingRecorder(load_catalog(DEFAULT_POLICY_DIR))
    return recorder.build("host.swap.file", "h1", evaluation)


def test_a_key_error_in_evaluator_code_is_an_internal_error_not_the_targets_fault():
    def evaluator():
        params = {"path": "/swapfile"}
        return Outcome.compare(4, params["size_gib"])  # the evaluator's own mistake

    finding = _finding(evaluator)
    assert finding.status is Status.ERROR
    assert finding.reason.startswith("internal error: this is a bug in railiance-conformance (KeyError: 'size_gib'")
    assert "unexpected output" not in finding.reason
    assert "bug in railiance-conformance" in finding.remediation and "report" in finding.remediation


def test_a_value_error_raised_by_a_parser_of_target_output_is_unexpected_output():
    finding = _finding(lambda: Outcome.compare(10, kernel_write_int("ten", "vm.swappiness")))
    assert finding.status is Status.ERROR
    assert finding.reason.startswith("unexpected output from the target (it did not parse): KernelRejects")
    assert "bug" not in finding.reason and "on the target" in finding.remediation


def test_a_parse_inside_target_output_is_unexpected_output_naming_what_was_read():
    def evaluator():
        with target_output("the passwd entry of tegwick"):
            return Outcome.compare(1000, int("tegwick:x".split(":")[2]))

    finding = _finding(evaluator)
    assert finding.reason == ("unexpected output from the target: the passwd entry of tegwick: "
                              "IndexError: list index out of range")
    assert isinstance(UnexpectedOutput("w", "p"), ValueError)
