"""junit.xml is written directly, byte for byte as junit-xml 1.9 wrote it (ElementTree, its illegal-character
clean-up, then minidom's pretty-printing re-parse): the reference below is the previous writer, kept here
verbatim, and the two are compared on the sample runs and on generated findings (any Unicode, control
characters, ``]]>``, quotes, newlines, long texts). Where junit-xml raised (a lone surrogate, U+FFFE, U+FFFF:
no XML character) the new writer still writes a well-formed document."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from itertools import groupby
from xml.parsers.expat import ExpatError

import junit_xml  # the reference: the library junit.xml was written with before (the test extra)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import OutputFailure, Run, junit_report, printable
from railiance_conformance.reporting.diff import finding_diff
from tests.faults.test_hostile_text import hostile_run
from tests.unit.reporting_samples import FINDINGS, every_part_run, finding, sample_run


# --- the previous writer (junit_report.render before it wrote the document itself), unchanged ---------
def _compact(value) -> str:
    return printable(value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))


def _case(finding: Finding):
    case = junit_xml.TestCase(name=printable(finding.key), classname=f"{finding.layer}.{finding.task}",
                              elapsed_sec=finding.duration_s, timestamp=finding.started_at or None)
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


def junit_xml_render(run: Run) -> str:
    ordered = sorted(run.findings, key=lambda f: (f.layer, f.task, f.control_id, f.target))
    properties = {"run_id": run.run_id, "partial": str(run.partial).lower()}
    for number, failure in enumerate(run.output_failures):
        properties[f"output_failure.{number}"] = printable(str(failure))
    if run.diff is not None:
        properties |= {f"since_previous.{name}": str(n) for name, n in (run.changes() or {}).items()}
        properties["since_previous.from_run"] = str(run.diff.from_run)
    if run.gate is not None:
        properties |= {"gate.task": run.gate.task, "gate.verdict": run.gate.verdict}
        properties |= {f"gate.rows.{name}": f"source {rows.source}, restored {rows.restored}"
                       for name, rows in run.gate.parity_tables().items()}
    for row in run.coverage or ():
        properties[f"done_when.{row.task}"] = row.summary()
    suites = [junit_xml.TestSuite(layer, [_case(f) for f in group], timestamp=run.started_at, properties=properties)
              for layer, group in groupby(ordered, key=lambda f: f.layer)]
    return junit_xml.to_xml_report_string(suites, prettyprint=True)
# -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", [sample_run(), every_part_run(), hostile_run(), sample_run(findings=()),
                                 sample_run(findings=tuple(replace(f, duration_s=0.0, started_at="") for f in FINDINGS)),
                                 replace(sample_run(), started_at="")],
                         ids=["sample", "every-part", "hostile", "empty", "no-durations", "no-start"])
def test_the_document_is_byte_identical_to_junit_xml(run: Run) -> None:
    assert junit_report.render(run) == junit_xml_render(run)


def test_a_hundred_hosts_render_as_junit_xml_did() -> None:
    run = sample_run(findings=tuple(replace(f, target=f"{f.target}-{n:03}", duration_s=0.001 * n + f.duration_s)
                                    for n in range(100) for f in FINDINGS))
    assert junit_report.render(run) == junit_xml_render(run)


# Text that stresses each step of the old pipeline: XML's own characters, CDATA's end, the line ends that
# attributes and text treat differently, C0/C1 controls, noncharacters that XML allows.
TRICKY = ["]]>", '"', "'", "&amp;", "<a>", "\r\n", "\r", "\n", "\t", "\x00", "\x0b", "\x0c", "\x1f", "\x7f", "\x85",
          "\x9f", "\u2028", "\ufdd0", "\U0001fffe", "\U0010ffff", "é", "\u202e", "\U0001f600"]
# what no XML document can hold (XML 1.0 §2.2 Char): junit-xml raised on these
NOT_XML = ["\ud800", "\udfff", "\ufffe", "\uffff"]


def runs(not_xml: bool) -> st.SearchStrategy[Run]:
    chars = st.characters(blacklist_categories=() if not_xml else ("Cs",),
                          blacklist_characters="" if not_xml else "\ufffe\uffff")
    texts = st.one_of(st.text(chars, max_size=40),
                      st.lists(st.sampled_from(TRICKY + NOT_XML * not_xml) | st.text(chars, max_size=5),
                               max_size=12).map("".join),
                      st.text(chars, max_size=5).map(lambda s: s * 400))  # long texts
    values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | texts,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                          max_leaves=8)
    findings = st.builds(
        Finding, control_id=texts, title=texts, task=texts, layer=st.sampled_from(["S1", "S3"]) | texts,
        severity=st.sampled_from(["high", "low"]), target=texts, status=st.sampled_from(list(Status)),
        expected=values, observed=values, remediation=texts, reason=texts,
        evidence=st.dictionaries(texts, values, max_size=3).map(lambda d: tuple(d.items())),
        duration_s=st.floats() | st.just(0.0), started_at=texts)
    return st.builds(lambda run_id, started, fs, failures, partial: Run(
        run_id, started, started, tuple(fs), tuple(sorted({f.target for f in fs})), partial=partial,
        output_failures=tuple(OutputFailure(p, r) for p, r in failures)),
        texts, texts, st.lists(findings, max_size=6), st.lists(st.tuples(texts, texts), max_size=2), st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(runs(not_xml=False))
def test_generated_findings_render_as_junit_xml_did(run: Run) -> None:
    new = junit_report.render(run)
    assert new == junit_xml_render(run)
    ET.fromstring(new.encode())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(runs(not_xml=True))
def test_text_xml_cannot_hold_still_gives_a_document(run: Run) -> None:
    new = junit_report.render(run)
    try:
        old = junit_xml_render(run)
    except ExpatError:  # junit-xml wrote no report: a character XML cannot hold; this writer escapes it
        assert not any(ch in new for ch in NOT_XML)
    else:
        assert new == old
    ET.fromstring(new.encode())  # well-formed either way


def test_characters_xml_cannot_hold_are_written_as_escapes() -> None:
    run = sample_run(findings=(finding("host.x", "h\ufffe\ud800", Status.ERROR, reason="bad \uffff"),))
    with pytest.raises(ExpatError):
        junit_xml_render(run)
    out = junit_report.render(run)
    case = ET.fromstring(out.encode()).find("testsuite/testcase")
    assert case.get("name") == "host.x@h\\ufffe\\ud800"
    assert case.find("error").get("message") == "could not verify: bad \\uffff"
