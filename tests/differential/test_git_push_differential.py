"""Where ``git push`` goes (host.gitea_ssh.remotes' reading) against git itself, on generated configs.

For each generated checkout config — remotes ``origin``, ``gitea``, ``Gitea``, ``backup`` with 1-3 urls, 0-2
pushurls, ``url.<base>.insteadOf`` and ``pushInsteadOf`` rewrites, ``remote.pushDefault``,
``branch.<name>.remote`` and ``branch.<name>.pushRemote``, a tag named like the branch — the suite's own fact
(``facts.git_push_destination``, run by the fact script as the user), and the ls-remote probe
(``facts.git_ls_push_remote``, alone or after it), must name exactly the URLs
that ``git push --dry-run -v`` reports "Pushing to", in order, against local bare repositories.
``push.default=current`` is set so that a branch without an upstream still dry-runs (it chooses
which refs are pushed, not where). Then the fact's whole text against ``git remote get-url [--push --all]``
on configs written as files (local and global scope, overlapping and tied rewrites, empty values, missing
remotes, a detached HEAD), with the names checked by ``git ls-remote --get-url`` and ``git push --dry-run -v``,
and odd configs the builtin resolver leaves to git (named cases).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from railiance_conformance.probes import facts as F
from railiance_conformance.probes.host_facts import HostFacts, decode_remote
from railiance_conformance.probes.host_script import build_script, parse_output

NAMES = ["origin", "gitea", "Gitea", "backup"]
BARES = ["a", "b", "c", "d"]
URL = st.sampled_from([f"bare:{b}" for b in BARES] + [f"rw:{b}" for b in BARES])
REMOTE = st.fixed_dictionaries({"urls": st.lists(URL, min_size=1, max_size=3), "pushurls": st.lists(URL, max_size=2)})
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


def _git_env(home: Path, **extra: str) -> dict[str, str]:
    """git's environment for a case: its own HOME, no system config, the C locale, a fixed author."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C", **extra,
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("gitpush")
    home = root / "home"
    home.mkdir()
    env = _git_env(home)
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
        settings_ += [(f"remote.{name}.url", url(u)) for u in remote["urls"]]
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
    # with no remote named, git takes the only one (remote.c remote_for_branch), else "origin"
    if len(names) > 1 and "origin" not in names and not (case["branch_pushRemote"] or case["pushDefault"]
                                                        or case["branch_remote"]):
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


# --- the fact's remotes and URLs against git's own commands, on configs written as files -------------------------
#
# Each generated checkout has a local config and a global one (~/.gitconfig, written as text: so keys
# may come in any order, scope and case, with empty values), remotes with 0-3 urls and 0-2 pushurls (a remote
# with no url is its own name), url.<base>.insteadOf / pushInsteadOf rules whose prefixes overlap with
# different lengths and tie (the same prefix under two bases, a base twice), a branch or a detached HEAD, and
# branch.<B>.remote / pushRemote / remote.pushDefault naming configured, missing or empty remotes. The fact's
# URL lines must be what ``git remote get-url [--push --all]`` prints for the remotes it names; the names it
# chooses must be the remotes ``git ls-remote --get-url`` and ``git push --dry-run -v`` (no remote given) use,
# seen by giving them the fact's name explicitly: the same remote gives the same first URL.

G_NAMES = ["origin", "gitea", "Gitea", "a.b"]
G_URL = st.sampled_from(["rw:abc", "rw:ab", "rw:b", "RW:abc", "x/y", ""])
G_PREFIX = st.sampled_from(["", "rw:", "rw:a", "rw:ab", "RW:", "x"])  # few, so that rules overlap and tie
G_BASE = st.sampled_from(["B1/", "B2/", "b1/"])
G_SCOPE = st.sampled_from(["local", "local", "global"])
G_CHOICE = st.sampled_from([None, *G_NAMES, "nowhere", ""])
G_REMOTE_KEY = st.one_of(
    st.tuples(st.just("remote"), st.sampled_from(G_NAMES), st.sampled_from(["url", "url", "pushurl"]), G_URL, G_SCOPE),
    st.tuples(st.just("remote"), st.sampled_from(G_NAMES), st.just("fetch"),
              st.sampled_from(["+refs/heads/*:refs/remotes/x/*", "refs/heads/main:refs/remotes/x/main"]), G_SCOPE))
G_RULE = st.tuples(st.just("url"), G_BASE, st.sampled_from(["insteadOf", "pushInsteadOf"]), G_PREFIX, G_SCOPE)
G_CASES = st.fixed_dictionaries({
    "keys": st.lists(st.one_of(G_REMOTE_KEY, G_RULE), max_size=16),
    "branch": st.sampled_from([None, "main", "Main", "feat.v2", "feature/x"]),
    "branch_remote": G_CHOICE, "branch_pushRemote": G_CHOICE, "pushDefault": G_CHOICE,
    "choice_scope": G_SCOPE,
})
# named cases: each breaks a wrong tie rule (alias_url: the base configured first wins a tie, then its first value)
G_TIES = [
    {"keys": [("url", "B2/", "insteadOf", "x", "local"), ("url", "B1/", "insteadOf", "rw:a", "local"),
              ("url", "B2/", "insteadOf", "rw:a", "local"), ("remote", "origin", "url", "rw:abc", "local")],
     "branch": "main", "branch_remote": None, "branch_pushRemote": None, "pushDefault": None, "choice_scope": "local"},
    {"keys": [("url", "B1/", "pushInsteadOf", "rw:", "global"), ("url", "B2/", "pushInsteadOf", "rw:", "local"),
              ("url", "b1/", "pushInsteadOf", "rw:a", "local"), ("url", "B2/", "pushInsteadOf", "rw:a", "local"),
              ("remote", "origin", "url", "rw:abc", "local"), ("remote", "origin", "url", "rw:b", "local")],
     "branch": None, "branch_remote": None, "branch_pushRemote": None, "pushDefault": None, "choice_scope": "local"},
]


def _config_text(entries) -> str:
    """git config file text: one section header per entry (git allows repeats), every value quoted; a value of
    None is a key with no value."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    lines = []
    for section, subsection, variable, value in entries:
        lines.append(f"[{section} {quoted(subsection)}]" if subsection is not None else f"[{section}]")
        lines.append(f"\t{variable}" if value is None else f"\t{variable} = {quoted(value)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def checkout_template(tmp_path_factory):
    """A checkout with one commit (its id for a detached HEAD), the git environment of every case, and the HEAD."""
    root = tmp_path_factory.mktemp("gitremotes")
    home = root / "home"
    home.mkdir()
    env = _git_env(home, GIT_SSH_COMMAND="false", GIT_TERMINAL_PROMPT="0")
    template = root / "template"
    subprocess.run(["git", "init", "-q", "-b", "main", str(template)], check=True, env=env)
    subprocess.run(["git", "-C", str(template), "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    commit = _git(template, "rev-parse", "HEAD", env=env).stdout.strip()
    # the fact script runs git through a shim that logs each call: the builtin resolver's cases run one
    shim = root / "bin"
    shim.mkdir()
    real = shutil.which("git", path=env["PATH"])
    (shim / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {root / "git.log"}\nexec {real} "$@"\n')
    (shim / "git").chmod(0o755)
    return root, home, env, template, commit


def _write_case(root: Path, home: Path, template: Path, commit: str, case: dict) -> Path:
    repo = root / "checkout"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(template, repo, symlinks=True)
    branch = case["branch"]
    (repo / ".git" / "HEAD").write_text(f"ref: refs/heads/{branch}\n" if branch else commit + "\n")
    scopes: dict[str, list] = {"local": [("core", None, "repositoryformatversion", "0"),
                                         ("push", None, "default", "matching")], "global": []}
    for section, subsection, variable, value, scope in case["keys"]:
        scopes[scope].append((section, subsection, variable, value))
    for key, value in (("remote", case["branch_remote"]), ("pushRemote", case["branch_pushRemote"])):
        if value is not None and branch:
            scopes[case["choice_scope"]].append(("branch", branch, key, value))
    if case["pushDefault"] is not None:
        scopes[case["choice_scope"]].append(("remote", None, "pushDefault", case["pushDefault"]))
    (repo / ".git" / "config").write_text(_config_text(scopes["local"]))
    (home / ".gitconfig").write_text(_config_text(scopes["global"]))
    return repo


def _get_url_lines(repo: Path, env: dict, remote: str, key: str, *options: str) -> list[str]:
    """What the fact printed before this change for one remote: ``git remote get-url`` (stdout and stderr, as
    ``$(...)`` gives them), each line prefixed with ``key``, or ``<key>-error <first line>`` when git failed."""
    done = subprocess.run(["git", "-c", "safe.directory=*", "remote", "get-url", *options, remote], cwd=repo,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=30)
    text = done.stdout.rstrip("\n")
    if done.returncode != 0:
        return [f"{key.replace('url', '')}-error {text.split(chr(10))[0]}"]
    return [f"{key} {line}" for line in text.split("\n")]


def _note(text: str) -> None:
    """hypothesis.event, in a hypothesis test only (the named cases run outside one)."""
    from hypothesis.control import currently_in_test_context
    if currently_in_test_context():
        event(text)


def _first_url(done: subprocess.CompletedProcess, pattern: str | None) -> str | None:
    """The first URL git named: ``ls-remote --get-url`` prints it (pattern None), ``push -v`` says "Pushing to"."""
    if pattern is None:
        return done.stdout.split("\n")[0] if done.returncode == 0 else None
    found = re.findall(pattern, done.stderr, re.MULTILINE)
    return found[0] if found else None


def _assert_fact_is_gits(root: Path, repo: Path, env: dict, user: str) -> tuple[dict, list[str]]:
    """The fact's section equals git's own commands: URL lines from ``git remote get-url`` for the remotes it
    names, the branch from ``git symbolic-ref``, the names by ``git ls-remote --get-url`` and ``git push
    --dry-run -v`` with and without the name. Returns the fact's reading and the git commands the fact ran."""
    boundary = "@@rcf-" + secrets.token_hex(8)
    fact = F.git_push_destination(user, str(repo))
    log = root / "git.log"
    log.unlink(missing_ok=True)
    shimmed = {**env, "PATH": f"{root / 'bin'}:{env['PATH']}"}
    done = subprocess.run(["sh", "-c", build_script([fact], boundary)], capture_output=True, env=shimmed, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    section = parse_output(decode_remote(done.stdout), boundary)[fact.section]
    assert section.rc == 0, section
    lines = section.out.split("\n")
    assert lines[0].startswith("branch ") and lines[1].startswith("pull-remote ") and lines[2].startswith("push-remote ")
    branch, fetch_remote, push_remote = lines[0][7:], lines[1][12:], lines[2][12:]
    head = _git(repo, "-c", "safe.directory=*", "symbolic-ref", "-q", "HEAD", env=env).stdout.strip()
    assert branch == (head.removeprefix("refs/heads/") if head.startswith("refs/heads/") else ""), (branch, head)
    expected = [*lines[:3], *_get_url_lines(repo, env, fetch_remote, "pullurl"),
                *_get_url_lines(repo, env, push_remote, "pushurl", "--push", "--all")]
    assert lines == expected, (root / "checkout" / ".git" / "config").read_text()

    # the names: git's own choice and the fact's, given explicitly, reach the same remote
    for command, pattern, name in ((["ls-remote", "--get-url"], None, fetch_remote),
                                   (["push", "--dry-run", "-v"], r"^Pushing to (.*)$", push_remote)):
        implicit = _git(repo, "-c", "safe.directory=*", *command, env=env)
        explicit = _git(repo, "-c", "safe.directory=*", *command, name, env=env)
        ours, theirs = _first_url(explicit, pattern), _first_url(implicit, pattern)
        if ours is None and explicit.stderr == implicit.stderr:  # git cannot use this config at all
            _note(f"{command[0]}: git refuses the config")
            continue
        if theirs is None:  # git's default remote (not named by a key) has no url: the fact's must have none either
            _note(f"{command[0]}: the default remote has no url")
            assert _git(repo, "config", f"remote.{name}.url", env=env).returncode == 1, (implicit.stderr, name)
            continue
        assert ours == theirs, (command, name, implicit.stderr, explicit.stderr)
    return F.read_git_destination(HostFacts("local", {fact.section: section}), user, str(repo)), calls


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=G_CASES)
@example(case=G_TIES[0])
@example(case=G_TIES[1])
def test_the_remotes_and_urls_equal_git_remote_get_url(checkout_template, case):
    root, home, env, template, commit = checkout_template
    repo = _write_case(root, home, template, commit, case)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    found, calls = _assert_fact_is_gits(root, repo, env, user)
    assert len(calls) == 1 and " config --show-scope " in calls[0], calls  # resolved with builtins, no fallback
    event(f"push URLs: {min(len(found['push']), 2)}{'+' if len(found['push']) > 2 else ''}; "
          f"{'push error' if 'push_error' in found else 'pushes'}")


# Configs the builtin resolver leaves to git (git would warn or die, or its output cannot be parsed), and ones it
# reads itself although they look odd: the fact's text is git's either way; ``builtin`` says which path ran.
G_NAMED = {
    "a url spanning lines": ('[remote "origin"]\n\turl = "rw:a\\nb"\n', "", {}, False),
    "a url ending in a newline": ('[remote "origin"]\n\turl = "rw:a\\n"\n', "", {}, False),
    "a key without a value": ('[remote "origin"]\n\turl = rw:a\n[branch "other"]\n\tmerge\n', "", {}, False),
    "pushDefault without a value": ('[remote "origin"]\n\turl = rw:a\n[remote]\n\tpushDefault\n', "", {}, False),
    "a .git/remotes file": ("", "", {"remotes/origin": "URL: rw:abc\n"}, False),
    "a .git/branches file": ("", "", {"branches/origin": "rw:abc#main\n"}, False),
    "a remote named /x": ('[remote "/x"]\n\turl = rw:a\n[remote "origin"]\n\turl = rw:b\n', "", {}, False),
    "a foreign vcs": ('[remote "origin"]\n\tvcs = svn\n', "", {}, False),
    "receivepack twice": ('[remote "origin"]\n\turl = rw:a\n\treceivepack = a\n\treceivepack = b\n', "", {}, False),
    "credentials in a url, warned": ('[transfer]\n\tcredentialsInUrl = warn\n[remote "origin"]\n\turl = https://u:p@h/x\n',
                                     "", {}, False),
    "an invalid refspec": ('[remote "origin"]\n\turl = rw:a\n\tfetch = refs/heads/*:refs/x\n', "", {}, False),
    "an invalid boolean": ('[remote "origin"]\n\turl = rw:a\n\tprune = maybe\n', "", {}, False),
    "a subsection with a space": ('[remote "a b"]\n\turl = rw:a\n', "", {}, False),
    "a remote only in ~/.gitconfig": ("", '[remote "origin"]\n\turl = rw:a\n', {}, True),
    "an unknown remote variable": ('[remote "origin"]\n\turl = rw:a\n\tgh-resolved = base\n\tprune = true\n', "", {},
                                   True),
    "an empty url base": ('[url ""]\n\tinsteadOf = rw:\n[remote "origin"]\n\turl = rw:a\n', "", {}, True),
    "a remote subsection that is empty": ('[remote ""]\n\turl = rw:a\n\tfetch = x\n[remote "origin"]\n\turl = rw:b\n', "",
                                          {}, False),
    "a branch subsection that is empty": ('[branch ""]\n\tdescription = x\n[remote "origin"]\n\turl = rw:b\n', "", {},
                                          False),
    "an empty insteadOf": ('[url "B/"]\n\tinsteadOf = ""\n[remote "origin"]\n\turl = rw:a\n\turl = ""\n', "", {}, True),
    "empty trailing urls": ('[remote "origin"]\n\turl = ""\n\turl = rw:a\n\turl = ""\n\turl = ""\n', "", {}, True),
    "a remote with only a fetch refspec": ('[remote "gitea"]\n\tfetch = +refs/heads/*:refs/remotes/gitea/*\n'
                                           '[url "B/"]\n\tpushInsteadOf = git\n', "", {}, True),
    "a branch that is a symbolic ref": ('[remote "origin"]\n\turl = rw:a\n[branch "other"]\n\tremote = gitea\n'
                                        '[remote "gitea"]\n\turl = rw:b\n', "", {"refs/heads/main": "ref: refs/heads/other\n"},
                                        False),
}


@pytest.mark.parametrize("name", list(G_NAMED))
def test_odd_configs_give_gits_own_text(checkout_template, name):
    root, home, env, template, commit = checkout_template
    local, global_, files, builtin = G_NAMED[name]
    repo = _write_case(root, home, template, commit, {"keys": [], "branch": "main", "branch_remote": None,
                                                      "branch_pushRemote": None, "pushDefault": None,
                                                      "choice_scope": "local"})
    with open(repo / ".git" / "config", "a") as config:
        config.write(local)
    (home / ".gitconfig").write_text(global_)
    for path, text in files.items():
        (repo / ".git" / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / ".git" / path).write_text(text)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    found, calls = _assert_fact_is_gits(root, repo, env, user)
    asked_git = [c for c in calls if " config --show-scope " not in c]
    assert (asked_git == []) == builtin, calls


def test_checkouts_git_finds_elsewhere_give_gits_own_text(checkout_template):
    """A linked worktree (``.git`` is a file), a checkout's subdirectory and a directory in no repository: HEAD
    and the remotes come from git."""
    root, home, env, template, commit = checkout_template
    repo = _write_case(root, home, template, commit, {"keys": [("remote", "origin", "url", "rw:a", "local")],
                                                      "branch": "main", "branch_remote": None, "branch_pushRemote": None,
                                                      "pushDefault": "origin", "choice_scope": "local"})
    worktree = root / "linked"
    shutil.rmtree(worktree, ignore_errors=True)
    _git(repo, "worktree", "add", "-q", "-b", "side", str(worktree), env=env)
    (repo / "sub").mkdir()
    outside = root / "outside"
    outside.mkdir(exist_ok=True)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    for path in (worktree, repo / "sub"):
        found, calls = _assert_fact_is_gits(root, path, env, user)
        assert found["branch"] == ("side" if path == worktree else "main") and found["push"] == ["rw:a"]
    # outside any repository git config reads ~/.gitconfig alone: a key of the repository's own kind there is not one
    (home / ".gitconfig").write_text('[core]\n\trepositoryformatversion = 0\n[remote "origin"]\n\turl = rw:a\n')
    boundary = "@@rcf-" + secrets.token_hex(8)
    fact = F.git_push_destination(user, str(outside))
    done = subprocess.run(["sh", "-c", build_script([fact], boundary)], capture_output=True, env=env, timeout=60)
    section = parse_output(decode_remote(done.stdout), boundary)[fact.section]
    assert section.out.splitlines()[-2:] == ["pull-error fatal: not a git repository (or any of the parent "
                                            "directories): .git", "push-error fatal: not a git repository (or any "
                                            "of the parent directories): .git"], section
