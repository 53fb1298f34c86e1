"""gate.approval: a tamper-evident, signed record of a human's GO for one gate run.

Each approval is one row of the ``approval_chain`` table in the history's SQLite file. A row holds
the task, the id of the gate run it approves, the verdict (GO only), the approver (a principal of
OpenSSH's ``allowed_signers`` file, as git's ssh signing uses it), the UTC time, the sha256 digest
of the approved report (archived content-addressed next to the history, see ``archive``), the git
HEADs of the railiance-* checkouts, the hash of the previous row (``prev_hash``: a hash chain,
``sha256:0…0`` for the first row), an SSH signature over all of that made with
``ssh-keygen -Y sign -n gate-approval@railiance-conformance`` (the suite's own namespace, so no
signature made for git or for files can be replayed as an approval), and its own ``row_hash``.
Each approval also leaves a receipt file (the whole signed row) in the archive. A row of format 2
also signs where and for what it was made: the history's identity (``identity.HistoryIdentity``),
the gated cluster's kube-system namespace uid (or null), and the approved run's end as the history
recorded it, so the approval time and the run's time cannot be chosen apart.

``verify_chain`` re-checks everything: the chain links, each row's hash, each signature with
``ssh-keygen -Y check-novalidate`` (contents) and ``-Y verify`` against ``allowed_signers`` for
the row's approver at the row's time (who), that the approved run is in the history with a GO
for that task, that the archived report still has the recorded digest, the table's AUTOINCREMENT
high-water mark, the receipts and the append-only triggers; that time only moves forward (a row's time
is not before its run's end, the previous row's or its history's identity, its run was not recorded after a
run that ended later, it is in the form ``record`` writes, and not more than ``MAX_CLOCK_SKEW_S``
ahead of the verifying clock: the signer chooses the time its key is checked at, so a retired key
dating a row back into its validity breaks the order); that each row was made in this history
(and, when asked, for the cluster being cut over); with ``expect_head``, that a head kept elsewhere
is still in the chain; without it, that an empty chain does not sit beside GO runs. Any forged,
edited, deleted, backdated or copied row is a ``Problem`` naming the row (``#seq``). Triggers (RAISE(ABORT) on UPDATE, DELETE and replacing
INSERTs) and a CHECK admitting only 'GO' make an accident impossible and a tampering visible;
the signatures make it evident. Example::

    chain = ApprovalChain("reports/history.sqlite")
    chain.record(task="RAIL-HO-WP-0004-T09", run_id="4f0c9a2e1b7d", approver="ada@railiance.example",
                 report_digest=digest, repo_heads={}, signing_key=Path("~/.ssh/id_ed25519").expanduser(),
                 allowed_signers=Path("policies/allowed_signers"))
    verify_chain("reports/history.sqlite", Path("policies/allowed_signers")).ok  # -> True
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from railiance_conformance.gate import archive, identity
from railiance_conformance.history import open_database

GO = "GO"
NAMESPACE = "gate-approval@railiance-conformance"
GENESIS = "sha256:" + "0" * 64
SIGN_TIMEOUT_S = 30.0
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"\bkey (SHA256:[A-Za-z0-9+/=]+)")
_GATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")  # the one form ``record`` writes
FORMAT = 2  # rows that carry the history identity, the cluster identity and the run's end
MAX_CLOCK_SKEW_S = 300.0  # how far a row's time may lie ahead of the verifying machine's clock
TABLE = "approval_chain"
TRIGGERS = ("approval_chain_no_update", "approval_chain_no_delete", "approval_chain_no_replace")
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, run_id TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict = 'GO'), approver TEXT NOT NULL, approved_at_utc TEXT NOT NULL,
  report_digest TEXT NOT NULL, repo_heads TEXT NOT NULL, prev_hash TEXT NOT NULL, signature TEXT NOT NULL,
  row_hash TEXT NOT NULL, run_finished_at_utc TEXT, history_id TEXT, cluster_id TEXT);
CREATE TRIGGER IF NOT EXISTS approval_chain_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS approval_chain_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS approval_chain_no_replace BEFORE INSERT ON {TABLE}
WHEN EXISTS (SELECT 1 FROM {TABLE} WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: an INSERT may not replace an approval'); END;
"""
_BINDING = ("run_finished_at_utc", "history_id", "cluster_id")  # added in format 2 (NULL in older rows)
_COLUMNS = ("seq", "task", "run_id", "verdict", "approver", "approved_at_utc", "report_digest", "repo_heads",
            "prev_hash", "signature", "row_hash", *_BINDING)


class NotApproved(ValueError):
    """A verdict other than GO was offered for recording."""


class ApprovalRefused(RuntimeError):
    """The approval could not be recorded: bad signer, broken chain, ssh-keygen failed ... (the reason says)."""


class RepoHeadError(RuntimeError):
    """A path given to ``repo_heads`` is not a git checkout (or git could not read its HEAD)."""


@dataclass(frozen=True, slots=True)
class Approval:
    """One signed GO: who approved which gate run of which task, when, against which report and commits."""

    seq: int
    task: str
    run_id: str
    verdict: str
    approver: str
    approved_at_utc: str
    report_digest: str
    repo_heads: dict[str, str]
    prev_hash: str
    signature: str
    row_hash: str
    run_finished_at_utc: str | None = None  # the approved run's end, as the history records it
    history_id: str | None = None           # the history it was made in (None: a row of the first format)
    cluster_id: str | None = None           # the gated cluster's kube-system namespace uid (None: no cluster)

    @property
    def bound(self) -> bool:
        """True for a row of format 2 (it carries its history's identity and the run's end)."""
        return self.history_id is not None

    def payload(self) -> bytes:
        """The bytes the approver signs: canonical JSON of every field but the signature and row hash."""
        return payload(self.seq, self.task, self.run_id, self.verdict, self.approver, self.approved_at_utc,
                       self.report_digest, self.repo_heads, self.prev_hash,
                       **({name: getattr(self, name) for name in _BINDING} if self.bound else {}))

    def computed_hash(self) -> str:
        """``sha256:`` of the payload, a newline and the armored signature (what ``row_hash`` must be)."""
        return "sha256:" + hashlib.sha256(self.payload() + b"\n" + self.signature.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the chain; ``seq`` names the row (None: the table as a whole)."""

    seq: int | None
    message: str

    def __str__(self) -> str:
        return f"row #{self.seq}: {self.message}" if self.seq is not None else self.message


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


def payload(seq: int, task: str, run_id: str, verdict: str, approver: str, approved_at_utc: str,
            report_digest: str, repo_heads: dict[str, str], prev_hash: str, **binding: str | None) -> bytes:
    """Canonical JSON (sorted keys, no blanks) of one row's signed fields, with the namespace.

    ``binding`` (format 2): ``run_finished_at_utc``, ``history_id`` and ``cluster_id`` (None: no
    cluster was targeted), signed together with ``"format": 2``; without it, the first format's bytes.
    """
    fields: dict[str, Any] = {"seq": seq, "task": task, "run_id": run_id, "verdict": verdict, "approver": approver,
                              "approved_at_utc": approved_at_utc, "report_digest": report_digest,
                              "repo_heads": dict(repo_heads), "prev_hash": prev_hash, "namespace": NAMESPACE}
    if binding:
        unknown = set(binding) - set(_BINDING)
        if unknown:
            raise TypeError(f"payload: unknown fields {sorted(unknown)}")
        fields |= {"format": FORMAT, **{name: binding.get(name) for name in _BINDING}}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _ssh_keygen(argv: list[str], data: bytes, timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ssh-keygen", *argv], input=data, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise ApprovalRefused("ssh-keygen not found: apt-get install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise ApprovalRefused(f"ssh-keygen -Y {argv[1]} did not finish within {timeout_s} s "
                              "(a passphrase prompt? use ssh-agent)") from None


def _said(done: subprocess.CompletedProcess) -> str:
    """ssh-keygen's own words (stderr and stdout), one line; never key material (it prints none)."""
    text = (done.stderr + done.stdout).decode(errors="replace")
    return " ".join(line for line in text.split("\n") if line.strip() and "standard input" not in line)[:300]


def sign(data: bytes, signing_key: Path, *, timeout_s: float = SIGN_TIMEOUT_S) -> str:
    """``sign(payload, Path("~/.ssh/id_ed25519"))`` -> the armored ``-----BEGIN SSH SIGNATURE-----`` text.

    ``signing_key`` is a private key file, or a public key whose private half ssh-agent holds.
    """
    done = _ssh_keygen(["-Y", "sign", "-n", NAMESPACE, "-f", str(signing_key)], data, timeout_s)
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        raise ApprovalRefused(f"ssh-keygen -Y sign with {signing_key} failed: {_said(done)}")
    return done.stdout.decode().strip() + "\n"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """``contents_ok``: the signature is valid for the data (by some key); ``signer_ok``: by a key that
    allowed_signers lets sign as the principal at that time. ``fingerprint`` of the signing key."""

    contents_ok: bool
    signer_ok: bool
    fingerprint: str
    detail: str


def check_signature(data: bytes, signature: str, principal: str, allowed_signers: Path, when_utc: str, *,
                    timeout_s: float = SIGN_TIMEOUT_S) -> SignatureCheck:
    """``check_signature(payload, sig, "ada@r.example", Path("allowed_signers"), "2026-11-27T09:30:00Z")``."""
    with tempfile.TemporaryDirectory(prefix="gate-sig-") as tmp:
        sig = Path(tmp) / "approval.sig"
        sig.write_text(signature)
        novalidate = _ssh_keygen(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data, timeout_s)
        found = _FINGERPRINT.search(novalidate.stdout.decode(errors="replace"))
        fingerprint = found[1] if found else "?"
        if novalidate.returncode != 0:
            return SignatureCheck(False, False, fingerprint, _said(novalidate))
        stamp = _verify_time(when_utc)
        argv = ["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE, "-s", str(sig)]
        verified = _ssh_keygen([*argv, *([f"-Overify-time={stamp}"] if stamp else [])], data, timeout_s)
        return SignatureCheck(True, verified.returncode == 0, fingerprint, _said(verified))


def _verify_time(when_utc: str) -> str:
    try:
        return datetime.fromisoformat(when_utc).astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ")
    except ValueError:
        return ""


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
                if (_has_table(con, TABLE) and set(_BINDING) <= _table_columns(con)
                        and identity.read(con) is not None):
                    return  # nothing to make: no write lock taken
                con.execute("BEGIN IMMEDIATE")
                try:
                    if not _has_table(con, TABLE):  # triggers are made with the table, never silently re-made later
                        for statement in _statements(SCHEMA):
                            con.execute(statement)
                    present = _table_columns(con)
                    for name in _BINDING:
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
                when = _utc(now or clock)
                broken = _structural_problems(con, clock)
                if broken:
                    raise ApprovalRefused("the approval chain does not verify, nothing was appended: "
                                          + "; ".join(str(p) for p in broken[:5])
                                          + " (run gate --verify-approvals)")
                made_in = identity.read(con)
                if made_in is None:
                    raise ApprovalRefused(f"{self.path} has no history identity: open it with ApprovalChain first")
                run = _run_facts(con).get(run_id.strip())
                if run is None:
                    raise ApprovalRefused(f"run {run_id} is not in the history {self.path}: only a recorded gate run "
                                          "can be approved")
                if run.verdict != GO or run.task != task.strip():
                    raise NotApproved(f"run {run_id} is recorded as {run.verdict or 'no verdict'} for "
                                      f"{run.task or 'no task'}: only a GO of {task} is recorded as its approval")
                rows = _rows(con)
                _refuse_time(when, clock, run, rows[-1] if rows else None)
                dated_back = _identity_time_problems(Approval(0, task, run_id, GO, approver, when, report_digest, {},
                                                              GENESIS, "", "", run.finished_at, made_in.history_id),
                                                     made_in)
                if run.ended_later_before is not None or dated_back:
                    raise ApprovalRefused("; ".join([str(p).removeprefix("row #0: ") for p in dated_back] + (
                        [f"run {run_id} was recorded after run {run.ended_later_before[0]} (ended "
                         f"{run.ended_later_before[1]}) but claims an earlier end, {run.finished_at}"]
                        if run.ended_later_before else [])) + "; nothing was recorded")
                seq, prev = _next_link(con)
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
                con.execute(f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                            tuple(row[c] for c in _COLUMNS))
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
            return _rows(con)


def _refuse_time(when: str, clock: datetime, run: "RunFacts", last: Approval | None) -> None:
    """``ApprovalRefused`` unless ``when`` is at or after the run's end and the last row's time, and
    not ahead of this machine's clock by more than ``MAX_CLOCK_SKEW_S``."""
    at = _parse(when)
    if at is None:
        raise ApprovalRefused(f"approval time {when!r} is not an RFC 3339 UTC time")
    ended = _parse(run.finished_at)
    if ended is None:
        raise ApprovalRefused(f"run {run.run_id}'s end {run.finished_at!r} in the history is not an RFC 3339 time")
    if at < ended:
        raise ApprovalRefused(f"the approval time {when} is before run {run.run_id} ended ({run.finished_at}): "
                              "an approval cannot precede what it approves (this machine's clock is behind, or "
                              "the time was set back); nothing was recorded")
    before = _parse(last.approved_at_utc) if last else None
    if last is not None and before is not None and at < before:
        raise ApprovalRefused(f"the approval time {when} is before row #{last.seq}'s ({last.approved_at_utc}): "
                              "time only moves forward along the chain (this machine's clock is behind, or the "
                              "time was set back); nothing was recorded")
    if (at - clock).total_seconds() > MAX_CLOCK_SKEW_S:
        raise ApprovalRefused(f"the approval time {when} is more than {MAX_CLOCK_SKEW_S:g} s ahead of this "
                              f"machine's clock ({_utc(clock)}); nothing was recorded")


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


def _has_table(con, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _table_columns(con) -> set[str]:
    return {r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")}


def _rows(con) -> list[Approval]:
    if not _has_table(con, TABLE):
        return []
    present = _table_columns(con)
    chosen = ", ".join(c if c in present else f"NULL AS {c}" for c in _COLUMNS)
    out = []
    for row in con.execute(f"SELECT {chosen} FROM {TABLE} ORDER BY seq").fetchall():
        values = dict(zip(_COLUMNS, row, strict=True))
        try:
            values["repo_heads"] = json.loads(values["repo_heads"])
        except (TypeError, ValueError):
            values["repo_heads"] = {"(unreadable)": str(values["repo_heads"])}
        out.append(Approval(**{k: (v if k in ("seq", "repo_heads") or (k in _BINDING and v is None) else str(v))
                               for k, v in values.items()}))
    return out


def _next_link(con) -> tuple[int, str]:
    rows = _rows(con)
    high = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE,)).fetchone()
    seq = max([rows[-1].seq if rows else 0, high[0] if high else 0]) + 1
    return seq, rows[-1].row_hash if rows else GENESIS


def _structural_problems(con, clock: datetime) -> list[Problem]:
    """Chain links, row hashes, gaps, the high-water mark, the triggers, the history identity each row
    carries and time along the chain: no ssh-keygen needed. ``clock``: now, on this machine (UTC)."""
    problems: list[Problem] = []
    present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    exists = _has_table(con, TABLE)
    if exists:
        problems += [Problem(None, f"the append-only trigger {name} is missing: someone dropped it; "
                                   "every row after that may have been changed") for name in TRIGGERS
                     if name not in present]
    problems += [Problem(None, f"the history identity's trigger {name} is missing: someone dropped it; the "
                               "identity may have been replaced") for name in identity.missing_triggers(con)]
    made_in = identity.read(con)
    rows = _rows(con)
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
            problems += _identity_time_problems(approval, made_in)
        prev, prev_seq, prev_hash = approval, approval.seq, approval.row_hash
    high = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE,)).fetchone() if exists else None
    if high and high[0] > prev_seq:
        gone = f"#{high[0]}" if high[0] == prev_seq + 1 else f"#{prev_seq + 1}..#{high[0]}"
        problems.append(Problem(high[0], f"row(s) {gone} deleted: the table's sequence reached #{high[0]} "
                                         f"but the last row is #{prev_seq}"))
    return problems


def _identity_time_problems(approval: Approval, made_in: identity.HistoryIdentity) -> list[Problem]:
    """A row signed with the history's identity cannot be older than that identity (less
    ``MAX_CLOCK_SKEW_S`` for another machine's clock), and is in the one form ``record`` writes
    (``YYYY-MM-DDTHH:MM:SSZ``): ``-Overify-time`` has whole seconds, so a fraction or an offset is a
    time the verifier would have to round, and no row the gate made has one."""
    problems = []
    if not _GATE_TIME.fullmatch(approval.approved_at_utc):
        problems.append(Problem(approval.seq, f"its time {approval.approved_at_utc!r} is not in the form the gate "
                                              "writes (YYYY-MM-DDTHH:MM:SSZ, whole seconds, UTC): a row made by hand"))
    at, created = _parse(approval.approved_at_utc), _parse(made_in.created_at_utc)
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
    at = _parse(approval.approved_at_utc)
    if at is None:
        return [Problem(approval.seq, f"its time {approval.approved_at_utc!r} is not an RFC 3339 UTC time")]
    problems = []
    if approval.bound:
        ended = _parse(approval.run_finished_at_utc or "")
        if ended is None:
            problems.append(Problem(approval.seq, f"its run end {approval.run_finished_at_utc!r} is not an RFC 3339 "
                                                  "UTC time"))
        elif at < ended:
            problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, before the run it "
                                                  f"approves ({approval.run_id}) ended at "
                                                  f"{approval.run_finished_at_utc}: time runs backwards (a row dated "
                                                  "back, e.g. into a retired key's validity)"))
    before = _parse(prev.approved_at_utc) if prev is not None else None
    if prev is not None and before is not None and at < before:
        problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, before row #{prev.seq} "
                                              f"({prev.approved_at_utc}): time runs backwards along the chain "
                                              "(a row dated back, e.g. into a retired key's validity)"))
    ahead = (at - clock).total_seconds()
    if ahead > MAX_CLOCK_SKEW_S:
        problems.append(Problem(approval.seq, f"approved at {approval.approved_at_utc}, {ahead / 3600:.1f} h ahead "
                                              f"of this machine's clock ({_utc(clock)}; {MAX_CLOCK_SKEW_S:g} s of "
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
        problems = _structural_problems(con, clock)
        rows = _rows(con)
        runs = _run_facts(con)
        legacy = _legacy_count(con)
        made_in = identity.read(con)
        chain_table = _has_table(con, TABLE)
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
    if not stored.bound and not any(name in receipt for name in _BINDING):
        row = {k: v for k, v in row.items() if k not in _BINDING}
    return receipt != row


def _row_problems(approval: Approval, allowed_signers: Path, runs: dict[str, "RunFacts"], history: Path,
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
    at, ended = _parse(approval.approved_at_utc), _parse(finished_at)
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


@dataclass(frozen=True, slots=True)
class RunFacts:
    """One gate run as the history recorded it (``runs`` row and its ``meta.gate``)."""

    run_id: str
    task: str
    verdict: str
    finished_at: str
    cluster_uid: str | None
    ended_later_before: tuple[str, str] | None = None  # (run id, end) of a run recorded before it that ended
    #                                                    more than MAX_CLOCK_SKEW_S after it: its end was dated back


def _run_facts(con) -> dict[str, RunFacts]:
    """``{run_id: RunFacts}`` from the history's runs (``meta.gate``)."""
    if not _has_table(con, "runs"):
        return {}
    out = {}
    latest: tuple[datetime, str, str] | None = None  # the latest end among the runs recorded so far
    for run_id, finished_at, meta in con.execute("SELECT run_id, finished_at, meta FROM runs ORDER BY seq"):
        try:
            gate = json.loads(meta).get("gate") or {}
        except (TypeError, ValueError, AttributeError):
            gate = {}
        if not isinstance(gate, dict):
            gate = {}
        uid = gate.get("cluster_uid")
        ended = _parse(str(finished_at))
        earlier = None
        if ended is not None and latest is not None and (latest[0] - ended).total_seconds() > MAX_CLOCK_SKEW_S:
            earlier = (latest[1], latest[2])
        if ended is not None and (latest is None or ended > latest[0]):
            latest = (ended, str(run_id), str(finished_at))
        out[run_id] = RunFacts(run_id, str(gate.get("task", "")), str(gate.get("verdict", "")), str(finished_at),
                               str(uid) if uid else None, earlier)
    return out


def _legacy_count(con) -> int:
    if not _has_table(con, "approvals"):
        return 0
    return con.execute("SELECT count(*) FROM approvals").fetchone()[0]


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


def _parse(value: str) -> datetime | None:
    """An aware UTC datetime from RFC 3339 text; None when it is not one (or has no offset)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo is not None else None


def _utc(value: str | datetime) -> str:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset: give it as RFC 3339 UTC, e.g. 2026-11-27T09:30:00Z")
    return parsed.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = ["Approval", "ApprovalChain", "ApprovalRefused", "ChainReport", "FORMAT", "GENESIS", "GO",
           "MAX_CLOCK_SKEW_S", "NAMESPACE", "NotApproved", "Problem", "RepoHeadError", "RunFacts", "check_signature",
           "file_digest", "payload", "repo_heads", "sign", "verify_chain"]
