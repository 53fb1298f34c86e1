"""The fact script's cost on one host per control (``./run bench --sections``, and after the rounds of ``./run
bench``): each control's facts run as the script, paired with the script with no fact, the hosts' CPU from
their cgroup; and the floors under the hosts' CPU aim measured the same way (one ssh client, one git process,
one login alone, how many ssh clients the script starts)."""
from __future__ import annotations

import time
from pathlib import Path

from bench_common import HOST_CONTROLS, Bed, BenchError
from bench_rows import ssh_row


def section_costs(bed: Bed, tmp: Path, repeat: int) -> list[tuple[str, int, float, float, float]]:
    """What each host control's part of the fact script costs on one host: the hosts' CPU (their cgroup) of
    a run of the script with only that control's facts less the run of the script with no fact (the login, the
    session and the script's preamble) next to it, ``repeat`` such pairs alternating which runs first, so load
    that comes and goes on the machine falls on both halves of a pair. Returns ``[(control, sections, median,
    first quartile, third quartile)]`` (seconds per run), then ``("(every control: the whole script)", ...)``,
    the floors (one ``ssh -V``, one ``git --version`` run by the script, paired the same way), ``(SSH_COUNT,
    ssh clients the whole script started, 0, 0, 0)``, ``("(no fact: login and preamble)", ...)`` and ``(LOGIN, ...)``
    (one ``ssh HOST true``, no script) with their own absolute cost. Controls share facts (the account, the page size), so the parts add up to more than the whole."""
    import statistics

    from railiance_conformance.checks import bundled_plan
    from railiance_conformance.inventory import hosts_from_inventory
    from railiance_conformance.probes.facts import Fact
    from railiance_conformance.probes.host_facts import HostFactStore, SshOptions
    from railiance_conformance.vocabulary import CHECK_KINDS

    plan = bundled_plan()
    [target] = hosts_from_inventory(str(bed.inventory(1)), {}, limit=None, policy_source="features/")
    controls = [c for c in plan.selected if c in HOST_CONTROLS]
    options = SshOptions(user_config=str(bed.testbed.ssh_config))
    workdir = tmp / "sections"
    workdir.mkdir(exist_ok=True)
    procs = bed.cgroup.path / "cgroup.procs" if bed.cgroup is not None else None

    def running() -> int:
        return len(procs.read_text().split()) if procs is not None else 0

    def facts_of(control_id: str):
        return CHECK_KINDS[plan.spec(control_id).kind].facts(plan.params(control_id, target)[0])

    def store_of(facts) -> HostFactStore:
        store = HostFactStore(options, workdir, facts_for=lambda _: facts, workers=1)
        store._gather(target)  # warm: the first run pays for page-cache misses
        return store

    def one(store: HostFactStore) -> float:
        idle, start = running(), bed.hosts_cpu()
        gathered = store._gather(target)
        if gathered.failure:
            raise BenchError(f"sections: {gathered.failure}")
        # the session's processes on the host (sshd's teardown) end after the client read its answer
        settle = time.monotonic() + 1
        while running() > idle and time.monotonic() < settle:
            time.sleep(0.005)
        return bed.hosts_cpu() - start

    baseline = store_of([Fact("baseline", "sec baseline :")])  # one builtin: the script must frame something

    def login() -> float:  # one `ssh HOST true` as the ssh true row runs it: no script, no session of its own
        idle, start = running(), bed.hosts_cpu()
        ssh_row(bed, 1, tmp).run()
        settle = time.monotonic() + 1
        while running() > idle and time.monotonic() < settle:
            time.sleep(0.005)
        return bed.hosts_cpu() - start
    empties: list[float] = []

    def cost(facts) -> tuple[float, float, float]:
        store = store_of(facts)
        differences = []
        for i in range(repeat):
            if i % 2:
                empty = one(baseline)
                mine = one(store)
            else:
                mine = one(store)
                empty = one(baseline)
            differences.append(mine - empty)
            empties.append(empty)
        store.close()
        return quartiles(differences)

    def quartiles(values: list[float]) -> tuple[float, float, float]:
        q1, median, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
        return median, q1, q3

    everything = [f for c in controls for f in facts_of(c)]
    rows = [(c, len({f.section for f in facts_of(c)}), *cost(facts_of(c))) for c in controls]
    rows.append(("(every control: the whole script)", len({f.section for f in everything}), *cost(everything)))
    # the floors under the aim: what one ssh client and one git process cost the host when the script starts them
    # (the same pairing), and how many ssh clients the whole script starts on the host
    rows.append((f"{SSH_FLOOR} `ssh -V`)", 1, *cost([Fact("floor.ssh", "sec floor.ssh ssh -V")])))
    rows.append((f"{GIT_FLOOR} `git --version`)", 1, *cost([Fact("floor.git", "sec floor.git git --version")])))
    whole = store_of(everything)
    rows.append((SSH_COUNT, ssh_clients(whole._gather(target).sections), 0.0, 0.0, 0.0))
    whole.close()
    baseline.close()
    rows.append(("(no fact: login and preamble)", 0, *quartiles(empties)))
    rows.append((LOGIN, 0, *quartiles([login() for _ in range(repeat)])))
    return rows


SSH_FLOOR = "(floor: one ssh client started on the host,"
GIT_FLOOR = "(floor: one git process on the host,"
SSH_COUNT = "(ssh clients the whole script starts on the host)"
LOGIN = "(one login alone: `ssh HOST true`)"


def ssh_clients(sections) -> int:
    """How many ssh clients the fact script started on the host, from its sections: one per ``ssh -G`` and per
    login probe, one per push URL an ls-remote probe reached (its ``url`` lines)."""
    count = 0
    for name, section in sections.items():
        if name.startswith(("ssh.G ", "ssh.login ")):
            count += 1
        elif name.startswith("lsremote "):
            count += sum(1 for line in section.out.splitlines() if line.startswith("url "))
    return count


def print_section_costs(rows: list[tuple[str, int, float, float, float]], repeat: int) -> None:
    print(f"\nthe fact script's cost on one host, per control (hosts CPU from their cgroup, less the script with no "
          f"fact run next to it; median and quartiles of {repeat} pairs):")
    print("| control | sections | hosts CPU ms | q1–q3 ms |\n|---|---|---|---|")
    for control, sections, seconds, q1, q3 in rows:
        if control != SSH_COUNT:
            print(f"| {control} | {sections} | {seconds * 1000:.1f} | {q1 * 1000:.1f}–{q3 * 1000:.1f} |")
    floor = next((r for r in rows if r[0].startswith(SSH_FLOOR)), None)
    count = next((r[1] for r in rows if r[0] == SSH_COUNT), None)
    login = next((r[2] for r in rows if r[0] == LOGIN), None)
    empty = next((r[2] for r in rows if r[0].startswith("(no fact")), None)
    if login is not None and empty is not None:
        print(f"the script's session beyond one login (setsid, timeout, sh, the watchdog, the preamble): "
              f"{(empty - login) * 1000:.1f} ms per host")
    if floor is not None and count is not None:
        print(f"floor of the hosts' CPU aim: the script starts {count} ssh clients per host (ssh -G, the login probe, "
              f"one per push URL ls-remote reaches), {floor[2] * 1000:.1f} ms each to start on these hosts = "
              f"{count * floor[2] * 1000:.0f} ms before they connect  (aim <= 50 ms per host beyond one login)")
