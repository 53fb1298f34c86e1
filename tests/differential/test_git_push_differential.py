"""Where ``git push`` goes (host.gitea_ssh.remotes' reading) against git itself, on generated configs.

For each generated checkout config — remotes ``origin``, ``gitea``, ``backup`` with a url, 0-2
pushurls, ``url.<base>.insteadOf`` and ``pushInsteadOf`` rewrites, ``remote.pushDefault``,
``branch.<name>.remote`` and ``branch.<name>.pushRemote``, a tag named like the branch — the suite's own fact
(``facts.git_push_destination``, run by the fact script as the user), and the ls-remote probe
(``facts.git_ls_push_remote``, alone or after it), must name exactly the URLs
that ``git push --dry-run -v`` reports "Pushing to", in order, against local bare repositories.
``push.default=current`` is set so that a branch without an upstream still dry-runs (it chooses
which refs are pushed, not where).
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts, decode_remote
from railiance_conformance.probes.host_script import build_script, parse_output

NAMES = ["origin", "gitea", "backup"]
BARES = ["a", "b", "c", "d"]
URL = st.sampled_from([f"bare:{b}" for b in BARES] + [f"rw:{b}" for b in BARES])
REMOTE = st.fixed_dictionaries({"url": URL, "pushurls": st.lists(URL, max_size=2)})
CASES = st.fixed_dictionaries({
    "remotes": st.dictionaries(st.sampled_from(NAMES), REMOTE, min_size=1, max_size=3),
    "pushDefault": st.sampled_from([None, *NAMES]),
    "branch_remote": st.sampled_from([None, *NAMES]),
    "branch_pushRemote": st.sampled_from([None, *NAMES]),
    "insteadOf": st.dictionaries(st.sampled_from(BARES), st.sampled_from(BARES), max_size=2),
    "pushInsteadOf": st.dictionaries(st.sampled_from(BARES), st.sampled_from(BARES), max_size=2),
    "branch": st.sampled_from(["main", "feature/x"]),
    # a tag of the branch's name: `git symbolic-ref --short HEAD` says "heads/main" then, git push reads branch.main.*
    "tag_like_branch": st.booleans(),
})


def _git(cwd: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, env=env, timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("gitpush")
    home = root / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    for bare in BARES:
        subprocess.run(["git", "init", "-q", "--bare", str(root / f"{bare}.git")], check=True, env=env)
    return root, home, env


def _configure(repo: Path, root: Path, case: dict, env: dict) -> None:
    if repo.exists():
        subprocess.run(["rm", "-rf", str(repo)], check=True)
    subprocess.run(["git", "init", "-q", "-b", case["branch"], str(repo)], check=True, env=env)
    (repo / "f").write_text("x")
    _git(repo, "add", "f", env=env)
    _git(repo, "commit", "-qm", "x", env=env)
    if case["tag_like_branch"]:
        _git(repo, "tag", case["branch"], env=env)

    def url(text: str) -> str:
        kind, name = text.split(":")
        return str(root / f"{name}.git") if kind == "bare" else f"rw:{name}"
    settings_ = [("push.default", "current")]
    for name, remote in case["remotes"].items():
        settings_.append((f"remote.{name}.url", url(remote["url"])))
        settings_ += [(f"remote.{name}.pushurl", url(p)) for p in remote["pushurls"]]
    for key, value in (("remote.pushDefault", case["pushDefault"]), (f"branch.{case['branch']}.remote", case["branch_remote"]),
                       (f"branch.{case['branch']}.pushRemote", case["branch_pushRemote"])):
        if value:
            settings_.append((key, value))
    # every rw: URL resolves (git stops at the first URL it cannot push to); a generated rewrite replaces the default
    for source, target in ({b: b for b in BARES} | case["insteadOf"]).items():
        settings_.append((f"url.{root / (target + '.git')}.insteadOf", f"rw:{source}"))
    for source, target in case["pushInsteadOf"].items():
        settings_.append((f"url.{root / (target + '.git')}.pushInsteadOf", f"rw:{source}"))
    for key, value in settings_:
        _git(repo, "config", "--add", key, value, env=env)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_the_push_destination_equals_git_push_dry_run(world, case):
    root, home, env = world
    # a branch or default naming a remote that does not exist pushes to that name as a path: not generated
    names = set(case["remotes"])
    for key in ("pushDefault", "branch_remote", "branch_pushRemote"):
        if case[key] not in names:
            case = {**case, key: None}
    if "origin" not in names and not (case["branch_pushRemote"] or case["pushDefault"] or case["branch_remote"]):
        case = {**case, "branch_remote": sorted(names)[0]}
    repo = root / "checkout"
    _configure(repo, root, case, env)
    pushed = _git(repo, "push", "--dry-run", "-v", env=env)
    git_says = re.findall(r"^Pushing to (.*)$", pushed.stderr, re.MULTILINE)
    assert git_says, pushed.stderr

    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    boundary = "@@rcf-" + secrets.token_hex(8)
    destination, ls_remote = F.git_push_destination(user, str(repo)), F.git_ls_push_remote(user, str(repo))

    def gather(gathered: list) -> HostFacts:
        done = subprocess.run(["sh", "-c", build_script(gathered, boundary)], capture_output=True, env=env, timeout=60)
        return HostFacts("local", parse_output(decode_remote(done.stdout), boundary))

    ours = F.read_git_destination(gather([destination]), user, str(repo))
    event(f"push remote {'differs from' if ours['push_remote'] != ours['fetch_remote'] else 'is'} the fetch remote")
    assert ours["push"] == git_says, (case, ours, pushed.stderr)

    # the ls-remote probe lists the same URLs: alone it resolves them itself; after the destination (the
    # script's serial part) it takes them from that section
    for gathered in ([ls_remote], [destination, ls_remote]):
        section = gather(gathered).section(ls_remote.section)
        assert re.findall(r"^url (.*)$", section.out, re.MULTILINE) == git_says, (case, gathered, section)
        assert section.rc == 0 and re.findall(r"^rc (\d+) ", section.out, re.MULTILINE) == ["0"] * len(git_says)
