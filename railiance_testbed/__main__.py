"""``python -m railiance_testbed run [--conformant N] -- COMMAND...``: boot the testbed, run, stop.
(``python -m railiance_testbed ns [--hosts 100] [--drifted N] -- COMMAND...``: the same with many
sshd-only namespace hosts, railiance_testbed/nshosts.py.)

The command sees ``TESTBED_INVENTORY`` (an Ansible inventory of the hosts: conformant,
drifted and one that is down), ``TESTBED_SSH_CONFIG`` (identity and known_hosts for them) and
``TESTBED_KUBECONFIG`` (the Kubernetes API stand-in serving the cluster dump: the conformant
one, with ``--cluster-drift NAME`` overlays from railiance_testbed/kubeapi/dumps/drifted/),
``TESTBED_REPOS`` (the railiance-* checkouts as real git repos, ``--repos conformant|drifted``)
and ``TESTBED_WORKPLAN`` (a copy of the RAIL-HO-WP-0004 workplan the suite verifies).
Every container is stopped when the command ends, also on Ctrl-C. The command's exit status
is returned.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from railiance_testbed import SEED_WORKPLAN as WORKPLAN  # noqa: E402
from railiance_testbed.hosts import CONFORMANT, DRIFTED
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, drift_overlay, load_dump
from railiance_testbed.nspawn import Testbed
from railiance_testbed.repos import build_repos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m railiance_testbed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="boot the testbed, run COMMAND, stop the testbed")
    run.add_argument("--conformant", type=int, default=1, help="how many conformant hosts (default 1)")
    run.add_argument("--no-drifted", action="store_true", help="leave out the drifted host")
    run.add_argument("--no-down", action="store_true", help="leave out the host that is down")
    run.add_argument("--cluster-drift", action="append", default=[], metavar="NAME",
                     help="layer this drifted overlay over the conformant cluster dump (repeatable)")
    run.add_argument("--repos", choices=("conformant", "drifted"), default="conformant",
                     help="which fixture repo checkouts to build (default conformant)")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    ns = sub.add_parser("ns", help="start many sshd-only namespace hosts (no systemd), run COMMAND, stop them",
                        description="Namespace hosts (railiance_testbed/nshosts.py): COMMAND sees TESTBED_INVENTORY, "
                                    "TESTBED_SSH_CONFIG and TESTBED_STATE; systemd controls are errors there.")
    ns.add_argument("--hosts", type=int, default=100, help="how many conformant hosts (default 100)")
    ns.add_argument("--drifted", type=int, default=0, help="how many drifted hosts besides (default 0)")
    ns.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("give the command to run after --")
    if args.command == "ns":
        return run_namespace_hosts(args.hosts, args.drifted, command)
    states = [CONFORMANT if args.conformant == 1 else replace(CONFORMANT, name=f"conformant-{i + 1}")
              for i in range(args.conformant)]
    if not args.no_drifted:
        states.append(DRIFTED)
    with tempfile.TemporaryDirectory(prefix="railiance-testbed-") as workdir:
        print(f"testbed: booting {len(states)} hosts ...", file=sys.stderr, flush=True)
        layers = [CONFORMANT_DUMP, *(f for name in args.cluster_drift for f in drift_overlay(name))]
        with Testbed(states, Path(workdir), down=[] if args.no_down else ["stopped"]) as bed, \
                KubeAPIStandIn(load_dump(layers)) as api:
            kubeconfig = api.write_kubeconfig(Path(workdir) / "kubeconfig")
            repos = next(iter(build_repos(Path(workdir) / "repos", args.repos).values())).parent
            env = dict(os.environ, TESTBED_INVENTORY=str(bed.inventory), TESTBED_SSH_CONFIG=str(bed.ssh_config),
                       TESTBED_KUBECONFIG=str(kubeconfig), TESTBED_STATE=str(bed.write_state()),
                       TESTBED_REPOS=str(repos), TESTBED_WORKPLAN=str(WORKPLAN))
            print(f"testbed: Kubernetes API stand-in at {api.url} (conformant dump"
                  f"{''.join(f' + {name}' for name in args.cluster_drift)})",
                  file=sys.stderr)
            for name, info in bed.describe()["hosts"].items():
                print(f"testbed: {name} at {info['url']}", file=sys.stderr)
            for name, url in bed.describe()["down"].items():
                print(f"testbed: {name} at {url} (down)", file=sys.stderr, flush=True)
            try:
                return subprocess.run(command, env=env).returncode
            except KeyboardInterrupt:
                return 130


def run_namespace_hosts(conformant: int, drifted: int, command: list[str]) -> int:
    """``ns``: ``conformant`` + ``drifted`` namespace hosts (ns001..., ns-drifted1...), COMMAND, stop them."""
    from railiance_testbed.nshosts import NamespaceTestbed

    states = [replace(CONFORMANT, name=f"ns{i + 1:03d}") for i in range(conformant)]
    states += [replace(DRIFTED, name=f"ns-drifted{i + 1}") for i in range(drifted)]
    with tempfile.TemporaryDirectory(prefix="railiance-nshosts-") as workdir:
        print(f"testbed: starting {len(states)} namespace hosts ...", file=sys.stderr, flush=True)
        with NamespaceTestbed(states, Path(workdir)) as bed:
            env = dict(os.environ, TESTBED_INVENTORY=str(bed.inventory), TESTBED_SSH_CONFIG=str(bed.ssh_config),
                       TESTBED_STATE=str(bed.write_state()))
            print(f"testbed: {len(bed.hosts)} hosts listening on 127.77.x.y:2222 (inventory {bed.inventory})",
                  file=sys.stderr, flush=True)
            try:
                return subprocess.run(command, env=env).returncode
            except KeyboardInterrupt:
                return 130


if __name__ == "__main__":
    sys.exit(main())
