"""Re-checking the whole approval chain (``verify_chain``), read-only.

Shape: ``verify_chain(history, allowed_signers)`` -> ``ChainReport`` (rows, head hash, every
``Problem``); ``structural_problems`` is the part that needs no ssh-keygen (links, hashes, gaps,
the high-water mark, triggers, the history identity, time along the chain). Times in seconds
(``MAX_CLOCK_SKEW_S``). What is checked and why: docs/gate.md, "Signed, hash-chained approvals".
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from railiance_conformance.gate import archive, identity
from railiance_conformance.gate.approval import (
    BINDING,
    GENESIS,
    GO,
    MAX_CLOCK_SKEW_S,
    Approval,
    ApprovalRefused,
    Problem,
    format_time,
    parse_time,
)
from railiance_conformance.gate.approval_signature import SIGN_TIMEOUT_S, check_signature
from railiance_conformance.gate.approval_table import (
    TABLE,
    TRIGGERS,
    RunFacts,
    has_table,
    legacy_count,
    read_rows,
    run_facts,
)
from railiance_conformance.history import open_database

_GATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")  # the one form ``record`` writes


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What ``verify_chain`` found: rows checked, the head hash, every problem (none: ``ok``).

    ``unbound``: rows signed before approvals carried their history's identity (they verify, but
    cannot show that they were made in this history); ``history_id``: this history's identity;
    ``expected_head_seq``: the row whose hash is the head asked for with ``expect_head`` (None: not asked
    or not found, then a problem says so); ``go_runs``: gate runs with GO in the history."""

    rows: int
    head: str
    problems: tuple[Problem, ...] = ()
    legacy_unsigned: int = 0  # rows of the pre-chain ``approvals`` table: cannot be verified
    unbound: int = 0
    history_id: str | None = None
    expected_head_seq: int | None = None
    go_runs: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def structural_problems(con, clock: datetime) -> list[Problem]:
    """Chain links, row hashes, gaps, the high-water mark, the triggers, the history identity each row
    carries and time along the chain: no ssh-keygen needed. ``clock``: now, on this machine (UTC)."""
    problems: list[Problem] = []
    present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    exists = has_table(con, TABLE)
    if exists:
        problems += [Problem(None, f"the append-only trigger {name} is missing: someone dropped it; "
                                   "every row after that may have been changed") for name in TRIGGERS
                     if name not in present]
    problems += [Problem(None, f"the history identity's trigger {name} is missing: someone dropped it; the "
                               "identity may have been replaced") for name in identity.missing_triggers(con)]
    made_in = identity.read(con)
    rows = read_rows(con)
    if rows and made_in is None and any(a.bound for a in rows):
        problems.append(Problem(None, "the history has no identity (table history_identity dropped or emptied), "
                                      "yet its approvals carry one: no row can show it was made here"))
    prev: Approval | None = None
    prev_seq, prev_hash = 0, GENESIS
    for approval in rows:
        if approval.seq != prev_seq + 1:
            gone = f"#{prev_seq + 1}" if approval.seq == prev_seq + 2 else f"#{prev_seq + 1}..#{approval.seq - 1}"
            problems.append(Problem(approval.seq, f"the chain jumps from #{prev_seq} to #{approval.seq}: "
                                                  f"row(s) {gone} deleted"))
        if approval.prev_hash != prev_hash:
            problems.append(Problem(approval.seq, f"its prev_hash {approval.prev_hash[:19]}… is not the hash of "
                                                  f"the row before it (#{prev_seq}): a row was inserted, deleted "
                                                  "or replaced before it"))
        if approval.row_hash != approval.computed_hash():
            problems.append(Problem(approval.seq, "its contents do not match its row_hash: edited after it was "
                                                  "recorded, or inserted without the gate"))
        if made_in is not None and approval.bound and approval.history_id != made_in.history_id:
            problems.append(Problem(approval.seq, f"it was made in history {approval.history_id}, not in this one "
                                                  f"({made_in.history_id}): an approval copied from another history "
                                                  "approves nothing here"))
        if made_in is not None and not approval.bound and approval.seq > made_in.unbound_through_seq:
            problems.append(Problem(approval.seq, "it does not carry the history's identity, though every row after "
                                                  f"#{made_in.unbound_through_seq} must (this history has one since "
                                                  f"{made_in.created_at_utc}): a row in the old format, made by hand "
                                                  "or copied from elsewhere"))
        problems += _time_problems(approval, prev, clock)
        if made_in is not None and approval.bound and approval.seq > made_in.unbound_through_seq:
            problems += identity_time_problems(approval, made_in)
        prev, prev_seq, prev_hash = approval, approval.seq, approval.row_hash
    high = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE,)).fetchone() if exists else None
    if high and high[0] > prev_seq:
        gone = f"#{high[0]}" if high[0] == prev_seq + 1 else f"#{prev_seq + 1}..#{high[0]}"
        problems.append(Problem(high[0], f"row(s) {gone} deleted: the table's sequence reached #{high[0]} "
                                         f"but the last row is #{prev_seq}"))
    return problems


def identity_time_problems(approval: Approval, made_in: identity.HistoryIdentity) -> list[Problem]:
    """A row signed with the history's identity cannot be older than that identity (less
    ``MAX_CLOCK_SKEW_S`` for another machine's clock), and is in the one form ``record`` writes
    (``YYYY-MM-DDTHH:MM:SSZ``): ``-Overify-time`` has whole seconds, so a fraction or an offset is a
    time the verifier would have to round, and no row the gate made has one."""
    problems = []
    if not _GATE_TIME.fullmatch(approval.approved_at_utc):
        problems.append(Problem(approval.seq, f"its time {approval.approved_at_utc!r} is not in the form the gate "
                                              "writes (YYYY-MM-DDTHH:MM:SSZ, whole seconds, UTC): a row made by hand"))
    at, created = parse_time(approval.approved_at_utc), parse_time(made_in.created_at_utc)
    if at is not None and created is not None and (created - at).total_seconds() > MAX_CLOCK_SKEW_S:
        problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, before this history got its "
                                              f"identity ({made_in.created_at_utc}), which the row carries: time "
                                              "runs backwards (a row dated back, e.g. into a retired key's "
                                              "validity)"))
    return problems


def _time_problems(approval: Approval, prev: Approval | None, clock: datetime) -> list[Problem]:
    """Time only moves forward: the row's time is a UTC time, not before the run it approves ended (the
    signed ``run_finished_at_utc``), not before the previous row's, not ahead of ``clock`` by more than
    ``MAX_CLOCK_SKEW_S``. A key's validity is checked at the row's own time (``-Overify-time``), so a
    row dated back into a retired key's validity breaks one of these."""
    at = parse_time(approval.approved_at_utc)
    if at is None:
        return [Problem(approval.seq, f"its time {approval.approved_at_utc!r} is not an RFC 3339 UTC time")]
    problems = []
    if approval.bound:
        ended = parse_time(approval.run_finished_at_utc or "")
        if ended is None:
            problems.append(Problem(approval.seq, f"its run end {approval.run_finished_at_utc!r} is not an RFC 3339 "
                                                  "UTC time"))
        elif at < ended:
            problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, before the run it "
                                                  f"approves ({approval.run_id}) ended at "
                                                  f"{approval.run_finished_at_utc}: time runs backwards (a row dated "
                                                  "back, e.g. into a retired key's validity)"))
    before = parse_time(prev.approved_at_utc) if prev is not None else None
    if prev is not None and before is not None and at < before:
        problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, before row #{prev.seq} "
                                              f"({prev.approved_at_utc}): time runs backwards along the chain "
                                              "(a row dated back, e.g. into a retired key's validity)"))
    ahead = (at - clock).total_seconds()
    if ahead > MAX_CLOCK_SKEW_S:
        problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, {ahead / 3600:.1f} h ahead "
                                              f"of this machine's clock ({format_time(clock)}; {MAX_CLOCK_SKEW_S:g} s of "
                                              "clock skew allowed): a row from the future"))
    return problems


def verify_chain(history: str | os.PathLike, allowed_signers: Path, *, expect_head: str | None = None,
                 cluster_id: str | None = None, timeout_s: float = SIGN_TIMEOUT_S,
                 now: datetime | None = None) -> ChainReport:
    """Re-check every approval (see the module docstring); read-only, creates nothing.

    ``expect_head``: a row hash kept elsewhere (the head the gate printed with an approval, kept with
    the change ticket): a problem unless a row of the chain has it (rows cut from the end, or the
    table dropped, lose it); ``GENESIS`` says "no approval was ever made here". Without it, an empty
    chain beside GO gate runs, archived GO reports or receipts is a problem (it cannot be told from
    a dropped table). ``cluster_id``: the kube-system uid of the cluster being cut over; every row
    carrying another is a problem. ``now``: this machine's clock (UTC), for rows from the future.
    """
    path = Path(history)
    clock = now or datetime.now(timezone.utc)
    if not path.exists():
        return ChainReport(0, GENESIS, (Problem(None, f"{path}: no such history database"),))
    with open_database(path) as con:
        con.execute("BEGIN")  # one consistent read of rows, triggers and runs
        problems = structural_problems(con, clock)
        rows = read_rows(con)
        runs = run_facts(con)
        legacy = legacy_count(con)
        made_in = identity.read(con)
        chain_table = has_table(con, TABLE)
        con.execute("COMMIT")
    if not allowed_signers.is_file():
        problems.append(Problem(None, f"allowed_signers file {allowed_signers} does not exist: no signature "
                                      "can be checked"))
    for approval in rows:
        problems += _row_problems(approval, allowed_signers, runs, path, timeout_s)
        if cluster_id is not None and approval.bound and approval.cluster_id != cluster_id:
            problems.append(Problem(approval.seq, f"it approves a run against cluster {approval.cluster_id or 'none'}, "
                                                  f"not the cluster targeted now ({cluster_id})"))
    receipts = archive.receipts(path)
    for seq, receipt in receipts.items():
        stored = next((a for a in rows if a.seq == seq), None)
        if stored is None:
            problems.append(Problem(seq, f"deleted: its receipt {receipt.name} is in the archive, the row is not "
                                         "in the table"))
        elif _receipt_differs(archive.read_receipt(receipt), stored):
            problems.append(Problem(seq, f"differs from its receipt {receipt.name}: edited after it was recorded"))
    go_runs = sorted((r for r in runs.values() if r.verdict == GO), key=lambda r: r.finished_at)
    expected_seq = None
    if expect_head is not None:
        expected_seq = 0 if expect_head == GENESIS else next((a.seq for a in rows if a.row_hash == expect_head), None)
        if expected_seq is None:
            problems.append(Problem(None, f"the chain head kept elsewhere, {expect_head}, is in none of the "
                                          f"{len(rows)} rows (head now {rows[-1].row_hash if rows else GENESIS}): "
                                          "rows were cut from the end of the chain, or the table was dropped or "
                                          "replaced"))
    elif not rows:
        go_reports = archive.go_reports(path)
        if go_runs or go_reports or receipts:
            what = "is missing" if not chain_table else "is empty"
            seen = [f"{len(go_runs)} gate run(s) with GO (the latest {go_runs[-1].run_id} at "
                    f"{go_runs[-1].finished_at})" if go_runs else "",
                    f"{len(go_reports)} archived GO report(s)" if go_reports else "",
                    f"{len(receipts)} approval receipt(s)" if receipts else ""]
            problems.append(Problem(None, f"the approval table {what}, yet the history holds "
                                          f"{', '.join(s for s in seen if s)}: an unapproved GO and a dropped approval "
                                          "table look the same here; check against the chain head kept with the "
                                          "change ticket (--expect-head sha256:…), or --expect-head "
                                          f"{GENESIS} if no approval was ever made"))
    problems.sort(key=lambda p: (p.seq is not None, p.seq or 0))
    return ChainReport(len(rows), rows[-1].row_hash if rows else GENESIS, tuple(problems), legacy,
                       unbound=sum(not a.bound for a in rows), history_id=made_in.history_id if made_in else None,
                       expected_head_seq=expected_seq, go_runs=len(go_runs))


def _receipt_differs(receipt: dict | None, stored: Approval) -> bool:
    """A receipt of the first format has no binding fields: compare what it has."""
    if receipt is None:
        return True
    row = stored.to_dict()
    if not stored.bound and not any(name in receipt for name in BINDING):
        row = {k: v for k, v in row.items() if k not in BINDING}
    return receipt != row


def _row_problems(approval: Approval, allowed_signers: Path, runs: dict[str, RunFacts], history: Path,
                  timeout_s: float) -> list[Problem]:
    problems = []
    if approval.verdict != GO:
        problems.append(Problem(approval.seq, f"its verdict is {approval.verdict!r}, not GO"))
    if allowed_signers.is_file():
        try:
            check = check_signature(approval.payload(), approval.signature, approval.approver, allowed_signers,
                                    approval.approved_at_utc, timeout_s=timeout_s)
        except ApprovalRefused as exc:
            problems.append(Problem(approval.seq, f"its signature could not be checked: {exc}"))
        else:
            if not check.contents_ok:
                problems.append(Problem(approval.seq, f"its signature does not match its contents (forged or "
                                                      f"edited): {check.detail or 'no valid signature'}"))
            elif not check.signer_ok:
                problems.append(Problem(approval.seq, f"signed by key {check.fingerprint}, which {allowed_signers} "
                                                      f"does not allow to approve as {approval.approver!r} at "
                                                      f"{approval.approved_at_utc}"))
    run = runs.get(approval.run_id)
    if run is None:
        problems.append(Problem(approval.seq, f"approves run {approval.run_id}, which is not in the history"))
    elif run.task != approval.task:
        problems.append(Problem(approval.seq, f"approves run {approval.run_id} for {approval.task}, but that run "
                                              f"gated {run.task or 'no task'}"))
    elif run.verdict != GO:
        problems.append(Problem(approval.seq, f"approves run {approval.run_id}, whose verdict was "
                                              f"{run.verdict or 'none'}, not GO"))
    if run is not None:
        problems += _run_binding_problems(approval, run.finished_at, run.cluster_uid, "the history records")
    if run is not None and run.ended_later_before is not None:
        problems.append(Problem(approval.seq, f"approves run {approval.run_id}, which the history recorded after run "
                                              f"{run.ended_later_before[0]} (ended {run.ended_later_before[1]}) though "
                                              f"it claims to have ended earlier, at {run.finished_at}: a run recorded "
                                              "later with its end dated back, e.g. into a retired key's validity"))
    report = archive.report_path(history, approval.report_digest)
    if report is None or not report.is_file():
        problems.append(Problem(approval.seq, f"the approved report {approval.report_digest} is not in the archive "
                                              f"{archive.archive_dir(history)}"))
    elif archive.digest(report) != approval.report_digest:
        problems.append(Problem(approval.seq, f"the archived report {report.name} no longer has the digest "
                                              "the approval recorded: it was changed"))
    else:
        facts = archive.report_run(report)
        if (facts["id"], facts["task"], facts["verdict"]) != (approval.run_id, approval.task, GO):
            problems.append(Problem(approval.seq, f"the approved report is of run {facts['id']} ({facts['task']}: "
                                                  f"{facts['verdict']}), not of a GO of run {approval.run_id}"))
        else:
            problems += _run_binding_problems(approval, facts["finished_at"], facts["cluster_uid"],
                                              "the approved report says")
    return problems


def _run_binding_problems(approval: Approval, finished_at: str, cluster_uid: str | None, source: str) -> list[Problem]:
    """The run's end and cluster the row carries (or, for a first-format row, its time) against ``source``."""
    problems = []
    at, ended = parse_time(approval.approved_at_utc), parse_time(finished_at)
    if approval.bound:
        if approval.run_finished_at_utc != finished_at:
            problems.append(Problem(approval.seq, f"it was signed for a run that ended at "
                                                  f"{approval.run_finished_at_utc}, but {source} "
                                                  f"{approval.run_id} ended at {finished_at or 'no time'}"))
        if approval.cluster_id != cluster_uid:
            problems.append(Problem(approval.seq, f"it was signed for cluster {approval.cluster_id or 'none'}, but "
                                                  f"{source} run {approval.run_id} gated cluster "
                                                  f"{cluster_uid or 'none'}"))
    elif at is not None and ended is not None and at < ended:
        problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, before the run it approves "
                                              f"ended ({source} {finished_at}): time runs backwards"))
    return problems
