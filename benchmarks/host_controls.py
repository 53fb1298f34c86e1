"""Benchmark the S1 host controls as whole processes, the way a user starts them (a script, not a timed test).

Starts 100 conformant namespace hosts (railiance_testbed/nshosts.py: sshd-only, no systemd), then
measures, paired in one run (every round runs every row once, in a rotated order; medians of
``--repeat`` rounds after one untimed warm-up round of the 1-host rows that fills the bytecode caches):

  - the suite:  ``pytest features/ -m S1 --ansible-inventory INV --ssh-config CFG`` (every report
    format and the history, as by default), 1, 10 and 100 hosts;
  - testinfra:  benchmarks/testinfra/test_host_checks.py (the same 18 checks written the classic
    way: a command per property) run by ``pytest --hosts=... --ssh-config=CFG`` with a
    ControlMaster/ControlPath in CFG; 1 and 10 hosts;
  - Ansible:    ``ansible-playbook --check`` of benchmarks/ansible/host_checks.yml (the same 18
    checks as assertions; pipelining, forks 20, ControlPersist); 1 and 10 hosts;
  - the suite's probe layer in-process (no pytest: the fact script of
    ``checks.bundled_plan().host_facts`` over one SSH command per host, each kind's evaluator): 1, 10, 100;
  - with ``--nspawn``: the suite, testinfra and Ansible at 1 and 10 nspawn hosts (real systemd) too.

Then the peak memory of one more suite run at 100 hosts: the pytest process's own max RSS
(``wait4``) and the sampled sum of RSS over it and its children (the ssh clients), and the cluster
controls' API requests against the API stand-in. Every run is checked: each tool must report every
host with exactly the checks that must fail there failing (on namespace hosts the two that need
systemd), so a broken baseline cannot pass for a fast one. SSH connections and remote commands are
counted on the server side, from each host's sshd log (LogLevel VERBOSE).

Whole processes here are started with the bytecode cache allowed (PYTHONDONTWRITEBYTECODE unset), as
an installed suite runs; ``-p no:hypothesispytest`` (the project's test extra, not in an operator's
install) is given to every pytest process, and the testinfra baseline runs without the pytest-bdd plugin.

Usage: ./run bench [--repeat 5] [--hosts 100] [--nspawn] [--no-ansible] [--no-probe-layer]
Prints a plain table, the paired ratios against the aims in BENCHMARKS.md, and a Markdown
table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_common import GITEA_CONTROLS, Bed, BenchError, CpuCgroup, Row, fmt, median, paired
from bench_rows import (
    ansible_row,
    bare_pytest_row,
    cluster_requests,
    peak_memory,
    probe_layer_row,
    ssh_row,
    startup_row,
    suite_row,
    testinfra_row,
)
from bench_sections import print_section_costs, section_costs

from railiance_testbed.hosts import CGROUP2_CONTROLS, CONFORMANT, cgroup2_memory  # noqa: E402  (bench_common puts the repo on sys.path)
from railiance_testbed.nshosts import SYSTEMD_CONTROLS, NamespaceTestbed  # noqa: E402
from railiance_testbed.nspawn import Testbed  # noqa: E402


def per_host_lines(find, big: int, tool: str = "suite") -> list[str]:
    """The cost aims per host: the hosts' CPU per host beyond one login (aim <= 50 ms), the client CPU per
    additional host between 1 and ``big`` hosts (aim <= 10 ms), suite / testinfra at one host (aim <= 1.0x),
    and what pytest and pytest-bdd alone cost. Each a median over rounds of the value within one round.
    ``tool``: "suite", or "suite (baseline)" for the same lines of the baseline checkout (``--baseline``)."""
    lines = []
    suite1, suite_big, login_big = find(tool, 1), find(tool, big), find("ssh true", big)
    if suite_big and login_big and suite_big.hosts_cpu and login_big.hosts_cpu:
        per_host = statistics.median((s - l) / big for s, l in zip(suite_big.hosts_cpu, login_big.hosts_cpu, strict=True))
        login = median(login_big.hosts_cpu) / big
        lines.append(f"the hosts' CPU per host beyond one login: {per_host * 1000:.0f} ms (suite at {big} hosts "
                     f"{median(suite_big.hosts_cpu):.2f} s, {big} logins {median(login_big.hosts_cpu):.2f} s = "
                     f"{login * 1000:.0f} ms each)  (aim <= 50 ms: {'met' if per_host <= 0.050 else 'NOT met'})")
    if suite1 and suite_big and big > 1:
        extra = statistics.median((b - a) / (big - 1) for a, b in zip(suite1.cpu, suite_big.cpu, strict=True))
        lines.append(f"the client CPU per additional host, 1 to {big} hosts: {extra * 1000:.1f} ms ({median(suite1.cpu):.2f} s "
                     f"at 1, {median(suite_big.cpu):.2f} s at {big})  (aim <= 10 ms: {'met' if extra <= 0.010 else 'NOT met'})")
        if login_big and login_big.cpu:
            # the ssh client's own share: one login per host, the same key exchange, 16 at a time as the suite runs them
            ssh = statistics.median(c / big for c in login_big.cpu)
            floor = " (the floor: above the 10 ms aim on its own)" if ssh > 0.010 else ""
            lines.append(f"  of which one ssh login (the client's ssh process, the 'ssh true' row at {big} hosts): "
                         f"{ssh * 1000:.1f} ms{floor}; the suite's own beyond it: {(extra - ssh) * 1000:.1f} ms "
                         f"(parse, evaluate, record, reports, history)")
    ratio = paired(suite1, find("testinfra", 1))
    if ratio is not None:
        lines.append(f"suite / testinfra+ControlPath at 1 host: {ratio:.3f}x ({median(suite1.wall):.2f} s against "
                     f"{median(find('testinfra', 1).wall):.2f} s)  (aim <= 1.0x: {'met' if ratio <= 1.0 else 'NOT met'})")
    bare, bdd, startup = find("pytest alone", 1), find("pytest + pytest-bdd", 1), find("pytest start-up", 1)
    if bare and bdd and startup and tool == "suite":
        lines.append(f"start-up: pytest alone {median(bare.wall):.2f} s, with pytest-bdd {median(bdd.wall):.2f} s, the "
                     f"suite's collection (plugin, policy, features) {median(startup.wall):.2f} s")
    return lines


def report(rows: list[Row], repeat: int, memory: tuple[float, float] | None, cluster: str | None,
           big: int, hosts_kind: str) -> None:
    def find(tool: str, n: int, tier: str = "namespace") -> Row | None:
        return next((r for r in rows if r.tool == tool and r.hosts == n and r.bed.tier == tier), None)

    print(f"\nS1 host controls on this machine ({os.cpu_count()} cores), whole processes unless noted, "
          f"median of {repeat} paired rounds; {hosts_kind}")
    print("(client CPU = the measured process and its children, user+system; hosts CPU = every process of the")
    print(" namespace hosts (sshd, PAM, the remote commands), from their cgroup: they run on the same cores, so wall")
    print(" time at many hosts also pays for the servers; conn/cmds = per host, counted by its sshd)")
    print(f"{'what':34} {'hosts':>5} {'wall s':>7} {'min-max s':>13} {'client CPU s':>12} {'hosts CPU s':>11} "
          f"{'conn/host':>9} {'cmds/host':>9}  checked")
    for row in rows:
        label = f"{row.tool} [{row.bed.tier}]" + (" (in-process)" if row.tool == "probe layer" else "")
        print(f"{label:34} {row.hosts:>5} {median(row.wall):>7.2f} {min(row.wall):>6.2f}-{max(row.wall):<6.2f} "
              f"{median(row.cpu):>12.2f} {fmt(median(row.hosts_cpu)):>11} {median(row.conn):>9.1f} "
              f"{median(row.cmds):>9.1f}  {row.checked}")

    suite1, suite10, suite_big = find("suite", 1), find("suite", 10), find("suite", big)
    ratios = [
        ("suite / testinfra+ControlPath, 1 host", paired(suite1, find("testinfra", 1)), 0.5),
        ("suite / testinfra+ControlPath, 10 hosts", paired(suite10, find("testinfra", 10)), None),
        ("suite / ansible-playbook --check, 1 host", paired(suite1, find("ansible", 1)), 0.1),
        ("suite / ansible-playbook --check, 10 hosts", paired(suite10, find("ansible", 10)), None),
        (f"suite, {big} hosts / 1 host", paired(suite_big, suite1), 3.0),
        ("suite, 10 hosts / 1 host", paired(suite10, suite1), None),
        (f"suite, {big} hosts / 1 host, client CPU", paired(suite_big, suite1, "cpu"), None),
    ]
    print("\npaired ratios (median over rounds of the ratio within each round):")
    for text, value, aim in ratios:
        if value is not None:
            verdict = "" if aim is None else f"  (aim <= {aim}x: {'met' if value <= aim else 'NOT met'})"
            print(f"  {text:44} {value:6.3f}x{verdict}")
    print("\nper-host costs (paired: each round's own rows):")
    for line in per_host_lines(find, big):
        print(f"  {line}")
    if find("suite (baseline)", 1) is not None:
        print("the same for the baseline checkout (--baseline), measured in the same rounds:")
        for line in per_host_lines(find, big, "suite (baseline)"):
            print(f"  {line}")
        print("this checkout / the baseline (paired; below 1 is faster):")
        for n in sorted({1, 10, big}):
            now, base = find("suite", n), find("suite (baseline)", n)
            parts = [f"{what} {value:.3f}x" for what, value in
                     (("wall", paired(now, base)), ("client CPU", paired(now, base, "cpu")),
                      ("hosts CPU", paired(now, base, "hosts_cpu"))) if value is not None]
            print(f"  {n:>4} host{'s' if n > 1 else ' '}: {', '.join(parts)}")
    startup, login1, login_big = find("pytest start-up", 1), find("ssh true", 1), find("ssh true", big)
    testinfra1 = find("testinfra", 1)
    if startup and login1 and testinfra1 and suite1:
        floor = [a + b for a, b in zip(startup.wall, login1.wall, strict=True)]
        versus = statistics.median(f / t for f, t in zip(floor, testinfra1.wall, strict=True))
        ansible1 = find("ansible", 1)
        versus_ansible = "" if ansible1 is None else \
            f" = {statistics.median(f / a for f, a in zip(floor, ansible1.wall, strict=True)):.3f}x ansible-playbook (aim 0.1x)"
        print(f"  floor, 1 host: pytest start-up {median(startup.wall):.2f} s + one ssh login {median(login1.wall):.2f} s"
              f" = {median(floor):.2f} s = {versus:.3f}x testinfra ({'above' if versus > 0.5 else 'below'} the 0.5x aim)"
              f"{versus_ansible}, {statistics.median(f / t for f, t in zip(floor, suite1.wall, strict=True)):.2f} of the suite's "
              f"1-host time")
    if login_big and suite1 and suite_big and suite_big.hosts_cpu and login_big.hosts_cpu:
        # were the fact script free on the hosts: their logins' CPU and the suite's own, on this machine's cores
        bound = (median(login_big.hosts_cpu) + median(suite_big.cpu)) / (os.cpu_count() or 1)
        print(f"  floor, {big} hosts on these {os.cpu_count()} cores, were the fact script free on the hosts: (their "
              f"logins' CPU + the suite's client CPU) / cores = {bound:.2f} s = {bound / median(suite1.wall):.2f}x the "
              f"suite's 1-host time (aim 3x)")
    if login_big and suite1 and suite_big:
        print(f"  floor, {big} hosts: {big} ssh logins alone {median(login_big.wall):.2f} s (hosts CPU "
              f"{fmt(median(login_big.hosts_cpu))} s, client CPU {median(login_big.cpu):.2f} s) = "
              f"{paired(login_big, suite1):.2f}x the suite's 1-host time; the suite's own hosts CPU at {big} hosts "
              f"{fmt(median(suite_big.hosts_cpu))} s")
    if memory:
        own, tree = memory
        print(f"  peak memory, suite at {big} hosts: {own:.0f} MiB the pytest process (max RSS), {tree:.0f} MiB "
              f"with its ssh children (sampled sum)  (aim <= 150 MiB: {'met' if own <= 150 else 'NOT met'})")
    if cluster:
        print(f"  {cluster}")

    def cell(row: Row | None, base: Row | None = None, bold: bool = False) -> str:
        if row is None:
            return ""
        text = f"{median(row.wall):.2f} s"
        ratio = paired(base, row) if base is not None else None
        if ratio is not None:
            text += f" (suite/this {'**' if bold else ''}{ratio:.2f}×{'**' if bold else ''})"
        return text

    print("\nMarkdown (paste into BENCHMARKS.md):\n")
    print("| | suite `pytest features/ -m S1` | testinfra + ssh ControlPath | ansible-playbook --check |")
    print("|---|---|---|---|")
    for tier in ("namespace", "nspawn"):
        for n in (1, 10):
            suite = find("suite", n, tier)
            if suite is None:
                continue
            where = "namespace hosts" if tier == "namespace" else "nspawn hosts"
            print(f"| {n} host{'s' if n > 1 else ''} ({where}) | {cell(suite)} | "
                  f"{cell(find('testinfra', n, tier), suite, bold=n == 1)} | {cell(find('ansible', n, tier), suite, bold=n == 1)} |")
    if suite_big is not None:
        scale = paired(suite_big, suite1)
        mem = f", peak {memory[0]:.0f} MiB ({memory[1]:.0f} MiB with its ssh children)" if memory else ""
        cpu_scale = paired(suite_big, suite1, "cpu")
        print(f"| {big} hosts (namespace hosts) | {median(suite_big.wall):.2f} s = **{scale:.2f}×** its 1-host "
              f"time; client CPU {median(suite_big.cpu):.2f} s = {cpu_scale:.2f}× (the hosts' own CPU "
              f"{median(suite_big.hosts_cpu):.1f} s on the same cores){mem} | | |")
    print(f"\nHosts: {hosts_kind}.")
    probes = [r for r in rows if r.tool == "probe layer"]
    if probes:
        print("\n| probe layer in-process | " + " | ".join(f"{r.hosts} host{'s' if r.hosts > 1 else ''}" for r in probes)
              + " |\n|---|" + "---|" * len(probes))
        print("| wall (client CPU) | " + " | ".join(f"{median(r.wall):.2f} s ({median(r.cpu):.2f} s)" for r in probes) + " |")
    print(f"\n(medians of {repeat} paired rounds; ratios are medians of the per-round ratios; "
          f"{os.cpu_count()}-core machine; {time.strftime('%Y-%m-%d')})")


# --- main -----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5); medians are printed")
    parser.add_argument("--hosts", type=int, default=100, help="the largest suite run, namespace hosts (default 100)")
    parser.add_argument("--gitea", action="store_true",
                        help="give every namespace host its Gitea SSH server (five more logins per host, on the "
                             "same cores); default: sshd-only hosts, where the two Gitea login checks are errors")
    parser.add_argument("--nspawn", action="store_true", help="also measure at 1 and 10 nspawn hosts (real systemd)")
    parser.add_argument("--no-ansible", action="store_true", help="leave out the ansible-playbook baseline")
    parser.add_argument("--no-probe-layer", action="store_true", help="leave out the in-process probe layer rows")
    parser.add_argument("--no-cluster", action="store_true", help="leave out the cluster API request count")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also run the suite from DIR, a checkout of another commit with its own .venv "
                             "(git worktree add --detach DIR REV; cd DIR && ./run deps), in the same rounds: "
                             "before/after paired in one run")
    parser.add_argument("--sections", action="store_true",
                        help="only the fact script's cost per control on one namespace host (hosts CPU), then exit")
    parser.add_argument("--section-runs", type=int, default=20, help="runs per control for the section costs")
    args = parser.parse_args()
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not (args.baseline / ".venv" / "bin" / "python").exists() or not (args.baseline / "features").is_dir():
            parser.error(f"--baseline {args.baseline}: not a checkout of this project with its own .venv "
                         "(features/ and .venv/bin/python must exist: run ./run deps in it)")
    started = time.monotonic()
    cgroup = CpuCgroup.make()
    if args.sections:
        try:
            if cgroup is None:
                raise BenchError("no cgroup to read the hosts' CPU from")
            with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
                tmp = Path(tmp_name)
                with NamespaceTestbed([replace(CONFORMANT, name="ns000", git_server=args.gitea)], tmp / "ns",
                                      cgroup=cgroup.path) as testbed:
                    failing = frozenset(SYSTEMD_CONTROLS) | (frozenset() if args.gitea else GITEA_CONTROLS)
                    print_section_costs(section_costs(Bed("namespace", testbed, failing, tmp, cgroup), tmp,
                                                      args.section_runs), args.section_runs)
        finally:
            if cgroup is not None:
                cgroup.remove()
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
            rows, memory, cluster = measure_all(args, Path(tmp_name), cgroup)
    finally:
        if cgroup is not None:
            cgroup.remove()
    hosts_kind = "namespace hosts with their Gitea SSH server" if args.gitea else \
        "sshd-only namespace hosts (no Gitea SSH server: host.gitea_ssh.login/ls_remote are errors for every tool)"
    report(rows, args.repeat, memory, cluster, args.hosts, hosts_kind)
    print(f"\n(./run bench took {time.monotonic() - started:.0f} s)")
    return 0


def measure_all(args, tmp: Path, cgroup: CpuCgroup | None) -> tuple[list[Row], tuple[float, float], str | None]:
    states = [replace(CONFORMANT, name=f"ns{i:03d}", git_server=args.gitea) for i in range(max(args.hosts, 10))]
    print(f"starting {len(states)} namespace hosts ...", flush=True)
    begin = time.monotonic()
    with NamespaceTestbed(states, tmp / "ns", cgroup=cgroup.path if cgroup else None) as ns_testbed:
        print(f"  listening after {time.monotonic() - begin:.1f} s", flush=True)
        failing = frozenset(SYSTEMD_CONTROLS) | (frozenset() if args.gitea else GITEA_CONTROLS)
        beds = [Bed("namespace", ns_testbed, failing, tmp, cgroup)]
        nspawn = None
        try:
            if args.nspawn:
                print("booting 10 nspawn hosts ...", flush=True)
                begin = time.monotonic()
                nspawn = Testbed([replace(CONFORMANT, name=f"nspawn{i:02d}") for i in range(10)], tmp / "nspawn")
                nspawn.__enter__()
                print(f"  ready after {time.monotonic() - begin:.1f} s", flush=True)
                beds.append(Bed("nspawn", nspawn, frozenset() if cgroup2_memory() else frozenset(CGROUP2_CONTROLS), tmp))
            rows = build_rows(beds, args, tmp)
            print(f"{len(rows)} rows; a warm-up round (1 host), then {args.repeat} timed rounds", flush=True)
            for round_no in range(args.repeat + 1):
                begin = time.monotonic()
                order = rows[round_no % len(rows):] + rows[:round_no % len(rows)]
                for row in order:
                    if round_no > 0 or row.hosts == 1:  # warming the caches once per tool is enough
                        row.measure(timed=round_no > 0)
                print(f"  round {round_no}{' (warm-up)' if round_no == 0 else ''}: "
                      f"{time.monotonic() - begin:.0f} s", flush=True)
            big = next(r for r in rows if r.tool == "suite" and r.hosts == args.hosts and r.bed.tier == "namespace")
            memory = peak_memory(big, tmp)
            if cgroup is not None:
                print_section_costs(section_costs(beds[0], tmp, args.section_runs), args.section_runs)
        finally:
            if nspawn is not None:
                nspawn.stop()
    cluster = None if args.no_cluster else cluster_requests(tmp)
    return rows, memory, cluster


def build_rows(beds: list[Bed], args, tmp: Path) -> list[Row]:
    rows: list[Row] = []
    for bed in beds:
        sizes = sorted({1, 10, args.hosts}) if bed.tier == "namespace" else [1, 10]
        rows += [suite_row(bed, n, tmp) for n in sizes]
        if args.baseline is not None and bed.tier == "namespace":
            rows += [suite_row(bed, n, tmp, args.baseline) for n in sizes]
        rows += [testinfra_row(bed, n, tmp) for n in (1, 10)]
        if not args.no_ansible:
            rows += [ansible_row(bed, n, tmp) for n in (1, 10)]
        if not args.no_probe_layer and bed.tier == "namespace":
            rows += [probe_layer_row(bed, n, tmp) for n in sizes]
        if bed.tier == "namespace":  # the floors the suite cannot go below on this machine
            rows += [startup_row(bed, tmp), bare_pytest_row(bed, tmp, False), bare_pytest_row(bed, tmp, True),
                     *(ssh_row(bed, n, tmp) for n in sorted({1, args.hosts}))]
    return rows


if __name__ == "__main__":
    sys.exit(main())
