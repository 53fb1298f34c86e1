"""The gate's archive next to the history: every gate report content-addressed, every approval's receipt.

For a history ``reports/history.sqlite`` the archive is ``reports/history-archive/``:

* ``reports/sha256-<64 hex>.json``: a gate run's ``findings.json``, named by the sha256 of its bytes,
  written once (temp file + rename), read-only (0444), never replaced, so the digest an approval
  records can be checked at any later time;
* ``approvals/<seq, 8 digits>.json``: the whole signed approval row, written after the row is
  committed, so a row deleted from the table (even the last one) is still noticed.

Example: ``store_report(Path("reports/history.sqlite"), Path("reports/gate/findings.json"))``
-> ``"sha256:9f86d0…"``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

_NAME = re.compile(r"sha256:([0-9a-f]{64})")
_RECEIPT = re.compile(r"(\d{8})\.json")


def archive_dir(history: Path) -> Path:
    """``archive_dir(Path("reports/history.sqlite"))`` -> ``reports/history-archive``."""
    return history.with_name(f"{history.stem}-archive")


def digest(path: Path) -> str:
    """``"sha256:<hex>"`` of the file's bytes."""
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def report_path(history: Path, report_digest: str) -> Path | None:
    """Where the report with this digest is archived (None for a malformed digest)."""
    found = _NAME.fullmatch(report_digest)
    return archive_dir(history) / "reports" / f"sha256-{found[1]}.json" if found else None


def _write_once(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_report(history: Path, report: Path) -> str:
    """Archive ``report`` under its own digest (idempotent); returns the digest."""
    data = report.read_bytes()
    found = "sha256:" + hashlib.sha256(data).hexdigest()
    target = report_path(history, found)
    assert target is not None
    _write_once(target, data)
    return found


def report_run(path: Path) -> dict[str, Any]:
    """``{"id", "task", "verdict", "finished_at", "cluster_uid"}`` of an archived findings.json's run
    (empty strings, ``cluster_uid`` None, where absent)."""
    try:
        run = json.loads(path.read_text()).get("run") or {}
    except (OSError, ValueError, AttributeError):
        run = {}
    run = run if isinstance(run, dict) else {}
    found = run.get("gate")
    gate = found if isinstance(found, dict) else {}
    return {"id": str(run.get("id", "")), "task": str(gate.get("task", "")), "verdict": str(gate.get("verdict", "")),
            "finished_at": str(run.get("finished_at", "")), "cluster_uid": gate.get("cluster_uid") or None}


def go_reports(history: Path) -> list[Path]:
    """Every archived report of a gate run whose verdict was GO."""
    folder = archive_dir(history) / "reports"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.fullmatch(p.stem.replace("sha256-", "sha256:", 1))
                  and report_run(p)["verdict"] == "GO")


def write_receipt(history: Path, seq: int, row: dict[str, Any]) -> Path:
    """The approval row as ``approvals/<seq>.json`` (written once)."""
    path = archive_dir(history) / "approvals" / f"{seq:08d}.json"
    _write_once(path, (json.dumps(row, sort_keys=True, indent=1) + "\n").encode())
    return path


def receipts(history: Path) -> dict[int, Path]:
    """``{seq: receipt path}`` of every approval receipt in the archive."""
    folder = archive_dir(history) / "approvals"
    if not folder.is_dir():
        return {}
    return {int(m[1]): p for p in folder.iterdir() if (m := _RECEIPT.fullmatch(p.name))}


def read_receipt(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
