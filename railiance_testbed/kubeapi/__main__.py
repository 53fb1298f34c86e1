"""Serve a dump until SIGTERM/SIGINT.

    python -m railiance_testbed.kubeapi --dump dumps/conformant --dump my-overlay.yaml \\
        --port 8001 --kubeconfig /tmp/kubeconfig [--forbid list:secrets:gitea] [--latency 0.5]

Prints ``pid=<pid> url=<url> kubeconfig=<path>`` on one line once it is listening.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .dump import load_dump
from .server import KubeAPIStandIn


def _forbid(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("expected VERB:RESOURCE:NAMESPACE (NAMESPACE may be '*')")
    return parts[0], parts[1], parts[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m railiance_testbed.kubeapi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", action="append", required=True, help="dump file or directory (repeatable, layered)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the server here")
    parser.add_argument("--context", default="railiance-testbed")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--forbid", action="append", type=_forbid, default=[], metavar="VERB:RESOURCE:NS")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--fail-status", type=int, help="answer every non-discovery request with this code")
    args = parser.parse_args(argv)

    standin = KubeAPIStandIn(load_dump(args.dump), host=args.host, port=args.port, forbidden=set(args.forbid),
                             latency_s=args.latency, fail_status=args.fail_status).start()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    line = f"pid={os.getpid()} url={standin.url}"
    if args.kubeconfig:
        line += f" kubeconfig={standin.write_kubeconfig(args.kubeconfig, args.context, args.namespace)}"
    print(line, flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
