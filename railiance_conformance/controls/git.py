"""Host kinds about the operator's git checkouts: where their remotes push, and that ``git ls-remote`` answers.
"""
from __future__ import annotations

from railiance_conformance.controls.grammar import USER, Params, and_list
from railiance_conformance.controls.ssh import last_line, ssh_failure
from railiance_conformance.finding import FactUnavailable, Outcome, Status
from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts, cannot_start, fork_failure
from railiance_conformance.probes.host_script import NOT_REGULAR, NOT_RUN
from railiance_conformance.resources.endpoints import git_remote
from railiance_conformance.ssh_messages import without_banner
from railiance_conformance.vocabulary import check_kind


@check_kind("host.git_remotes", rf"every checkout of {USER} in (?P<paths>~?/\S+(?:(?:, | and )~?/\S+)*) "
                                r"fetches and pushes to (?P<prefix>\S+)", target="host",
            convert=lambda g: {"user": g["user"], "paths": and_list(g["paths"]), "prefix": g["prefix"]},
            schema={"required": ["user", "paths", "prefix"],
                    "properties": {"paths": {"type": "array", "minItems": 1,
                                             "items": {"type": "string", "pattern": r"^(~/|/)[A-Za-z0-9._/@+-]*$"}}}},
            facts=lambda p: [F.git_push_destination(p["user"], path) for path in p["paths"]])
def git_remotes(facts: HostFacts, params: Params) -> Outcome:
    """Each checkout's ``git fetch`` and ``git push`` of its current branch go to the prefix, as git reads
    them: the push remote is branch.<name>.pushRemote, else remote.pushDefault, else the branch's remote,
    else the only remote, else origin (git remote.c ``pushremote_for_branch``/``remote_for_branch``), and every
    URL it pushes to (pushurl, pushInsteadOf, insteadOf) counts. Proved against ``git push --dry-run -v`` and
    ``git remote get-url`` on generated configs (tests/differential/test_git_push_differential.py)."""
    user, prefix = params["user"], params["prefix"]
    want = git_remote(prefix)
    repos = list(params["paths"])
    observed: dict[str, str] = {}
    drifted, unreadable, remotes = [], [], {}
    for path in repos:
        section = facts.section(F.git_push_destination(user, path).section)
        if section.rc not in (0, 4):
            detail = section.out.strip().splitlines()[-1] if section.out.strip() else f"exit {section.rc}"
            unreadable.append(f"{path}: {detail}")  # could not look: not a fact about the repo
            continue
        found = F.read_git_destination(facts, user, path)
        if found is None:
            observed[path] = "(no checkout)"
            drifted.append(path)
            continue
        remotes[path] = {"branch": found["branch"] or "(detached HEAD)", "fetch_remote": found["fetch_remote"],
                         "push_remote": found["push_remote"]}
        if found.get("fetch_error") or found.get("push_error"):
            which = "fetch" if found.get("fetch_error") else "push"
            observed[path] = f"(no {which} remote {found[which + '_remote']!r}: {found.get(which + '_error')})"
            drifted.append(path)
            continue
        fetches, pushes = found["fetch"], found["push"]
        # where fetches and pushes go, as git's transport reads each URL (scp-like == ssh://)
        wrong = [u for u in [*fetches, *pushes] if not _to_prefix(git_remote(u), want)]
        if not wrong:
            observed[path] = f"{prefix}..."
        else:
            drifted.append(path)
            via = f" (via remote {found['push_remote']})" if found["push_remote"] != found["fetch_remote"] else ""
            observed[path] = (", ".join(fetches) if pushes == fetches
                              else f"fetch {', '.join(fetches)}; push {', '.join(pushes)}{via}")
    expected = {path: f"{prefix}..." for path in repos}
    if unreadable and not drifted:
        return Outcome(Status.ERROR, expected, observed, reason="cannot read the remotes of " + "; ".join(unreadable))
    status = Status.DRIFT if drifted else Status.PASS
    return Outcome(status, expected, observed, evidence=(("drifted", drifted), ("unreadable", unreadable),
                                                         ("remotes", remotes),
                                                         ("compared", "the URLs git fetch and git push (no arguments) "
                                                          "use from the current branch: pushRemote, remote.pushDefault, "
                                                          f"pushurl, pushInsteadOf, insteadOf, as {user}")))


def _to_prefix(remote, want) -> bool:
    """Same ssh server as the prefix, and a path under its path.

    A URL without a user logs in as the User its ssh config block gives (checked by the ssh
    config control), so it matches the prefix's user; an explicit port must equal the prefix's
    (none: the ssh config's Port decides).
    """
    base = want.path if want.path.endswith("/") else want.path + "/"
    same = (remote.scheme, remote.host.lower(), remote.port) == (want.scheme, want.host.lower(), want.port) \
        and remote.user in (want.user, None)
    return same and (base == "/" or (remote.path + "/").startswith(base))


@check_kind("host.git.ls_remote", rf"git ls-remote answers as {USER} for the push URL of every checkout in "
                                  r"(?P<paths>~?/\S+(?:(?:, | and )~?/\S+)*)", target="host",
            convert=lambda g: {"user": g["user"], "paths": and_list(g["paths"])},
            schema={"required": ["user", "paths"],
                    "properties": {"paths": {"type": "array", "minItems": 1,
                                             "items": {"type": "string", "pattern": r"^(~/|/)[A-Za-z0-9._/@+-]*$"}}}},
            facts=lambda p: [F.git_ls_push_remote(p["user"], path) for path in p["paths"]])
def git_ls_remote(facts: HostFacts, params: Params) -> Outcome:
    """``git ls-remote`` of every URL each checkout's current branch pushes to (its push remote: pushRemote,
    remote.pushDefault, the branch's remote, origin) answers, as the user, in batch
    mode (read-only: the refs are listed, nothing is sent). A refused key or missing repository is
    drift; a server that cannot be reached is an error."""
    user = params["user"]
    expected = {path: "answers" for path in params["paths"]}
    observed: dict[str, str] = {}
    drifted, unreachable = [], []
    for path in params["paths"]:
        section = facts.section(F.git_ls_push_remote(user, path).section)
        if section.rc in (5, NOT_REGULAR, NOT_RUN):  # could not run as the user; the user's ssh config blocks
            raise FactUnavailable(last_line(section.out))
        if section.rc in (3, 4):
            observed[path] = f"no origin ({last_line(section.out)})" if section.rc == 3 else "no checkout"
            drifted.append(path)
            continue
        if section.rc in (124, 137):  # timeout -s KILL (host_script: $T)
            observed[path] = f"ls-remote did not finish within {facts.network_timeout_s} s (timed out)"
            unreachable.append(path)
            continue
        answers, url = [], ""
        lines = section.out.splitlines()
        for index, line in enumerate(lines):
            if line.startswith("url "):
                url = line[4:]
            elif line.startswith("rc "):
                fields = line.split()
                if len(fields) != 4 or not (fields[1].isdigit() and fields[3].isdigit()):
                    raise cannot_start(forked) if (forked := fork_failure(section.out)) else \
                        FactUnavailable(f"the ls-remote probe of {path} was cut short: {line!r}")
                rc, refs = int(fields[1]), int(fields[3])
                detail = "\n".join(l.strip() for l in lines[index + 1:index + 4] if l.startswith("  "))
                if rc != 0 and (forked := fork_failure(detail)):
                    raise cannot_start(forked)
                answers.append((url, rc, refs, detail))
        failures = [(u, ssh_failure(d, rc, "the server") or
                     (Status.DRIFT, (without_banner(d).splitlines() or [f"exit {rc}"])[0]))
                    for u, rc, _, d in answers if rc != 0]
        if not answers:
            observed[path] = "no push URL"
            drifted.append(path)
        elif not failures:
            observed[path] = "answers"
        else:
            observed[path] = "; ".join(f"{u}: {why}" for u, (_, why) in failures)
            (drifted if any(s is Status.DRIFT for _, (s, _) in failures) else unreachable).append(path)
    evidence = (("drifted", drifted), ("unreachable", unreachable))
    if drifted:
        return Outcome(Status.DRIFT, expected, observed, evidence=evidence)
    if unreachable:
        return Outcome(Status.ERROR, expected, observed,
                       reason="cannot reach the push URL of " + "; ".join(f"{p}: {observed[p]}" for p in unreachable),
                       evidence=evidence)
    return Outcome(Status.PASS, expected, observed, evidence=evidence)
