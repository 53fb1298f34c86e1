"""``python -m railiance_conformance nightly [options] [-- pytest args]``: the CI entry point.

See ``railiance_conformance.nightly`` for the exit codes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from railiance_conformance.nightly import USAGE_ERROR, Webhook, run_nightly
from railiance_conformance.policy import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m railiance_conformance")
    sub = parser.add_subparsers(dest="command", required=True)
    nightly = sub.add_parser("nightly", help="run the suite, write every report format, update the history, "
                                             "publish findings.json to a webhook",
                             description=sys.modules["railiance_conformance.nightly"].__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    nightly.add_argument("--report-dir", type=Path, default=REPO_ROOT / "reports")
    nightly.add_argument("--webhook", metavar="URL", help="POST findings.json here (bearer token from "
                                                          "$RAILIANCE_WEBHOOK_TOKEN, never printed)")
    nightly.add_argument("--webhook-timeout", type=float, default=10.0, metavar="S")
    nightly.add_argument("--webhook-retries", type=int, default=3, metavar="N")
    nightly.add_argument("--webhook-backoff", type=float, default=1.0, metavar="S",
                         help="backoff factor: waits S, 2S, 4S, ... between retries")
    nightly.add_argument("pytest_args", nargs=argparse.REMAINDER,
                         help="-- then any pytest/suite options (--ansible-inventory, --kubeconfig, -m ...)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return USAGE_ERROR if exc.code else 0
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    webhook = Webhook(args.webhook, args.webhook_timeout, args.webhook_retries, args.webhook_backoff) \
        if args.webhook else None
    return run_nightly(extra, report_dir=args.report_dir, webhook=webhook)


if __name__ == "__main__":
    sys.exit(main())
