"""junit.xml (written by junit-xml, reporting/junit_report.py) is a well-formed document whatever text the
targets send: any Unicode, control characters, ``]]>``, quotes, newlines, long texts, and the characters no XML
document can hold (a lone surrogate, U+FFFE, U+FFFF: XML 1.0 §2.2 Char), which ``printable`` writes as escapes:
junit-xml's pretty-printing re-parse raised on them before, and no junit.xml was written."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import OutputFailure, Run, junit_report
from tests.faults.test_hostile_text import hostile_run
from tests.unit.reporting_samples import every_part_run, finding, sample_run

# Text that stresses each step of junit-xml's pipeline (ElementTree, its clean-up, minidom's re-parse): XML's
# own characters, CDATA's end, the line ends that attributes and text treat differently, C0/C1 controls, noncharacters that XML allows.
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
        # the layer, the task and the times are the suite's own (the policy's ids, its clock), the rest the targets'
        Finding, control_id=texts, title=texts, task=st.sampled_from(["T01", "T07"]), layer=st.sampled_from(["S1", "S3"]),
        severity=st.sampled_from(["high", "low"]), target=texts, status=st.sampled_from(list(Status)),
        expected=values, observed=values, remediation=texts, reason=texts,
        evidence=st.dictionaries(texts, values, max_size=3).map(lambda d: tuple(d.items())),
        duration_s=st.floats() | st.just(0.0), started_at=st.sampled_from(["", "2026-12-05T09:00:00+00:00"]))
    return st.builds(lambda run_id, started, fs, failures, partial: Run(
        run_id, started, started, tuple(fs), tuple(sorted({f.target for f in fs})), partial=partial,
        output_failures=tuple(OutputFailure(p, r) for p, r in failures)),
        st.uuids().map(str), st.just("2026-12-05T09:00:00+00:00"), st.lists(findings, max_size=6), st.lists(st.tuples(texts, texts), max_size=2), st.booleans())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(runs(not_xml=True))
def test_any_text_from_the_targets_gives_a_well_formed_document(run: Run) -> None:
    document = ET.fromstring(junit_report.render(run).encode())
    assert len(document.findall("testsuite/testcase")) == len(run.findings)


def test_the_sample_runs_give_well_formed_documents() -> None:
    for run in (sample_run(), every_part_run(), hostile_run(), sample_run(findings=())):
        document = ET.fromstring(junit_report.render(run).encode())
        assert len(document.findall("testsuite/testcase")) == len(run.findings)


def test_characters_xml_cannot_hold_are_written_as_escapes() -> None:
    run = sample_run(findings=(finding("host.x", "h\ufffe\ud800", Status.ERROR, reason="bad \uffff"),))
    case = ET.fromstring(junit_report.render(run).encode()).find("testsuite/testcase")
    assert case.get("name") == "host.x@h\\ufffe\\ud800"
    assert case.find("error").get("message") == "could not verify: bad \\uffff"
