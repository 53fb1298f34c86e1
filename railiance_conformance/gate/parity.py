"""gate.restore.parity: a restored PostgreSQL copy has its source's base tables, rows and sequences (``compare``).

Both databases are read at once, each in one read-only snapshot (``parity_census``); nothing is
written. ``compare`` -> ``ParityResult`` (``ok``, per-table counts, every mismatch as a sentence
naming the fix, unreadable tables, sequences behind their column or the source, source write
activity). No message carries a password (``pg_session``). The rules: docs/gate.md, "Restore parity".
Example: ``compare(dsn_from_env("SOURCE_DSN"), dsn_from_env("RESTORED_DSN")).mismatches``
-> ``["table public.x: 120 rows in the source, 119 in the restored copy"]``.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from railiance_conformance.gate.parity_census import SequenceState, read_census
from railiance_conformance.gate.pg_session import (
    dsn_address,
    dsn_secrets,
    masked_dsn,
    one_row,
    read_only_session,
    scrub,
)

SIDES = {"source": "the source", "restored": "the restored copy"}


@dataclass(frozen=True, slots=True)
class ParityResult:
    """``ok`` only when both databases were read and every table, sequence (and checksum) holds;
    ``error`` says why a side could not be read at all."""

    ok: bool
    tables: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    error: str = ""
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)  # "source"/"restored": session facts
    unreadable: list[str] = field(default_factory=list)    # tables not verified, with the grant missing
    sequences: list[str] = field(default_factory=list)     # sequences behind their column
    source_writes: list[str] = field(default_factory=list)  # counts that moved on the source during the check
    checksums: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    schemas: list[str] = field(default_factory=list)        # the schemas whose tables were compared
    sequences_checked: int = 0                              # sequences read, both sides together
    sequence_values: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # next values


def compare(source_dsn: str, restored_dsn: str, *, schemas: Sequence[str] | None = None,
            exclude: Sequence[str] = (), statement_timeout_ms: int = 30000, connect_timeout_s: int = 10,
            checksum: bool | Sequence[str] = False) -> ParityResult:
    """``compare(src, restored, schemas=("public", "audit")).ok`` -> True when everything matches.

    ``schemas`` None compares every non-system schema; ``exclude`` removes schemas (the drill marker's);
    ``checksum`` True checksums every table, a list of ``schema.table`` only those.
    """
    schemas = (schemas,) if isinstance(schemas, str) else (tuple(schemas) if schemas is not None else None)
    secrets = dsn_secrets(source_dsn) | dsn_secrets(restored_dsn)
    sides = {"source": source_dsn, "restored": restored_dsn}
    if dsn_address(source_dsn) is not None and dsn_address(source_dsn) == dsn_address(restored_dsn):
        return ParityResult(False, error=f"source and restored copy are the same database ({masked_dsn(source_dsn)}): "
                                         "comparing a database with itself proves nothing")
    options = (schemas, tuple(exclude), statement_timeout_ms, connect_timeout_s, checksum)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="parity") as pool:
        futures = {side: pool.submit(read_census, dsn, *options) for side, dsn in sides.items()}
    census = {side: future.result() for side, future in futures.items()}
    errors = [scrub(f"{'source' if side == 'source' else 'restored copy'} {masked_dsn(sides[side])}: {c.error}", secrets)
              for side, c in census.items() if c.error]
    evidence = {side: c.facts for side, c in census.items()}
    if errors:
        return ParityResult(False, error="; ".join(errors), evidence=evidence)
    source, restored = census["source"], census["restored"]
    names = sorted(source.counts.keys() | restored.counts.keys() | source.unreadable.keys() | restored.unreadable.keys())
    tables = {name: (source.counts.get(name), restored.counts.get(name)) for name in names}
    unreadable = [f"table {name} could not be read on {SIDES[side]} by user {census[side].facts.get('user')}: "
                  f"{census[side].unreadable[name]}" for name in names for side in SIDES if name in census[side].unreadable]
    mismatches = [line for name, counts in tables.items()
                  if not any(name in c.unreadable for c in census.values()) and (line := _mismatch(name, *counts))]
    if not tables:
        where = f"schema(s) {', '.join(schemas)}" if schemas is not None else "any non-system schema"
        mismatches.append(f"no base tables in {where} of either database: nothing was compared")
    sequences = [_sequence_line(side, state) for side in SIDES for state in census[side].sequences if state.behind]
    unreadable_sequences = {(side, state.sequence) for side in SIDES for state in census[side].sequences
                            if state.next_value is None}
    sequences += [f"sequence {name} could not be read on {SIDES[side]} by user {census[side].facts.get('user')}: "
                  f"GRANT SELECT ON SEQUENCE {name}" for side, name in sorted(unreadable_sequences, key=lambda k: k[1])]
    values = {side: {state.sequence: (state.next_value, state.increment) for state in census[side].sequences}
              for side in SIDES}
    already = {state.sequence for state in restored.sequences if state.behind}
    sequences += [line for name in sorted(values["source"].keys() | values["restored"].keys())
                  if name not in already and (line := _against_source(name, values["source"].get(name),
                                                                     values["restored"].get(name)))]
    sequences += [f"on {SIDES[side]}, {line}" for side in SIDES for line in census[side].unchecked]
    sequences += [line for name in sorted(source.definitions.keys() & restored.definitions.keys())
                  if (line := _definition_differs(name, source.definitions[name], restored.definitions[name]))]
    checksums = {name: (source.checksums.get(name), restored.checksums.get(name))
                 for name in sorted(source.checksums.keys() | restored.checksums.keys())}
    mismatches += [f"table {name}: same row count, different contents (sha256 {a[:12]} in the source, "
                   f"{b[:12]} in the restored copy)" for name, (a, b) in checksums.items()
                   if a and b and a != b and tables.get(name, (0, 1))[0] == tables.get(name, (0, 1))[1]]
    writes: list[str] = []
    moved = [name for name, (a, b) in tables.items() if a is not None and b is not None and a != b]
    if moved:
        writes = _source_writes(source_dsn, moved, source.counts, statement_timeout_ms, connect_timeout_s, secrets)
    compared = sorted({name.split(".", 1)[0] for name in names})
    ok = not (mismatches or unreadable or sequences)
    return ParityResult(ok, tables, mismatches, evidence=evidence, unreadable=unreadable, sequences=sequences,
                        source_writes=writes, checksums=checksums, schemas=compared,
                        sequences_checked=sum(len({s.sequence for s in c.sequences}) for c in census.values()),
                        sequence_values={name: (values["source"].get(name, (None,))[0],
                                                values["restored"].get(name, (None,))[0])
                                         for name in sorted(values["source"].keys() | values["restored"].keys())})


def _against_source(name: str, source: tuple[int | None, int] | None, restored: tuple[int | None, int] | None) -> str:
    """The restored copy's sequence must not be behind the source's: ``(next value, increment)`` per side."""
    if restored is None:
        return (f"sequence {name} missing in the restored copy: the source has it (next value "
                f"{source[0] if source else '?'})")
    if source is None:
        return f"sequence {name} only in the restored copy"
    (theirs, step), (ours, _) = source, restored
    if theirs is None or ours is None:
        return ""  # unreadable: named above
    if (ours < theirs) if step > 0 else (ours > theirs):
        gap = f"{ours}..{theirs - 1}" if step > 0 else f"{theirs + 1}..{ours}"
        return (f"sequence {name} on the restored copy would next give {ours}, behind the source's {theirs}: after "
                f"the cutover it hands out {gap} a second time, values the source already gave out "
                f"(SELECT setval('{name}', {theirs}, false))")
    return ""


def _definition_differs(name: str, source: tuple[int, int, int, bool], restored: tuple[int, int, int, bool]) -> str:
    """The restored sequence must step, bound and wrap as the source's does (``pg_sequence``: seqincrement,
    seqmin, seqmax, seqcycle): a copy with another increment sign walks back over values the source
    already handed out, and a lower MAXVALUE with CYCLE wraps to them; its next value alone shows neither."""
    if source == restored:
        return ""

    def clause(label: str, value: int | bool) -> str:
        return ("CYCLE" if value else "NO CYCLE") if label == "CYCLE" else f"{label} {value}"

    changed = [(label, a, b) for label, a, b in zip(("INCREMENT", "MINVALUE", "MAXVALUE", "CYCLE"), source, restored, strict=True)
               if a != b]
    differ = "; ".join(f"{clause(label, a)} in the source, {clause(label, b)} in the restored copy"
                       for label, a, b in changed)
    fix = " ".join(clause(label, a) for label, a, _ in changed)
    return (f"sequence {name} is defined differently: {differ}; after the cutover it can hand out values the "
            f"source already gave out, or stop early (ALTER SEQUENCE {name} {fix})")


def _sequence_line(side: str, state: SequenceState) -> str:
    extreme = "max" if state.increment > 0 else "min"
    return (f"sequence {state.sequence} on {SIDES[side]} would next give {state.next_value}, but {state.column} "
            f"already holds {state.column_extreme} ({extreme}): the next insert fails on a duplicate key "
            f"(SELECT setval('{state.sequence}', (SELECT {extreme}({state.column.rsplit('.', 1)[1]}) FROM "
            f"{state.column.rsplit('.', 1)[0]})))")


def _mismatch(name: str, source: int | None, restored: int | None) -> str:
    if restored is None:
        return f"table {name} missing in the restored copy"
    if source is None:
        return f"table {name} only in the restored copy"
    if source != restored:
        return f"table {name}: {source} row{'s' * (source != 1)} in the source, {restored} in the restored copy"
    return ""


def _source_writes(dsn: str, names: list[str], snapshot: dict[str, int], timeout_ms: int, connect_timeout_s: int,
                   secrets: set[str]) -> list[str]:
    """Count the differing tables on the source again, after the check: a moved count is write activity."""
    moved = []
    try:
        with read_only_session(dsn, timeout_ms, connect_timeout_s) as conn, conn.transaction():
            for name in names:
                now = one_row(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(*name.split(".", 1)))))[0]
                if now != snapshot[name]:
                    moved.append(f"the source is still being written to: {name} had {snapshot[name]} rows in the "
                                 f"check's snapshot and {now} when counted again (freeze writes before the final "
                                 "dump, as the workplan's step 7 says)")
    except psycopg.Error as exc:
        moved.append(scrub(f"could not count the source again to look for write activity: "
                            f"{' '.join(str(exc).split())[:300]}", secrets))
    return moved
