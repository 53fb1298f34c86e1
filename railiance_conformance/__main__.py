"""``python -m railiance_conformance nightly|gate|serve ...``: the CI entry point, the cutover gate, the long-running server.

See ``railiance_conformance.nightly`` and ``railiance_conformance.gate.command`` for the exit codes.
"""
from __future__ import annotations

import signal
import sys

EARLY_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class EarlySignal(BaseException):
    """A signal that came while the command was still starting (imports, options): nothing ran yet."""


def _early(signum: int, frame) -> None:
    raise EarlySignal(signal.Signals(signum).name)


if __name__ == "__main__":  # before the imports (half a second): a cancelled job is answered, not killed
    for _signum in EARLY_SIGNALS:
        signal.signal(_signum, _early)


def early_exit(name: str, argv: list[str]) -> int:
    """The exit status for a signal ``name`` before anything ran: nightly 5 (no report was written, as
    for a run stopped before its report), gate 1 (NO-GO, nothing recorded), serve 0, else 2."""
    command = next((a for a in argv if not a.startswith("-")), "")
    print(f"railiance-conformance: interrupted by {name} while starting: nothing ran, no report was written",
          file=sys.stderr)
    return {"nightly": 5, "gate": 1, "serve": 0}.get(command, 2)


try:  # after the early handlers, on purpose
    import argparse
    from pathlib import Path

    import railiance_conformance.gate.command  # noqa: F401  (its docstring is the gate's --help)
    import railiance_conformance.serve  # noqa: F401  (its docstring is serve's --help)
    from railiance_conformance.levels import SEVERITIES
    from railiance_conformance.nightly import USAGE_ERROR, Webhook, run_nightly
    from railiance_conformance.policy import REPO_ROOT
except EarlySignal as _exc:
    sys.exit(early_exit(str(_exc), sys.argv[1:]))


def _started() -> None:
    """The command is about to start its work: signals get their usual handling (each command installs
    its own where it runs a child)."""
    for signum in EARLY_SIGNALS:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m railiance_conformance",
                                     epilog="Options after -- are passed to the suite (pytest features/).")
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
    gate = sub.add_parser("gate", help="GO/NO-GO for one workplan task before a human-approved cutover",
                          description=sys.modules["railiance_conformance.gate.command"].__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    gate.add_argument("task", nargs="?", help="the task, e.g. RAIL-HO-WP-0004-T09")
    gate.add_argument("--workplan", type=Path, help="the workplan file (its prerequisites decide the gate)")
    gate.add_argument("--kubeconfig", help="the cluster (as for the suite); the backup check reads it too")
    gate.add_argument("--context")
    gate.add_argument("--repos", type=Path, help="the railiance-* checkouts (repo controls; their HEADs are "
                                                 "recorded with an approval)")
    gate.add_argument("--policy-dir", type=Path, default=REPO_ROOT / "policies")
    gate.add_argument("--report-dir", type=Path, default=REPO_ROOT / "reports" / "gate")
    gate.add_argument("--history", type=Path, default=REPO_ROOT / "reports" / "history.sqlite",
                      help="the history database where gate runs and approvals (append-only) are recorded")
    gate.add_argument("--approve", metavar="PRINCIPAL", help="record a signed approval by PRINCIPAL (as named in "
                                                             "allowed_signers): only on GO, refused on NO-GO")
    gate.add_argument("--signing-key", type=Path, metavar="PATH", help="the approver's SSH key (private key, or "
                                                                       "public key with the private one in ssh-agent)")
    gate.add_argument("--allowed-signers", type=Path, metavar="PATH",
                      help="OpenSSH allowed_signers: who may approve (default: approvals.allowed_signers in gate.yaml)")
    gate.add_argument("--list-approvals", action="store_true", help="list the recorded approvals and exit")
    gate.add_argument("--verify-approvals", action="store_true",
                      help="check the approval chain (hashes, signatures, approved runs, archived reports) and exit")
    gate.add_argument("--expect-head", metavar="sha256:HEX",
                      help="with --verify-approvals: a chain head kept elsewhere (printed with each approval); fails "
                           "when no row has it (rows cut from the end, the table dropped)")
    controls = sub.add_parser("controls", help="print docs/controls.md (the control table: catalog + the features' "
                                               "sentences, and the vars); --write writes it")
    controls.add_argument("--write", action="store_true", help="write docs/controls.md instead of printing it")
    vocabulary = sub.add_parser("vocabulary", help="print docs/vocabulary.md (every check kind); --write writes it")
    vocabulary.add_argument("--write", action="store_true", help="write docs/vocabulary.md instead of printing it")
    serve = sub.add_parser("serve", help="re-run the suite on an interval; serve /status, /metrics, /healthz and the "
                                         "latest HTML report", description=sys.modules["railiance_conformance.serve"].__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--listen", default="0.0.0.0:9477", metavar="HOST:PORT", help="where to serve (port 0: a free one)")
    serve.add_argument("--interval", type=float, default=900.0, metavar="S",
                       help="seconds from the end of one run to the start of the next (default 900)")
    serve.add_argument("--report-dir", type=Path, default=REPO_ROOT / "reports")
    serve.add_argument("--run-timeout", type=float, metavar="S", help="deadline of each run (the suite's --run-timeout)")
    serve.add_argument("--fail-severity", default="info", choices=SEVERITIES,
                       help="/status answers 503 for drift or could-not-verify of this severity or louder (default info: any)")
    serve.add_argument("--accept-after", type=int, default=3, metavar="N",
                       help="a run that verifies less than the served one is taken after N such runs in a row (default 3)")
    history = sub.add_parser("history", help="list the recorded runs, or diff any two of them")
    history.add_argument("--history", type=Path, default=REPO_ROOT / "reports" / "history.sqlite",
                         help="the history database (default: reports/history.sqlite)")
    history.add_argument("--diff", nargs=2, metavar=("RUN_A", "RUN_B"), help="what changed from run A to run B")
    history.add_argument("--finding", metavar="CONTROL@TARGET", help="first/last seen and the drift streak of one finding")
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after "--" goes to the suite (pytest features/ ...)
    head, tail = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    try:
        args = parser.parse_args(head)
    except SystemExit as exc:
        return USAGE_ERROR if exc.code else 0
    _started()
    if args.command == "gate":
        return _gate(args, tail)
    if args.command == "serve":
        from railiance_conformance.serve import serve as run_serve

        return run_serve(tail, report_dir=args.report_dir, interval_s=args.interval, listen=args.listen,
                         run_timeout_s=args.run_timeout, accept_after=args.accept_after,
                         fail_severity=args.fail_severity)
    if args.command == "history":
        return _history(args)
    if args.command == "controls":
        return _controls(args)
    if args.command == "vocabulary":
        return _vocabulary(args)
    extra = tail
    webhook = Webhook(args.webhook, args.webhook_timeout, args.webhook_retries, args.webhook_backoff) \
        if args.webhook else None
    return run_nightly(extra, report_dir=args.report_dir, webhook=webhook)


def _controls(args) -> int:
    from railiance_conformance.checks import bundled_plan
    from railiance_conformance.control_table import controls_doc

    plan = bundled_plan()
    text = controls_doc(plan.catalog, plan.specs)
    if args.write:
        (REPO_ROOT / "docs" / "controls.md").write_text(text)
    else:
        print(text, end="")
    return 0


def _vocabulary(args) -> int:
    from railiance_conformance.checks import bundled_plan
    from railiance_conformance.control_table import vocabulary_doc
    from railiance_conformance.vocabulary import check_kinds

    text = vocabulary_doc(check_kinds(), bundled_plan().specs)
    if args.write:
        (REPO_ROOT / "docs" / "vocabulary.md").write_text(text)
    else:
        print(text, end="")
    return 0


def _history(args) -> int:
    import dataclasses
    import json

    from railiance_conformance.history import History

    if not args.history.exists():
        print(f"history: {args.history}: no such history database", file=sys.stderr)
        return USAGE_ERROR
    history = History(args.history)
    if args.diff:
        known = {r.run_id for r in history.runs()}
        missing = [r for r in args.diff if r not in known]
        if missing:
            print(f"history: no run {', '.join(missing)} in {args.history}", file=sys.stderr)
            return USAGE_ERROR
        print(json.dumps(history.diff(*args.diff).to_dict(), indent=2))
    elif args.finding:
        seen = history.finding_history(args.finding)
        print(json.dumps(dataclasses.asdict(seen) if seen else None, indent=2, default=str))
    else:
        for run in history.runs():
            counts = ", ".join(f"{n} {s}" for s, n in run.counts.items() if n)
            print(f"{run.run_id}  {run.started_at}  {'partial  ' if run.partial else ''}{counts}")
    return 0


def _gate(args, extra: list[str]) -> int:
    from railiance_conformance.gate.command import list_approvals, run_gate, verify_approvals

    if args.verify_approvals:
        return verify_approvals(args.history, policy_dir=args.policy_dir, allowed_signers=args.allowed_signers,
                                expect_head=args.expect_head, kubeconfig=args.kubeconfig, context=args.context)
    if args.list_approvals:
        return list_approvals(args.history)
    if not args.task or not args.workplan:
        print("gate: give the task and --workplan", file=sys.stderr)
        return USAGE_ERROR
    return run_gate(args.task, workplan_path=args.workplan, suite_args=extra, report_dir=args.report_dir,
                    policy_dir=args.policy_dir, kubeconfig=args.kubeconfig, context=args.context,
                    history=args.history, approve=args.approve, repos=args.repos, signing_key=args.signing_key,
                    allowed_signers=args.allowed_signers)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EarlySignal as exc:
        sys.exit(early_exit(str(exc), sys.argv[1:]))
    except BrokenPipeError:  # the reader went away (``history | head``): what it asked for was written
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        sys.exit(0)
