"""JUnit XML: one testsuite per layer, one testcase per control and target.

Drift is a failure whose message names only the fields that differ, ``expected → observed``
(``reporting.diff``), and carries the remediation (the whole values and the evidence are its output); could-not-verify is an error;
waived and pending are skipped with their reason.
Example: ``render(run)`` -> ``<?xml version="1.0" ?>\\n<testsuites disabled="0" errors="2" ...>``.

The document is written directly, byte for byte as junit-xml 1.9 wrote it (``to_xml_report_string(suites,
prettyprint=True)``: ElementTree's ``tostring`` in US-ASCII, its ``_clean_illegal_xml_chars``, then
``xml.dom.minidom.parseString(...).toprettyxml()``). That re-parse and re-print was ~60% of this report's
CPU, which grows with the hosts. What the three steps did to each character, and so what this writer does
(``tests/unit/test_junit_report.py`` compares the two on generated findings):

- the element and attribute order is junit-xml's (``TestSuite.build_xml_doc``), indented by a tab, one
  element a line, a failure's output on the failure's own line;
- ``& < > "`` are written as ``&amp; &lt; &gt; &quot;`` (minidom's ``_write_data``) in attributes and text;
- tab and newline stay raw in both, carriage return stays raw in an attribute (ElementTree wrote ``&#13;``,
  which the parse turned back) and is dropped from text, as are the other C0 controls and DEL in both
  (junit-xml's ``_clean_illegal_xml_chars``); every other character is written as itself;
- a lone surrogate, U+FFFE or U+FFFF (no XML 1.0 character, ``Char`` in XML 1.0 §2.2) made the re-parse
  raise, so junit-xml wrote no report at all; here it is written as its escape, as ``printable`` writes one.
"""
from __future__ import annotations

import json
import re
from itertools import groupby

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import Reporter, Run, printable, register
from railiance_conformance.reporting.diff import finding_diff

# characters the old pipeline dropped (C0 controls but tab, newline and, in attributes, carriage return; DEL)
# or could not write at all (surrogates, U+FFFE, U+FFFF: escaped here)
_ATTR_SPECIAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_TEXT_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _special(match: re.Match[str]) -> str:
    char = match[0]
    return f"\\u{ord(char):04x}" if char >= "\ud800" else ""


def _escaped(value: str, special: re.Pattern[str]) -> str:
    if special.search(value):
        value = special.sub(_special, value)
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if '"' in value:
        value = value.replace('"', "&quot;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def _attrs(pairs) -> str:
    return "".join(f' {name}="{_escaped(str(value), _ATTR_SPECIAL)}"' for name, value in pairs)


def _compact(value) -> str:
    return printable(value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))


def _outcome(finding: Finding) -> tuple[str, list[tuple[str, str]], str | None] | None:
    """The child element of a finding's testcase: (tag, attributes, text), or None for a pass."""
    if finding.status is Status.DRIFT:
        diff = finding_diff(finding)
        detail = "; ".join(printable(line) for line in diff.lines()) or \
            f"values as expected: {_compact(finding.observed)}"
        detail += f" ({diff.folded()})" if diff.folded() else ""
        detail += f" ({printable(finding.reason)})" if finding.reason else ""
        whole = {"expected": finding.expected, "observed": finding.observed, "evidence": dict(finding.evidence)}
        return ("failure", [("type", "drift"), ("message", f"drift: {detail}; fix: {printable(finding.remediation)}")],
                printable(json.dumps(whole, sort_keys=True, default=str)))
    if finding.status is Status.ERROR:
        return "error", [("type", "could-not-verify"), ("message", f"could not verify: {printable(finding.reason)}")], None
    if finding.status in (Status.WAIVED, Status.PENDING):
        return "skipped", [("type", "skipped"), ("message", f"{finding.status.value}: {printable(finding.reason)}")], None
    return None


def _suite(layer: str, findings: list[Finding], timestamp: str, properties: dict[str, str]) -> tuple[list[str], dict]:
    """One testsuite's lines (indented one tab) and its counts, as junit-xml's ``TestSuite.build_xml_doc``."""
    cases: list[str] = []
    counts = {"errors": 0, "failures": 0, "skipped": 0}
    time = sum(f.duration_s for f in findings if f.duration_s)
    for finding in findings:
        attrs = [("name", printable(finding.key))]
        if finding.duration_s:
            attrs.append(("time", "%f" % finding.duration_s))
        if finding.started_at:
            attrs.append(("timestamp", finding.started_at))
        attrs.append(("classname", f"{finding.layer}.{finding.task}"))
        outcome = _outcome(finding)
        if outcome is None:
            cases.append(f"\t\t<testcase{_attrs(attrs)}/>\n")
            continue
        tag, child, text = outcome
        counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
        body = f">{_escaped(text, _TEXT_SPECIAL)}</{tag}>\n" if text else "/>\n"
        cases.append(f"\t\t<testcase{_attrs(attrs)}>\n\t\t\t<{tag}{_attrs(child)}{body}\t\t</testcase>\n")
    head = [("disabled", "0"), ("errors", counts["errors"]), ("failures", counts["failures"]), ("name", layer),
            ("skipped", counts["skipped"]), ("tests", len(findings)), ("time", time)]
    if timestamp:
        head.append(("timestamp", timestamp))
    lines = [f"\t<testsuite{_attrs(head)}>\n"]
    if properties:
        lines.append("\t\t<properties>\n")
        lines.extend(f"\t\t\t<property{_attrs((('name', k), ('value', v)))}/>\n" for k, v in properties.items())
        lines.append("\t\t</properties>\n")
    lines.extend(cases)
    lines.append("\t</testsuite>\n")
    return lines, {"errors": counts["errors"], "failures": counts["failures"], "tests": len(findings), "time": time}


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
    body: list[str] = []
    totals: dict = {}
    for layer, group in groupby(ordered, key=lambda f: f.layer):
        lines, counts = _suite(layer, list(group), run.started_at, properties)
        body.extend(lines)
        # junit-xml adds the suites' counts as numbers, the times as floats of their text
        totals = {"disabled": 0, "errors": totals.get("errors", 0) + counts["errors"],
                  "failures": totals.get("failures", 0) + counts["failures"],
                  "tests": totals.get("tests", 0) + counts["tests"],
                  "time": totals.get("time", 0) + float(str(counts["time"]))}
    if not body:
        return '<?xml version="1.0" ?>\n<testsuites/>\n'
    return "".join(['<?xml version="1.0" ?>\n', f"<testsuites{_attrs(totals.items())}>\n", *body, "</testsuites>\n"])


REPORTER = register(Reporter("junit", "junit.xml", render))
