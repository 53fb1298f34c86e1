"""Kind 5: hostile text is text. Rich markup, ANSI escapes, control and bidi characters from a
target are inert in every format: escaped markup on the terminal, escapes instead of raw control
characters in the terminal, Markdown, HTML, JUnit and Prometheus output."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from railiance_conformance.finding import Finding, Status
from railiance_conformance.reporting import OutputFailure, Run, load_reporters, printable
from railiance_conformance.reporting.terminal import render_summary

HOSTILE = "[/bold]\x1b[31mred\x1b[0m\x07\r\x00\u202eevil\x9b2J [link=file:///etc]x[/link]"
RAW = ("\x1b", "\x07", "\r", "\x00", "\u202e", "\x9b")


def hostile_run() -> Run:
    drift = Finding("host.swappiness.live", "vm.swappiness", "RAIL-HO-WP-0004-T01", "S1", "high", f"h{HOSTILE}",
                    Status.DRIFT, 10, {"value": HOSTILE}, "write 10 to vm.swappiness", reason=HOSTILE,
                    evidence=(("file", HOSTILE),))
    error = Finding("host.swap.file", "swap", "RAIL-HO-WP-0004-T01", "S1", "high", "bystander", Status.ERROR,
                    4, None, "fix", reason=f"cannot read {HOSTILE}")
    ok = Finding("host.swap.active", "swap", "RAIL-HO-WP-0004-T01", "S1", "high", "bystander", Status.PASS,
                 4, 4, "fix")
    return Run("run-x", "2026-11-29T00:00:00Z", "2026-11-29T00:00:01Z", (drift, error, ok), (f"h{HOSTILE}", "bystander"),
               output_failures=(OutputFailure("reports/x", HOSTILE),))


def test_printable_shows_control_and_bidi_characters_as_escapes():
    assert printable("a\x1b[31mb\rc\td\ne\u202e\x00") == "a\\x1b[31mb\\rc\td\ne\\u202e\\x00"
    assert printable("plain – ü") == "plain – ü"


@pytest.mark.parametrize("color", [False, True])
def test_the_terminal_summary_prints_markup_and_escapes_literally(color):
    text = render_summary(hostile_run(), width=200, color=color)  # [/bold] crashed it before
    assert "[/bold]" in text and "\\x1b[31mred" in text and "[link=file:///etc]x[/link]" in text
    body = text.replace("\x1b[", "") if color else text  # rich's own colour codes
    assert not any(ch in body for ch in RAW if ch != "\x1b") and (color or "\x1b" not in text)
    assert "bystander" in text  # the other target is still there


@pytest.mark.parametrize("name", sorted(load_reporters()))
def test_every_report_format_is_free_of_raw_control_characters(name):
    out = load_reporters()[name].render(hostile_run())
    assert not any(ch in out for ch in RAW), name
    assert "bystander" in out
    if name == "json":
        assert json.loads(out)["findings"][0]["reason"] == HOSTILE  # data stays exact, JSON-escaped
    elif name == "junit":
        ET.fromstring(out.encode())
        assert "\\x1b[31mred" in out
    elif name == "html":
        assert "[/bold]\\x1b[31mred" in out and "\\u202eevil" in out
    elif name == "markdown":
        assert "\\\\x1b" in out and "\\[/bold\\]" in out
    elif name == "policyreport":
        hostile = next(d for d in yaml.safe_load_all(out) if d["scope"]["name"] == f"h{HOSTILE}")
        assert hostile["results"][0]["properties"]["reason"] == HOSTILE  # YAML-escaped, exact
        assert re.fullmatch(r"railiance-conformance-h[a-z0-9.-]*-[0-9a-f]{8}", hostile["metadata"]["name"])
    elif name == "prometheus":
        assert "\\\\x1b" in out
