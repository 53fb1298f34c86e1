"""The terminal summary: the problems grouped, the fixes, the claims, and the verdict as the last lines.

``render_summary(run, width=80)``: any width from 80 to 200 columns (narrower or wider terminals get
80 or 200), no line longer than it (control ids, targets and keys are never broken; values wrap after
``. / , : ; = - _ @`` and blanks); drift and could-not-verify grouped across targets
(``reporting.groups``), a drift as the fields that differ (``reporting.diff``), waivers one line per
reference. Every text from a target is inert (``printable``; rich ``Text``, never markup).
What it looks like: docs/results.md.
"""
from __future__ import annotations

import io
import re
from itertools import groupby
from typing import TYPE_CHECKING, Iterable

from rich.cells import cell_len, get_character_cell_size
from rich.console import Console
from rich.text import Text

from railiance_conformance.finding import LOUDEST_FIRST, Finding, Status
from railiance_conformance.reporting import Run, printable
from railiance_conformance.reporting.diff import ARROW, finding_diff, show

if TYPE_CHECKING:
    from railiance_conformance.claims import Claim

MIN_WIDTH, MAX_WIDTH = 80, 200
LABEL = 8                                         # "pending " : the status column
STYLE = {Status.DRIFT: "bold red", Status.ERROR: "bold magenta", Status.PENDING: "yellow",
         Status.WAIVED: "cyan", Status.PASS: "green"}
CLAIM_STYLE = {"claimed done, drifted": "bold red", "claimed done, could not verify": "bold magenta",
               "claimed done, no control checks it": "magenta", "passing, not marked done": "cyan",
               "pending": "yellow", "claimed done, verified": "green"}
SEPARATORS = frozenset("./,:;=-_@&?+|")
# a waiver's reference, as waivers.apply words it: "[KEY: ]waived until DATE (end of day UTC), approved by WHO; migration: LINK"
WAIVER = re.compile(r"(?:(?P<key>[^\s;]+): )?waived until (?P<date>\d{4}-\d{2}-\d{2}) \(end of day UTC\), "
                    r"approved by (?P<who>[^;]+); migration: (?P<link>[^\s;]+)")


def one_line(text: object) -> str:
    """Target text on one terminal line: inert (``printable``), newline and tab as ``\\n``/``\\t``."""
    return printable(str(text)).replace("\n", "\\n").replace("\t", "\\t")


def wrap(text: str, width: int, *, breaks: Iterable[str] = SEPARATORS) -> list[str]:
    """``text`` cut into lines of at most ``width`` cells, each cut after a blank or a separator
    (``wrap("a.b.c", 4)`` -> ``["a.b.", "c"]``); a blank at a cut is dropped. Only a run longer than
    ``width`` without any break is cut inside (it has nowhere else)."""
    breaks = set(breaks)
    width = max(width, 1)
    lines: list[str] = []
    while cell_len(text) > width:
        cut, used, last = 0, 0, -1
        for index, char in enumerate(text):
            used += get_character_cell_size(char)
            if used > width:
                break
            cut = index + 1
            if char == " " or char in breaks:
                last = index + 1
        end = last if last > 0 else cut
        lines.append(text[:end].rstrip(" "))
        text = text[end:].lstrip(" ")
    return [*lines, text] if text or not lines else lines


def pack(tokens: list[str], width: int, indent: int, *, joiner: str = " ") -> list[str]:
    """Whole tokens (ids, keys) on as few lines as fit ``width``: a token is never split; the lines after
    the first are indented by ``indent``. ``pack(["host.swap.file", "@ coulombcore"], 20, 2)`` -> two lines."""
    lines: list[str] = []
    current = ""
    for token in tokens:
        candidate = f"{current}{joiner}{token}" if current else token
        if current and cell_len(candidate) > width - (indent if lines else 0):
            lines.append(current)
            current = token
        else:
            current = candidate
    lines.append(current)
    return [lines[0], *(" " * indent + line for line in lines[1:])]


class _Printer:
    """Lines for one console of a fixed width; every line is at most ``width`` cells."""

    def __init__(self, console: Console, width: int):
        self.console, self.width = console, width

    def line(self, *parts: tuple[str, str]) -> None:
        text = Text(no_wrap=True, overflow="ignore")
        for part, style in parts:
            text.append(part, style=style or None)
        self.console.print(text, soft_wrap=True)

    def block(self, label: str, style: str, header: list[str], body: list[list[str]]) -> None:
        """``label`` in the status column, the header's tokens packed, then each body line (already cut)."""
        head = pack(header, self.width - LABEL, 2)
        self.line((label.ljust(LABEL), style), (head[0], "bold"))
        for line in head[1:]:
            self.line((" " * LABEL + line, "bold"))
        for group in body:
            for line in group:
                self.line((" " * LABEL + line, ""))

    def paragraph(self, text: str, indent: int = 0, style: str = "", *, breaks: Iterable[str] = SEPARATORS) -> None:
        for number, line in enumerate(wrap(text, self.width - indent - (2 if indent else 0), breaks=breaks)):
            self.line((" " * (indent + (2 if number and indent else 0)) + line, style))


def _change_lines(where: str, expected: str, observed: str, width: int) -> list[str]:
    """``where: expected → observed`` on one line if it fits, else expected and ``→ observed`` wrapped apart."""
    head = f"{where}: " if where else ""
    whole = f"{head}{expected} {ARROW} {observed}"
    if cell_len(whole) <= width:
        return [whole]
    lines = wrap(f"{head}{expected}", width)
    arrow = wrap(f"{ARROW} {observed}", width - 2)
    return [*lines, *("  " + line for line in arrow)]


def _drift_body(f: Finding, width: int) -> list[list[str]]:
    diff = finding_diff(f)
    body = []
    for change in diff.changes:
        suffix = " (secret)" if change.secret else ""
        body.append(_change_lines(one_line(change.where), one_line(show(change.expected)),
                                  one_line(show(change.observed)) + suffix, width))
    if not diff.changes:
        body.append(wrap(f"values as expected: {one_line(show(f.observed))}", width))
    if diff.folded():
        body.append([diff.folded()])
    if f.reason:
        body.append(wrap(one_line(f.reason), width))
    return body


def waiver_lines(reason: str, width: int) -> list[str]:
    """One line per waiver reference in a waived finding's reason (see ``WAIVER``), each cut to ``width``;
    a reason in another form: its first line, cut."""
    found = [f"{m['key'] + ' ' if m['key'] else ''}waived until {m['date']}: {m['link'].rstrip('/').rsplit('/', 1)[-1]}"
             for m in WAIVER.finditer(reason)]
    lines = [one_line(line) for line in found] or [one_line(reason.splitlines()[0] if reason else "waived")]
    return [line if cell_len(line) <= width else _cut(line, width) for line in lines]


def _cut(text: str, width: int) -> str:
    out, used = "", 0
    for char in text:
        used += get_character_cell_size(char)
        if used > width - 1:
            break
        out += char
    return out + "…"


def _tags(f: Finding) -> str:
    return one_line(f"· {f.layer} {f.task.rsplit('-', 1)[-1]}")


def _problems(printer: _Printer, problems: list[Finding]) -> None:
    """Drift grouped by control and difference across targets, could-not-verify by cause (``groups``),
    then pending (per control and reason) and waived."""
    from railiance_conformance.reporting.groups import cause_groups, drift_groups, natural_key

    width = printer.width - LABEL
    for drift in drift_groups(problems):
        f = drift.first
        targets = [one_line(t) for t in drift.targets]
        where = f"@ {targets[0]}" if len(targets) == 1 else f"on {len(targets)} targets"
        body = _drift_body(f, width)
        if len(targets) > 1:
            body.append(pack([t + "," for t in targets[:-1]] + targets[-1:], width, 0))
        printer.block(Status.DRIFT.value, STYLE[Status.DRIFT], [one_line(drift.control_id), where, _tags(f)], body)
    for cause in cause_groups(problems):
        ids = [one_line(c) for c in cause.controls]
        targets = [one_line(t) for t in cause.targets]
        where = f"@ {targets[0]}" if len(targets) == 1 else f"on {len(targets)} targets"
        header = [ids[0], where] if len(ids) == 1 else [f"{len(ids)} controls", where]
        body = [wrap(f"could not verify: {one_line(cause.reason)}", width)]
        if len(ids) > 1:
            body.append(pack([i + "," for i in ids[:-1]] + ids[-1:], width, 0))
        if len(targets) > 1:
            body.append(pack(["on"] + [t + "," for t in targets[:-1]] + targets[-1:], width, 0))
        printer.block("error", STYLE[Status.ERROR], header, body)
    pending = sorted((f for f in problems if f.status is Status.PENDING),
                     key=lambda f: (f.control_id, f.reason, natural_key(f.target)))
    for (control_id, reason), same in groupby(pending, key=lambda f: (f.control_id, f.reason)):
        group = list(same)
        targets = [one_line(f.target) for f in group]
        header = [one_line(control_id), "@", *(t + "," for t in targets[:-1]), targets[-1], _tags(group[0])]
        printer.block(Status.PENDING.value, STYLE[Status.PENDING], header, [wrap(one_line(reason), width)] if reason else [])
    for f in problems:
        if f.status is Status.WAIVED:
            printer.block(Status.WAIVED.value, STYLE[Status.WAIVED], [one_line(f.control_id), f"@ {one_line(f.target)}",
                                                                        _tags(f)], [waiver_lines(f.reason, width)])


def _claims(printer: _Printer, claims: tuple[Claim, ...], coverage=None) -> None:
    """The workplan's claims against the findings, loudest first: one block per task, with how many of
    its Done-when clauses this run verified (``Run.coverage``) and each clause not verified."""
    from railiance_conformance.coverage import VERIFIED, by_task

    covered = by_task(coverage)
    printer.line(("Workplan claims vs. reality", "bold"))
    for claim in claims:
        says = claim.workplan_status + (", needs_human" if claim.needs_human else "")
        counts = ", ".join(f"{n} {s}" for s, n in claim.counts.items()) or "no findings"
        style = CLAIM_STYLE.get(claim.verdict, "")
        printer.line(("  " + one_line(claim.verdict), style))
        head = pack([one_line(claim.task.rsplit('-', 1)[-1]), *one_line(claim.title).split(), f"({one_line(says)}):",
                     *one_line(counts).split()], printer.width - 4, 2)
        if claim.drifted:
            keys = [one_line(k) for k in claim.drifted]
            head += pack(["drifted:", *(k + "," for k in keys[:-1]), keys[-1]], printer.width - 4, 2)
        row = covered.get(claim.task)
        if row is not None and row.clauses:
            head += pack(["Done", "when:", *row.summary().split()], printer.width - 4, 2)
            for clause in row.clauses:
                if clause.state != VERIFIED:
                    head += pack(["-", *one_line(clause.clause).split(), f"({clause.state})"], printer.width - 6, 4)
        for line in head:
            printer.line(("    " + line, ""))


VERDICT_STYLE = {"conformant": "bold green", "drift": "bold red", "could not verify": "bold magenta"}


def _named(label: str, keys: tuple[str, ...], width: int) -> list[str]:
    """``new drift (3) on drifted: host.swap.file, host.nproc.configured`` -- grouped by target or by control,
    whichever names them in fewer groups -- cut to three lines at most, the rest pointed to summary.md."""
    from railiance_conformance.reporting.groups import natural_key

    by_control: dict[str, list[str]] = {}
    by_target: dict[str, list[str]] = {}
    for key in keys:
        control, _, target = key.partition("@")
        by_control.setdefault(control, []).append(target)
        by_target.setdefault(target, []).append(control)
    if len(by_target) <= len(by_control):
        parts = [f"on {one_line(t)}: " + ", ".join(one_line(c) for c in sorted(by_target[t]))
                 for t in sorted(by_target, key=natural_key)]
    else:
        parts = [f"{one_line(c)} on " + ", ".join(one_line(t) for t in sorted(ts, key=natural_key)[:3])
                 + (f" +{len(ts) - 3}" if len(ts) > 3 else "") for c, ts in by_control.items()]
    lines = wrap(f"{label} ({len(keys)}) " + "; ".join(parts), width, breaks=" ;,")
    if len(lines) > 3:  # the third line ends at a whole name, then points to the full list
        third = _cut(lines[2], width - 16)[:-1]
        cut = max(third.rfind(", "), third.rfind("; "))
        lines = lines[:2] + [(third[:cut + 1] if cut > 0 else third) + " … (summary.md)"]
    return lines


def _verdict_block(printer: _Printer, run: Run, warnings: Iterable[str], reports: str | None) -> None:
    """The last lines on screen: the verdict, the counts, what is new and fixed (named), where the reports are."""
    width = printer.width
    for warning in warnings:
        printer.paragraph(warning, style="bold red", breaks=" ")
    counts = run.counts()
    verdict = run.verdict()
    printer.line(("─" * width, ""))
    detail = {"conformant": "every control holds",
              "drift": f"{counts['drift']} drift" + (f", {counts['error']} could not verify" if counts["error"] else ""),
              "could not verify": f"{counts['error']} could not verify" + (" (partial run)" if run.partial else "")}
    printer.line(("VERDICT: " + verdict.upper(), VERDICT_STYLE[verdict]), (" — " + detail[verdict], "bold"))
    totals = f"{len(run.findings)} findings on {len(run.targets)} targets: "
    parts = [(f"{counts[s.value]} {s.value}" + ("," if n < len(Status) - 1 else ""), STYLE[s])
             for n, s in enumerate(Status)] + ([("(partial run)", "bold")] if run.partial else [])
    line: list[tuple[str, str]] = [(totals.rstrip(), "")]
    used = cell_len(totals.rstrip())
    for text, style in parts:
        if used + 1 + cell_len(text) > width:
            printer.line(*line)
            line, used = [(" ", "")], 1
        line += [(" ", ""), (text, style)]
        used += 1 + cell_len(text)
    printer.line(*line)
    if run.diff is not None:
        changes = run.changes() or {}
        if run.diff.new_drift:
            for text in _named("new drift", run.diff.new_drift, width):
                printer.line((text, "red"))
        if run.diff.fixed:
            for text in _named("fixed", run.diff.fixed, width):
                printer.line((text, "green"))
        printer.paragraph(f"since the previous run: {changes['new_drift']} new drift, {changes['fixed']} fixed, "
                          f"{changes['persisting']} persisting, {changes['status_changes']} status changes", breaks=" ")
    else:
        printer.line(("no previous run in the history to compare with", ""))
    if reports:  # "reports: DIR/ (names)": the directory whole on its line, the file names wrapped between names
        head, _, names = reports.partition(" (")
        printer.paragraph(head, breaks=" /")
        if names:
            printer.paragraph("(" + names, indent=0, breaks=" ")


def render_summary(run: Run, *, width: int = 120, color: bool = False, warnings: Iterable[str] = (),
                   reports: str | None = None) -> str:
    """The summary for a terminal ``width`` columns wide (clamped to 80..200), ANSI colours if ``color``:
    the problems grouped, the fixes, the workplan's claims, then the verdict block last (``warnings``
    just before it, ``reports`` -- where the reports are -- its last line)."""
    width = min(max(int(width), MIN_WIDTH), MAX_WIDTH)
    output = io.StringIO()
    console = Console(file=output, width=width, force_terminal=color,
                      color_system="standard" if color else None, highlight=False, emoji=False, markup=False)
    printer = _Printer(console, width)
    problems = sorted((f for f in run.findings if f.status is not Status.PASS),
                      key=lambda f: (LOUDEST_FIRST.index(f.status), f.layer, f.task, f.control_id, f.target))
    if problems:
        printer.line(("What does not hold", "bold underline"))
        _problems(printer, problems)
        fixes = {f.control_id: f.remediation for f in problems if f.status is Status.DRIFT}
        if fixes:
            printer.line(("How to fix the drift", "bold"))
            for control_id, remediation in fixes.items():
                printer.line(("  " + one_line(control_id), "bold"))
                for part in str(remediation).splitlines() or [""]:
                    printer.paragraph(one_line(part), 4, breaks=" ")
    if run.claims:
        _claims(printer, run.claims, run.coverage)
    _verdict_block(printer, run, warnings, reports)
    return output.getvalue()
