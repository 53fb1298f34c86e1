"""JUnit XML via junit-xml: one testsuite per layer, one testcase per control and target.

Drift is a failure whose message names only the fields that differ, ``expected → observed``
(``reporting.diff``), and carries the remediation (the whole values and the evidence are its output); could-not-verify is an error;
waived and pending are skipped with their reason.
Example: ``render(run)`` -> ``<testsuites><testsuite name="S1" ...>``.
"""
from __future__ import annotations

import json
from itertools import groupby
from typing import TYPE_CHECKING

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register
from railiance_conformance.reporting.diff import finding_diff

if TYPE_CHECKING:  # junit_xml is imported when the report is rendered
    from junit_xml import TestCase


def _compact(value) -> str:
    return printable(value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))


def _case(finding: Finding) -> "TestCase":
    from junit_xml import TestCase  # imported only when this format is written

    case = TestCase(name=printable(finding.key), classname=f"{finding.layer}.{finding.task}", elapsed_sec=finding.duration_s,
                    timestamp=finding.started_at or None)
    if finding.status is Status.DRIFT:
        diff = finding_diff(finding)
        detail = "; ".join(printable(line) for line in diff.lines()) or \
            f"values as expected: {_compact(finding.observed)}"
        detail += f" ({diff.folded()})" if diff.folded() else ""
        detail += f" ({printable(finding.reason)})" if finding.reason else ""
        whole = {"expected": finding.expected, "observed": finding.observed, "evidence": dict(finding.evidence)}
        case.add_failure_info(message=f"drift: {detail}; fix: {printable(finding.remediation)}",
                              output=printable(json.dumps(whole, sort_keys=True, default=str)), failure_type="drift")
    elif finding.status is Status.ERROR:
        case.add_error_info(message=f"could not verify: {printable(finding.reason)}", error_type="could-not-verify")
    elif finding.status in (Status.WAIVED, Status.PENDING):
        case.add_skipped_info(message=f"{finding.status.value}: {printable(finding.reason)}")
    return case


def render(run: Run) -> str:
    ordered = sorted(run.findings, key=lambda f: (f.layer, f.task, f.control_id, f.target))
    properties = {"run_id": run.run_id, "partial": str(run.partial).lower()}
    for number, failure in enumerate(run.output_failures):
        properties[f"output_failure.{number}"] = printable(str(failure))
    if run.diff is not None:  # since the previous run
        properties |= {f"since_previous.{name}": str(n) for name, n in (run.changes() or {}).items()}
        properties["since_previous.from_run"] = str(run.diff.from_run)
    if run.gate is not None:
        properties |= {"gate.task": run.gate.task, "gate.verdict": run.gate.verdict}
        properties |= {f"gate.rows.{name}": f"source {rows.source}, restored {rows.restored}"
                       for name, rows in run.gate.parity_tables().items()}
    for row in run.coverage or ():  # how many of each task's Done-when clauses this run verified
        properties[f"done_when.{row.task}"] = row.summary()
    from junit_xml import TestSuite, to_xml_report_string

    suites = [TestSuite(layer, [_case(f) for f in group], timestamp=run.started_at, properties=properties)
              for layer, group in groupby(ordered, key=lambda f: f.layer)]
    return to_xml_report_string(suites, prettyprint=True)


REPORTER = register(Reporter("junit", "junit.xml", render))
