"""The client's CPU per additional host, this checkout against another, paired; and their reports compared.

Starts ``--hosts`` conformant namespace hosts (as ``./run bench`` does), then per round runs the suite
(``pytest features/ -m S1 --ansible-inventory INV --ssh-config CFG --report-dir DIR``, every format and the
history) from the baseline checkout (A) and from this one (B), alternating, at 1 host and at ``--hosts``
(the order flips every round; one untimed warm-up run of each at 1 host first). Each side keeps its own
report directories across rounds, so both histories grow alike. Per run it records:

  - the client CPU: user+system of the whole process tree (RUSAGE_CHILDREN around the run: the pytest
    process and its ssh clients), as the bench's "client CPU";
  - the suite's own process: its RUSAGE_SELF at exit (all its threads, not its ssh children).

Per round the per-additional-host cost is (cpu@N - cpu@1) / (N - 1); printed are the medians over rounds
and the paired difference A - B per round. Then the last reports of A and B are compared byte for byte after
replacing what differs between any two runs (run ids, timestamps, durations, the chart's uuid), and the
history's rows of the last run (every column but the run's number): a change that alters output shows here.

Usage (the baseline is a checkout of another commit with its own .venv):
    git worktree add --detach ../base main && (cd ../base && ./run deps)
    .venv/bin/python benchmarks/client_cpu_ab.py --baseline ../base [--hosts 100] [--rounds 6]
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_common import ENV, NO_TEST_EXTRA, REPO, Bed

from railiance_testbed.hosts import CONFORMANT  # noqa: E402  (bench_common puts the repo on sys.path)
from railiance_testbed.nshosts import NamespaceTestbed  # noqa: E402

# runs pytest as __main__ and writes this process's own user+system CPU (not its children's) at exit
OWN_CPU = ("import atexit, resource, runpy, sys\n"
           "out = sys.argv.pop(1)\n"
           "def record():\n"
           "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
           "    open(out, 'w').write(repr(r.ru_utime + r.ru_stime))\n"
           "atexit.register(record)\n"
           "sys.argv[0] = 'pytest'\n"
           "runpy.run_module('pytest', run_name='__main__', alter_sys=True)\n")

# what differs between two runs of the same code on the same hosts
VOLATILE = [
    (r"chart-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "chart-UUID"),
    (r"config\['[0-9a-f-]{36}'\]", "config['UUID']"),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", "TIME"),
    (r"\d\d:\d\d:\d\d", "HMS"),
    (r"on \d{4}-\d\d-\d\d-->", "on DATE-->"),
    (r'("duration_s": )[0-9.e-]+', r"\1D"),
    (r'(time=")[0-9.e-]+(")', r"\1D\2"),
    (r'"seconds": \d+', '"seconds": S'),
    (r'"nanos": \d+', '"nanos": N'),
    (r"\b[0-9a-f]{12}\b", "RUNID"),
    (r"(_seconds(\{[^}]*\})?|_timestamp[^ ]*) [0-9.e+-]+", r"\1 X"),
    (r"\d+(\.\d+)? s\b", "X s"),
]


def normalised(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = re.sub(pattern, replacement, text)
    return text


def compare(a: Path, b: Path) -> list[str]:
    """The report files of ``a`` that differ from ``b``'s after ``normalised``, with the first difference."""
    differ = []
    for file_a in sorted(p for p in a.iterdir() if p.is_file() and not p.name.startswith(("history", "."))):
        text_a, text_b = normalised(file_a.read_text()), normalised((b / file_a.name).read_text())
        if text_a != text_b:
            at = next((i for i, (x, y) in enumerate(zip(text_a, text_b, strict=False)) if x != y), 0)
            differ.append(f"{file_a.name}: {text_a[max(0, at - 60):at + 60]!r} | {text_b[max(0, at - 60):at + 60]!r}")
    return differ


def last_rows(history: Path) -> list[tuple]:
    with sqlite3.connect(history) as con:
        seq = con.execute("SELECT max(seq) FROM runs").fetchone()[0]
        return con.execute("SELECT key, control_id, target, task, layer, severity, status, expected, observed, reason,"
                           " evidence FROM findings WHERE seq = ? ORDER BY key", (seq,)).fetchall()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of another commit with its own .venv")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    sides = {"A": args.baseline.resolve(), "B": REPO}
    for checkout in sides.values():
        if not (checkout / ".venv" / "bin" / "python").exists():
            parser.error(f"{checkout}: no .venv (run ./run deps in it)")
    big = args.hosts
    with tempfile.TemporaryDirectory(prefix="client-cpu-ab-") as tmp_name:
        tmp = Path(tmp_name)
        states = [replace(CONFORMANT, name=f"ns{i:03d}", git_server=False) for i in range(big)]
        with NamespaceTestbed(states, tmp / "ns") as testbed:
            bed = Bed("namespace", testbed, frozenset(), tmp)
            cpu: dict[tuple[str, int], list[float]] = {(s, n): [] for s in sides for n in (1, big)}
            own: dict[tuple[str, int], list[float]] = {(s, n): [] for s in sides for n in (1, big)}
            controls: dict[str, int] = {}

            def run(side: str, n: int, timed: bool = True) -> None:
                report, own_file = tmp / f"{side}-{n}", tmp / f"own-{side}-{n}"
                argv = [str(sides[side] / ".venv" / "bin" / "python"), "-c", OWN_CPU, str(own_file), "features/",
                        "-m", "S1", "--ansible-inventory", str(bed.inventory(n)), "--ssh-config",
                        str(testbed.ssh_config), "--report-dir", str(report), "-q", *NO_TEST_EXTRA]
                before = children_cpu()
                done = subprocess.run(argv, cwd=sides[side], env=ENV, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                spent = children_cpu() - before
                if done.returncode not in (0, 1):
                    raise SystemExit(f"{side} x{n}: exit {done.returncode}\n{done.stdout.decode()[-3000:]}")
                found = len(json.loads((report / "findings.json").read_text())["findings"])
                each = controls.setdefault("per host", found // n)  # from the first run (1 host)
                if found != n * each or not found:
                    raise SystemExit(f"{side} x{n}: {found} findings, not {each} per host")
                if timed:
                    cpu[side, n].append(spent)
                    own[side, n].append(float(own_file.read_text()))

            run("B", 1, timed=False)
            run("A", 1, timed=False)
            for number in range(args.rounds):
                order = [("A", 1), ("B", 1), ("A", big), ("B", big)]
                for side, n in (order if number % 2 == 0 else [(("B" if s == "A" else "A"), n) for s, n in order]):
                    run(side, n)
                print(f"round {number}: " + ", ".join(
                    f"{s} {(cpu[s, big][-1] - cpu[s, 1][-1]) / (big - 1) * 1000:.1f} ms (own "
                    f"{(own[s, big][-1] - own[s, 1][-1]) / (big - 1) * 1000:.1f})" for s in sides), flush=True)

            def per_host(values: dict, side: str) -> list[float]:
                return [(b - a) / (big - 1) * 1000 for a, b in zip(values[side, 1], values[side, big], strict=True)]

            print(f"\nclient CPU per additional host, 1 to {big} hosts, median of {args.rounds} paired rounds:")
            for what, values in (("process tree (pytest and its ssh clients)", cpu), ("the suite's own process", own)):
                a, b = per_host(values, "A"), per_host(values, "B")
                print(f"  {what}: A {statistics.median(a):.2f} ms, B {statistics.median(b):.2f} ms; paired A - B "
                      f"{statistics.median([x - y for x, y in zip(a, b, strict=True)]):.2f} ms "
                      f"(rounds {', '.join(f'{x - y:.1f}' for x, y in zip(a, b, strict=True))})")
            print(f"  at 1 host: process tree A {statistics.median(cpu['A', 1]):.2f} s, B {statistics.median(cpu['B', 1]):.2f} s")
            print(f"  A = {sides['A']}, B = {sides['B']}")
            same = True
            for n in (1, big):
                differ = compare(tmp / f"A-{n}", tmp / f"B-{n}")
                rows_same = last_rows(tmp / f"A-{n}" / "history.sqlite") == last_rows(tmp / f"B-{n}" / "history.sqlite")
                same = same and not differ and rows_same
                print(f"reports at {n} host(s): {'the same' if not differ else 'DIFFERENT'}; the history's rows of the "
                      f"last run: {'the same' if rows_same else 'DIFFERENT'}")
                for line in differ:
                    print(f"  {line}")
    return 0 if same else 1


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(code)
