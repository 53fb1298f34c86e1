"""gate.approval: the append-only record of a human's GO for a task, in one SQLite file.

Only a GO is recorded (a NO-GO is printed, never stored). The database itself keeps the record
append-only: triggers RAISE(ABORT) on UPDATE and DELETE, and on an INSERT that would replace a row
(``INSERT OR REPLACE``); a CHECK admits only 'GO'. WAL and a busy timeout let processes append at once.
Example: ``Approvals("reports/approvals.sqlite").record("RAIL-HO-WP-0004-T09", "tegwick",
"2026-11-27T09:30:00Z", "sha256:" + "ab" * 32, repo_heads(["/srv/railiance-infra"]))``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from railiance_conformance.history import open_database

GO = "GO"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL CHECK (task <> ''),
  approver TEXT NOT NULL CHECK (approver <> ''), decided_at_utc TEXT NOT NULL,
  report_digest TEXT NOT NULL, repo_heads TEXT NOT NULL, verdict TEXT NOT NULL CHECK (verdict = 'GO'),
  recorded_at_utc TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS approvals_no_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS approvals_no_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS approvals_no_replace BEFORE INSERT ON approvals
WHEN EXISTS (SELECT 1 FROM approvals WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'approvals are append-only: an INSERT may not replace an approval'); END;
"""


class NotApproved(ValueError):
    """A verdict other than GO was offered for recording."""


class RepoHeadError(RuntimeError):
    """A path given to ``repo_heads`` is not a git checkout (or git could not read its HEAD)."""


@dataclass(frozen=True, slots=True)
class Approval:
    """One recorded GO: who decided, when, against which report and which commits."""

    seq: int
    task: str
    approver: str
    decided_at_utc: str
    report_digest: str
    repo_heads: dict[str, str]
    verdict: str
    recorded_at_utc: str


class Approvals:
    """``Approvals(path).list()`` -> every recorded ``Approval``, oldest first."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with self._connect() as con:
            con.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")

    def _connect(self):
        return open_database(self.path)

    def record(self, task: str, approver: str, decided_at_utc: str | datetime, report_digest: str,
               repo_heads: dict[str, str], verdict: str = GO) -> Approval:
        """``record("RAIL-HO-WP-0004-T09", "tegwick", "2026-11-27T09:30:00Z", digest, heads)`` -> the stored GO."""
        if verdict != GO:
            raise NotApproved(f"verdict {verdict!r} for {task}: only a GO is recorded as an approval")
        if not task.strip() or not approver.strip():
            raise ValueError("an approval needs a task and an approver")
        if not _DIGEST.fullmatch(report_digest):
            raise ValueError(f"report_digest {report_digest!r} is not 'sha256:' and 64 lowercase hex digits")
        bad = {repo: head for repo, head in repo_heads.items() if not _COMMIT.fullmatch(str(head))}
        if bad:
            raise ValueError(f"repo_heads must be full commit ids; not: {bad}")
        row = (task.strip(), approver.strip(), _utc(decided_at_utc), report_digest,
               json.dumps(dict(repo_heads), sort_keys=True), verdict, _utc(datetime.now(timezone.utc)))
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                seq = con.execute("INSERT INTO approvals (task, approver, decided_at_utc, report_digest, repo_heads, "
                                  "verdict, recorded_at_utc) VALUES (?, ?, ?, ?, ?, ?, ?)", row).lastrowid
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        return Approval(seq, *row[:4], dict(repo_heads), *row[5:])

    def list(self) -> list[Approval]:
        """Every approval, oldest first."""
        with self._connect() as con:
            rows = con.execute("SELECT seq, task, approver, decided_at_utc, report_digest, repo_heads, verdict, "
                               "recorded_at_utc FROM approvals ORDER BY seq").fetchall()
        return [Approval(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]


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
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def _utc(value: str | datetime) -> str:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset: give it as RFC 3339 UTC, e.g. 2026-11-27T09:30:00Z")
    return parsed.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
