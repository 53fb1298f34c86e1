"""The append-only chain of signed GOs (``ApprovalChain``) and the inputs of a record.

``ApprovalChain(history).record(...)`` signs and appends one GO (``ApprovalRefused``/``NotApproved``
naming why not) and leaves its receipt in the archive; ``list()`` reads the rows. ``repo_heads``
(``RepoHeadError``) and ``file_digest`` give what a row records. Verification: ``approval_verify``.
Example::

    chain = ApprovalChain("reports/history.sqlite")
    chain.record(task="RAIL-HO-WP-0004-T09", run_id="4f0c9a2e1b7d", approver="ada@railiance.example",
                 report_digest=digest, repo_heads={}, signing_key=Path("~/.ssh/id_ed25519").expanduser(),
                 allowed_signers=Path("policies/allowed_signers"))
    verify_chain("reports/history.sqlite", Path("policies/allowed_signers")).ok  # -> True
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from railiance_conformance.gate import archive, identity
from railiance_conformance.gate.approval import (
    BINDING,
    COLUMNS,
    GENESIS,
    GO,
    MAX_CLOCK_SKEW_S,
    NAMESPACE,
    Approval,
    ApprovalRefused,
    NotApproved,
    format_time,
    parse_time,
)
from railiance_conformance.gate.approval_signature import SIGN_TIMEOUT_S, check_signature, sign
from railiance_conformance.gate.approval_table import (
    SCHEMA,
    TABLE,
    RunFacts,
    has_table,
    next_link,
    read_rows,
    run_facts,
    table_columns,
)
from railiance_conformance.gate.approval_verify import identity_time_problems, structural_problems
from railiance_conformance.history import open_database

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class RepoHeadError(RuntimeError):
    """A path given to ``repo_heads`` is not a git checkout (or git could not read its HEAD)."""


class ApprovalChain:
    """``ApprovalChain(path).list()`` -> every signed ``Approval``, oldest first.

    Opening with ``create=True`` makes the table (and its triggers) if absent, adds the format-2
    columns to a table of the first format (ALTER TABLE ADD COLUMN: every row stays as it is), and
    gives the history its identity (``identity.ensure``) if it has none.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        self.path = Path(path)
        if create:
            with open_database(self.path) as con:
                if (has_table(con, TABLE) and set(BINDING) <= table_columns(con)
                        and identity.read(con) is not None):
                    return  # nothing to make: no write lock taken
                con.execute("BEGIN IMMEDIATE")
                try:
                    if not has_table(con, TABLE):  # triggers are made with the table, never silently re-made later
                        for statement in _statements(SCHEMA):
                            con.execute(statement)
                    present = table_columns(con)
                    for name in BINDING:
                        if name not in present:
                            con.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} TEXT")
                    identity.ensure(con)
                    con.execute("COMMIT")
                except BaseException:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    raise

    def record(self, *, task: str, run_id: str, approver: str, report_digest: str, repo_heads: dict[str, str],
               signing_key: Path, allowed_signers: Path, verdict: str = GO, history_verdict: str | None = GO,
               now: datetime | None = None, timeout_s: float = SIGN_TIMEOUT_S) -> Approval:
        """Sign and append one GO; ``ApprovalRefused`` if the chain is broken, the key may not sign as
        ``approver``, the run is not in the history, or the time would not move forward (before the
        run's end or the previous row's time, or more than ``MAX_CLOCK_SKEW_S`` ahead of this clock).
        ``history_verdict`` is the verdict the history holds for ``run_id``. The row carries the run's
        end and cluster identity as the history recorded them, and the history's identity."""
        if verdict != GO or history_verdict != GO:
            raise NotApproved(f"verdict {verdict if verdict != GO else history_verdict!r} for {task} run {run_id}: "
                              "only a GO is recorded as an approval")
        if not task.strip() or not approver.strip() or not run_id.strip():
            raise ValueError("an approval needs a task, a run id and an approver")
        if not _DIGEST.fullmatch(report_digest):
            raise ValueError(f"report_digest {report_digest!r} is not 'sha256:' and 64 lowercase hex digits")
        bad = {repo: head for repo, head in repo_heads.items() if not _COMMIT.fullmatch(str(head))}
        if bad:
            raise ValueError(f"repo_heads must be full commit ids; not: {bad}")
        with open_database(self.path) as con:
            con.execute("BEGIN IMMEDIATE")  # holds the write lock: seq and prev_hash cannot change under us
            try:
                clock = datetime.now(timezone.utc)  # read under the lock: no row can be appended after it
                when = format_time(now or clock)
                broken = structural_problems(con, clock)
                if broken:
                    raise ApprovalRefused("the approval chain does not verify, nothing was appended: "
                                          + "; ".join(str(p) for p in broken[:5])
                                          + " (run gate --verify-approvals)")
                made_in = identity.read(con)
                if made_in is None:
                    raise ApprovalRefused(f"{self.path} has no history identity: open it with ApprovalChain first")
                run = run_facts(con).get(run_id.strip())
                if run is None:
                    raise ApprovalRefused(f"run {run_id} is not in the history {self.path}: only a recorded gate run "
                                          "can be approved")
                if run.verdict != GO or run.task != task.strip():
                    raise NotApproved(f"run {run_id} is recorded as {run.verdict or 'no verdict'} for "
                                      f"{run.task or 'no task'}: only a GO of {task} is recorded as its approval")
                rows = read_rows(con)
                _refuse_time(when, clock, run, rows[-1] if rows else None)
                dated_back = identity_time_problems(Approval(0, task, run_id, GO, approver, when, report_digest, {},
                                                              GENESIS, "", "", run.finished_at, made_in.history_id),
                                                     made_in)
                if run.ended_later_before is not None or dated_back:
                    raise ApprovalRefused("; ".join([str(p).removeprefix("row #0: ") for p in dated_back] + (
                        [f"run {run_id} was recorded after run {run.ended_later_before[0]} (ended "
                         f"{run.ended_later_before[1]}) but claims an earlier end, {run.finished_at}"]
                        if run.ended_later_before else [])) + "; nothing was recorded")
                seq, prev = next_link(con)
                approval = Approval(seq, task.strip(), run_id.strip(), GO, approver.strip(), when, report_digest,
                                    dict(repo_heads), prev, "", "", run.finished_at, made_in.history_id,
                                    run.cluster_uid)
                signature = sign(approval.payload(), signing_key, timeout_s=timeout_s)
                check = check_signature(approval.payload(), signature, approval.approver, allowed_signers, when,
                                        timeout_s=timeout_s)
                if not check.signer_ok:
                    raise ApprovalRefused(f"key {check.fingerprint} may not approve as {approval.approver!r} "
                                          f"according to {allowed_signers} (namespace {NAMESPACE}): {check.detail}")
                approval = Approval(**{**approval.to_dict(), "signature": signature, "row_hash": ""})
                approval = Approval(**{**approval.to_dict(), "row_hash": approval.computed_hash()})
                row = approval.to_dict()
                row["repo_heads"] = json.dumps(approval.repo_heads, sort_keys=True)
                con.execute(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                            tuple(row[c] for c in COLUMNS))
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        archive.write_receipt(self.path, approval.seq, approval.to_dict())
        return approval

    def list(self) -> list[Approval]:
        """Every row, oldest first, as stored (``verify_chain`` says whether to trust them)."""
        with open_database(self.path) as con:
            return read_rows(con)


def _refuse_time(when: str, clock: datetime, run: RunFacts, last: Approval | None) -> None:
    """``ApprovalRefused`` unless ``when`` is at or after the run's end and the last row's time, and
    not ahead of this machine's clock by more than ``MAX_CLOCK_SKEW_S``."""
    at = parse_time(when)
    if at is None:
        raise ApprovalRefused(f"approval time {when!r} is not an RFC 3339 UTC time")
    ended = parse_time(run.finished_at)
    if ended is None:
        raise ApprovalRefused(f"run {run.run_id}'s end {run.finished_at!r} in the history is not an RFC 3339 time")
    if at < ended:
        raise ApprovalRefused(f"the approval time {when} is before run {run.run_id} ended ({run.finished_at}): "
                              "an approval cannot precede what it approves (this machine's clock is behind, or "
                              "the time was set back); nothing was recorded")
    before = parse_time(last.approved_at_utc) if last else None
    if last is not None and before is not None and at < before:
        raise ApprovalRefused(f"the approval time {when} is before row #{last.seq}'s ({last.approved_at_utc}): "
                              "time only moves forward along the chain (this machine's clock is behind, or the "
                              "time was set back); nothing was recorded")
    if (at - clock).total_seconds() > MAX_CLOCK_SKEW_S:
        raise ApprovalRefused(f"the approval time {when} is more than {MAX_CLOCK_SKEW_S:g} s ahead of this "
                              f"machine's clock ({format_time(clock)}); nothing was recorded")


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one each (``sqlite3.complete_statement`` decides where one ends),
    so they run inside an open transaction (``executescript`` would commit it first)."""
    out, part = [], ""
    for line in script.splitlines(keepends=True):
        part += line
        if sqlite3.complete_statement(part):
            out.append(part.strip())
            part = ""
    return [s for s in out if s.strip(" ;\n")]


def repo_heads(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``repo_heads(["/srv/railiance-infra"])`` -> ``{"/srv/railiance-infra": "8563afae..."}`` (git rev-parse HEAD)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no GIT_DIR steering git elsewhere
    heads: dict[str, str] = {}
    for path in paths:
        key = os.fspath(path)
        try:
            done = subprocess.run(["git", "-C", key, "rev-parse", "--show-toplevel", "--verify", "HEAD"],
                                  capture_output=True, text=True, timeout=30, env=env, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RepoHeadError(f"{key}: could not run git rev-parse HEAD: {exc}") from None
        lines, detail = done.stdout.splitlines(), " ".join(done.stderr.split())
        if done.returncode != 0 and not lines:
            raise RepoHeadError(f"{key} is not a git checkout ({detail})")
        if done.returncode != 0:
            raise RepoHeadError(f"{key}: git rev-parse HEAD failed, no commit yet? ({detail})")
        if Path(lines[0]).resolve() != Path(key).resolve():
            raise RepoHeadError(f"{key} is not a git checkout itself but a folder inside the checkout {lines[0]}")
        heads[key] = lines[1]
    return heads


def file_digest(path: str | os.PathLike) -> str:
    """``file_digest("reports/findings.json")`` -> ``"sha256:9f86d0..."``, the form ``record`` expects."""
    return archive.digest(Path(path))
