"""The pieces every section of report.html uses: escaping, index-based element ids, a finding's
``data-*`` filter attributes, a drift's field-level difference.

Every value from a target is HTML-escaped and inert (``printable``); element ids and filter values
are indexes, never target text.
"""
from __future__ import annotations

import json
from html import escape as _html_escape
from typing import Any

from railiance_conformance.finding import Finding
from railiance_conformance.reporting import Run, printable
from railiance_conformance.reporting.diff import ARROW, finding_diff, show

# Answers of escape() for short strings: a report at many hosts escapes the same control ids, tasks, layers,
# statuses and values once per host. A pure function of the text; at most _KEPT answers (then no more kept),
# dropped when the page is written (html_report.render calls forget()).
_ESCAPED: dict[str, str] = {}
_KEPT, _KEPT_CHARS = 8192, 512


def escape(text: str) -> str:
    """HTML-escaped and inert: control and bidi characters shown as escapes (``printable``)."""
    if type(text) is str:
        done = _ESCAPED.get(text)
        if done is None:
            done = _html_escape(printable(text))
            if len(text) <= _KEPT_CHARS and len(_ESCAPED) < _KEPT:
                _ESCAPED[text] = done
        return done
    return _html_escape(printable(str(text)))


# JSONEncoder(indent=1) is pure Python; its text is a function of the C encoder's compact text of the same value
# (the same tokens, other whitespace), which keys the answers for values repeated across hosts
_COMPACT = json.JSONEncoder(sort_keys=True, default=str)
_INDENTED = json.JSONEncoder(indent=1, sort_keys=True, default=str)
_VALUE_HTML: dict[str, str] = {}


def forget() -> None:
    """Drop the answers kept by ``escape`` and ``value_html`` (after a page: they are not needed again)."""
    _ESCAPED.clear()
    _VALUE_HTML.clear()


def value_html(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return f"<pre>{escape(value)}</pre>"
    compact = _COMPACT.encode(value)
    done = _VALUE_HTML.get(compact)
    if done is None:
        done = f"<pre>{escape(_INDENTED.encode(value))}</pre>"
        if len(compact) <= 4 * _KEPT_CHARS and len(_VALUE_HTML) < _KEPT:
            _VALUE_HTML[compact] = done
    return done


class ElementIds:
    """Index-based element ids: a target's text never becomes an id or a selector."""

    def __init__(self, run: Run):
        self.keys = {f.key: n for n, f in enumerate(run.one_per_key())}
        self.controls = {c: n for n, c in enumerate(sorted({f.control_id for f in run.findings}))}

    def finding(self, key: str) -> str:
        return f"f-{self.keys[key]}"

    def feature(self, control_id: str) -> str:
        return f"ft-{self.controls[control_id]}"


def data_attributes(f: Finding) -> str:
    return (f'data-layer="{escape(f.layer)}" data-task="{escape(f.task)}" data-status="{f.status.value}" '
            f'data-target="{escape(f.target)}"')


def difference(f: Finding) -> str:
    """A drift's differing fields, ``field: expected → observed`` one per line, the rest folded."""
    diff = finding_diff(f)
    lines = []
    for change in diff.changes:
        where = f"{escape(change.where)}: " if change.where else ""
        secret = " (secret: not shown)" if change.secret else ""
        lines.append(f'<div class="change">{where}{escape(show(change.expected))} <span class="arrow">{ARROW}</span> '
                     f"{escape(show(change.observed))}{secret}</div>")
    if not diff.changes:
        lines.append(f'<div class="change">values as expected: {escape(show(f.observed))}</div>')
    folded = diff.folded() or "whole values"
    lines.append(f'<details class="folded"><summary>{escape(folded)}</summary>expected {value_html(f.expected)}'
                 f"observed {value_html(f.observed)}</details>")
    return "".join(lines)
