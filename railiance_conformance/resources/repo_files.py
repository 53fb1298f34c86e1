"""What a repo checkout holds: make's own database, its files, SOPS files, markdown sections.

Example: ``read_make_database(Path("~/railiance-platform")).targets["db-deploy"].recipe`` -> the
unexpanded recipe lines; ``make_provides(repo, ["db-status"])`` -> ``{"db-status": True}`` (a
``%-status:`` pattern rule counts); ``make_prints(repo, "deploy-stack")`` -> the lines ``make -s
deploy-stack`` would print; ``check_sops_file(path).plaintext`` -> dotted key paths (never values).

**How a Makefile is read without running anything of the operator's.** Only GNU make knows what
a makefile means (pattern rules, ``$(LAYERS)``, includes, conditionals), so make itself is asked,
three ways: ``-p`` prints its database (the explicit targets), ``-q TARGET`` says whether it can
make a target (explicit *or* by a pattern rule: "No rule to make target" is the only "no"), and
``-n TARGET`` prints, in the order make would run them, the recipe lines of the target and its
prerequisites with every make variable expanded (``for l in S1 S2 …``). But make *evaluates* a
makefile while reading it (``$(shell …)`` runs at parse time under ``-p``, ``-q`` and ``-n`` alike)
and remakes makefiles before any goal; lines starting with ``+`` or containing ``$(MAKE)`` run
under ``-n`` and ``-q`` too, and a rule for an included makefile always runs. So make is run here
with every layer of defence that still lets it answer:

* ``SHELL=/bin/false`` on the command line: every recipe line that still runs (``+``, ``$(MAKE)``,
  a makefile remake) and every ``$(shell …)`` executes ``/bin/false -c …``, which does nothing
  (``$(shell)`` expands to nothing); ``-i`` lets ``-n`` go on past such a line;
* ``-p -q`` reads the database with the goal ``.RAILIANCE_NO_SUCH_TARGET_``: no real target is considered;
* ``-R -r``: no built-in rules or variables (no implicit remaking of makefiles from RCS/SCCS);
* an empty environment (no ``MAKEFLAGS``/``MAKEFILES``), ``PATH=/nonexistent``, a timeout.

What ``-n`` prints is never executed: what the recipe *prints* is read from it by a small
interpreter of the only commands whose output is their arguments — ``echo``, ``printf``, and
``for V in WORDS; do …; done`` loops around them, with ``$V``/``${V}`` expanded outside single
quotes (``shell_prints``); any other command prints nothing here. It is proved equal to ``make -s``
with /bin/sh on generated Makefiles (tests/differential/test_make_differential.py).
A makefile can still take ``SHELL`` back with ``override SHELL`` (or a target-specific SHELL): that
is detected in the database and reported (``MakeUntrusted``), never trusted. Parse-time functions
that need no shell (``$(file >…)``, ``load``) act whatever make is asked; only a sandbox stops
those. The checkouts are the operators' own repos; the guarantee here is that no recipe runs.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

NO_SUCH_GOAL = ".RAILIANCE_NO_SUCH_TARGET_"
MAKE_ENV = {"PATH": "/nonexistent", "LC_ALL": "C", "HOME": "/nonexistent", "TMPDIR": "/nonexistent"}
_ASSIGNMENT = re.compile(r"^(?:(?:override|export|private|unexport)\s+)*[^\s:=#]+\s*(?::::=|::=|:=|\+=|\?=|!=|=)")
_SHELL_SET = re.compile(r"^(?:[^\s#][^:]*:{1,2}\s+)?(?:(?:override|export|private)\s+)*SHELL\s*(?::::=|::=|:=|\+=|\?=|!=|=)")
_LAYER = re.compile(r"(?<![\w-])S([1-5])(?![\w-])")
_PRINT = re.compile(r"^[@+\-\s]*(?:echo|printf|\$\((?:info|warning))\b")
ENC_VALUE = re.compile(r"^ENC\[[A-Z0-9_]+,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,"
                       r"type:(?:str|int|float|bool|bytes|comment)\]$")
SOPS_RULES = ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex",
              "unencrypted_comment_regex", "encrypted_comment_regex")


class MakeUnavailable(Exception):
    """make could not be asked (not installed, timed out, the makefile does not parse)."""


class MakeUntrusted(MakeUnavailable):
    """The makefile overrides SHELL: its remake rules or ``$(shell)`` calls may have run."""


@dataclass(frozen=True)
class MakeRule:
    """One target in make's database; ``recipe`` lines are unexpanded, as make printed them."""

    name: str
    prerequisites: tuple[str, ...]
    recipe: tuple[str, ...]


def read_make_database(repo: Path, makefile: str = "Makefile", timeout_s: float = 20.0) -> dict[str, MakeRule]:
    """``read_make_database(Path("railiance-apps"))`` -> ``{"gitea-deploy": MakeRule(...), ...}``, no recipe run."""
    make = shutil.which("make") or shutil.which("gmake")
    if not make:
        raise MakeUnavailable("GNU make is not installed")
    if not (Path(repo) / makefile).is_file():
        raise FileNotFoundError(f"{repo}/{makefile}")
    argv = [make, "-p", "-q", "-R", "-r", "--no-print-directory", "-f", makefile,
            "SHELL=/bin/false", NO_SUCH_GOAL]
    try:
        done = subprocess.run(argv, env=MAKE_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout_s, cwd=str(repo), check=False)
    except subprocess.TimeoutExpired:
        raise MakeUnavailable(f"make -p on {repo}/{makefile} timed out after {timeout_s:g}s") from None
    fatal = [line for line in done.stderr.splitlines() if "***" in line and "Stop." in line and NO_SUCH_GOAL not in line]
    if fatal or "\n# Files" not in done.stdout:
        raise MakeUnavailable(f"make cannot read {makefile}: {(fatal or done.stderr.splitlines() or ['no database'])[-1]}")
    return parse_make_database(done.stdout)


def _make_argv(makefile: str) -> list[str]:
    make = shutil.which("make") or shutil.which("gmake")
    if not make:
        raise MakeUnavailable("GNU make is not installed")
    return [make, "-R", "-r", "--no-print-directory", "-f", makefile, "SHELL=/bin/false"]


def _ask_make(repo: Path, argv: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, env=MAKE_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout_s, cwd=str(repo), check=False)
    except subprocess.TimeoutExpired:
        raise MakeUnavailable(f"make {' '.join(argv[7:])} in {repo} timed out after {timeout_s:g}s") from None


def make_provides(repo: Path, targets: list[str], makefile: str = "Makefile",
                  timeout_s: float = 20.0) -> dict[str, bool]:
    """Whether make can make each target: ``make -q TARGET`` (no recipe run, see the module docstring)
    answers "No rule to make target" only for a target that no explicit rule and no pattern rule
    (``%-status:``, with prerequisites that exist or can be made) provides (an explicit rule whose
    prerequisite cannot be made still provides its target). GNU make ``remake.c``
    ``update_file_1``/``implicit.c`` ``pattern_search``; raises MakeUnavailable/MakeUntrusted."""
    read_make_database(repo, makefile, timeout_s)  # refuses a makefile that sets SHELL itself
    found = {}
    for target in targets:
        done = _ask_make(repo, [*_make_argv(makefile), "-q", target], timeout_s)
        # only "No rule to make target 'T'." is about T itself ("…, needed by 'T'" is a prerequisite of an
        # explicit rule: T exists, make stops later)
        found[target] = not any(f"No rule to make target '{target}'." in line for line in done.stderr.splitlines())
    return found


def make_prints(repo: Path, target: str, makefile: str = "Makefile", timeout_s: float = 20.0) -> list[str]:
    """The lines ``make -s TARGET`` would print from its echo/printf recipe lines, in make's order
    (prerequisites first), read from ``make -n -i TARGET`` (expanded, never run) by ``shell_prints``.
    ``$(MAKE)`` sub-makes are not followed (their output is not known without running them)."""
    read_make_database(repo, makefile, timeout_s)  # refuses a makefile that sets SHELL itself
    done = _ask_make(repo, [*_make_argv(makefile), "-n", "-i", target], timeout_s)
    missing = [line for line in done.stderr.splitlines() if "No rule to make target" in line]
    if any(f"No rule to make target '{target}'." in line for line in missing):
        raise KeyError(target)
    if missing:  # a prerequisite make cannot make: make -s would stop there too
        raise MakeUnavailable(f"make -n {target}: {missing[0].split('*** ', 1)[-1]}")
    return shell_prints(done.stdout)


def printed_layers_in(lines: list[str]) -> list[str]:
    """Layers (``S1``…``S5``) in printed lines, in order: a line naming more than one layer (a banner
    like ``S1→S5``) is skipped; repeats collapse."""
    seen: list[str] = []
    for line in lines:
        layers = {f"S{n}" for n in _LAYER.findall(line)}
        if len(layers) == 1 and (not seen or seen[-1] != next(iter(layers))):
            seen.append(next(iter(layers)))
    return seen




def _statements(text: str) -> list[str]:
    """Split shell text at ``;``, ``&&``, ``||`` and newlines outside quotes (backslash-newline joins)."""
    text = text.replace("\\\n", "")
    out, current, quote, index = [], [], "", 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and index + 1 < len(text):
                current.append(char)
                index += 1
                char = text[index]
            current.append(char)
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == "\\" and index + 1 < len(text):
            current.append(char + text[index + 1])
            index += 1
        elif char in ";\n" or text.startswith(("&&", "||"), index):
            out.append("".join(current).strip())
            current = []
            index += 1 if char in ";\n" else 2
            continue
        else:
            current.append(char)
        index += 1
    out.append("".join(current).strip())
    return [s for s in out if s]


def _expand(text: str, variables: dict[str, str]) -> str:
    """``$V`` and ``${V}`` outside single quotes (unset: empty, as sh expands them)."""
    out, quote, index = [], "", 0
    while index < len(text):
        char = text[index]
        if char == "'" and quote != '"':
            quote = "" if quote == "'" else "'"
        elif char == '"' and quote != "'":
            quote = "" if quote == '"' else '"'
        elif char == "\\" and quote != "'" and index + 1 < len(text):
            out.append(text[index:index + 2])
            index += 2
            continue
        elif char == "$" and quote != "'":
            match = re.match(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", text[index:])
            if match:
                value = variables.get(match[1] or match[2], "")
                out.append(value if quote else shlex.quote(value) if " " not in value else value)
                index += match.end()
                continue
        out.append(char)
        index += 1
    return "".join(out)


def _printf(fmt: str, args: list[str]) -> str:
    escapes = {"n": "\n", "t": "\t", "\\": "\\", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", '"': '"'}
    fmt = re.sub(r"\\(.)", lambda m: escapes.get(m[1], "\\" + m[1]), fmt)
    out, args = [], list(args)
    while True:  # printf reuses the format while arguments remain
        pieces = re.split(r"(%[-+ #0]*\d*(?:\.\d+)?[sdbcq%])", fmt)
        used = False
        for piece in pieces:
            if re.fullmatch(r"%[-+ #0]*\d*(?:\.\d+)?[sdbcq]", piece):
                used = True
                out.append(args.pop(0) if args else "")
            else:
                out.append("%" if piece == "%%" else piece)
        if not args or not used:
            return "".join(out)


def shell_prints(text: str) -> list[str]:
    """What ``sh`` prints for ``text`` made of echo/printf commands and ``for`` loops around them, as lines.
    Any other command contributes nothing (it is never run)."""
    printed: list[str] = []
    _run(_statements(text), {}, printed)
    return "".join(printed).splitlines()


def _run(statements: list[str], variables: dict[str, str], printed: list[str]) -> None:
    index = 0
    while index < len(statements):
        statement = statements[index]
        loop = re.match(r"^for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.*?)\s*$", statement, re.DOTALL)
        if loop:
            body, depth, end = [], 0, index + 1
            if end < len(statements) and statements[end].startswith("do"):
                first = statements[end][2:].strip()
                body_statements = ([first] if first else [])
                end += 1
                while end < len(statements):
                    item = statements[end]
                    if item.startswith("for "):
                        depth += 1
                    if item == "done" or item.startswith("done "):
                        if depth == 0:
                            break
                        depth -= 1
                    body_statements.append(item)
                    end += 1
                body = body_statements
            try:
                words = shlex.split(_expand(loop[2], variables))
            except ValueError:
                words = []
            for word in words:
                _run(body, {**variables, loop[1]: word}, printed)
            index = end + 1
            continue
        try:
            argv = shlex.split(_expand(statement, variables))
        except ValueError:
            argv = []
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            argv = argv[1:]
        if argv[:1] == ["echo"]:
            args, newline = argv[1:], True
            while args and re.fullmatch(r"-[neE]+", args[0]):
                newline = newline and "n" not in args[0]
                args = args[1:]
            printed.append(" ".join(args) + ("\n" if newline else ""))
        elif argv[:1] == ["printf"] and len(argv) > 1:
            printed.append(_printf(argv[1], argv[2:]))
        index += 1


def parse_make_database(text: str) -> dict[str, MakeRule]:
    """The targets of ``make -p`` output (its ``# Files`` section), without "# Not a target:" entries."""
    _check_shell(text)
    files = text.split("\n# Files\n", 1)[1].split("\n# files hash-table stats", 1)[0]
    rules: dict[str, MakeRule] = {}
    for entry in files.split("\n\n"):
        lines = entry.splitlines()
        if any(line.startswith("# Not a target:") for line in lines):
            continue
        heads = [line for line in lines if line and not line.startswith(("#", "\t")) and ":" in line]
        heads = [line for line in heads if not _ASSIGNMENT.match(line.split(":", 1)[1].lstrip(": ").strip() or "x")]
        if not heads:
            continue
        name, _, prerequisites = heads[-1].partition(":")
        name = name.strip()
        if not name or name.startswith(".") or "%" in name:
            continue
        recipe = tuple(line[1:] for line in lines if line.startswith("\t"))
        prereqs = tuple(p for p in prerequisites.lstrip(":").split() if p != "|")
        old = rules.get(name)  # a double-colon target appears once per rule
        rules[name] = MakeRule(name, (old.prerequisites if old else ()) + prereqs, (old.recipe if old else ()) + recipe)
    return rules


def _check_shell(text: str) -> None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _SHELL_SET.match(line):
            origin = lines[index - 1] if index else ""
            if line.startswith("SHELL") and origin == "# command line":
                continue
            raise MakeUntrusted(f"the makefile sets SHELL itself ({origin.lstrip('# ') or line.strip()}): "
                                f"make's recipes or $(shell) calls may have run; not trusted")


def printed_layers(rules: dict[str, MakeRule], target: str) -> list[str]:
    """Layers (``S1``…``S5``) a target's recipe prints, in order, prerequisites' recipes first (as make runs
    them). A print line naming more than one layer (a banner like ``S1→S5``) is skipped; repeats collapse."""
    seen: list[str] = []
    for line in _recipe_lines(rules, target, set()):
        if not _PRINT.match(line):
            continue
        layers = {f"S{n}" for n in _LAYER.findall(line)}
        if len(layers) == 1 and (not seen or seen[-1] != next(iter(layers))):
            seen.append(next(iter(layers)))
    return seen


def _recipe_lines(rules: dict[str, MakeRule], target: str, done: set[str]) -> Iterator[str]:
    if target in done or target not in rules:
        return
    done.add(target)
    for prerequisite in rules[target].prerequisites:
        yield from _recipe_lines(rules, prerequisite, done)
    joined = "\n".join(rules[target].recipe).replace("\\\n", " ")
    yield from joined.splitlines()


def repo_files(repo: Path, timeout_s: float = 20.0) -> tuple[list[str], str]:
    """Tracked and untracked-but-not-ignored files (``git ls-files``), else a walk; and which was used."""
    git = shutil.which("git")
    if git and (Path(repo) / ".git").exists():
        try:
            done = subprocess.run([git, "-c", "core.fsmonitor=false", "-C", str(repo), "ls-files", "-z", "--cached",
                                   "--others", "--exclude-standard"], capture_output=True, timeout=timeout_s,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
                                       "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}, check=False)
            if done.returncode == 0:
                return sorted({p for p in done.stdout.decode("utf-8", "replace").split("\0") if p}), "git ls-files"
        except subprocess.TimeoutExpired:
            pass
    found = []
    for root, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d != ".git"]
        found += [Path(root, n).relative_to(repo).as_posix() for n in names]
    return sorted(found), "walk"


def matching(files: list[str], patterns: list[str]) -> list[str]:
    """``matching(files, ["*.sops.yaml"])``: files whose name matches one of the patterns."""
    return [f for f in files if any(fnmatch(f.rsplit("/", 1)[-1], p) for p in patterns)]


@dataclass(frozen=True)
class SopsCheck:
    """Problems of one SOPS file: file-level ``problems``, key paths of ``plaintext`` leaves (never values)."""

    problems: tuple[str, ...] = ()
    plaintext: tuple[str, ...] = ()
    unverifiable: str = ""


def check_sops_file(path: Path) -> SopsCheck:
    """``check_sops_file(Path("helm/valkey-values.sops.yaml"))`` -> ``SopsCheck(plaintext=("auth.password",))``.

    The file is read as a YAML stream, as sops reads it (stores/yaml/store.go ``LoadEncryptedFile``
    decodes document after document): a multi-document file (``---`` between two Secrets) is one
    SOPS file whose every document carries its own ``sops:`` block (``EmitEncryptedFile`` writes the
    metadata into each document). A UTF-8 byte-order mark is dropped, as PyYAML drops it. Key paths
    of a document after the first are prefixed with ``[document N]``.

    A leaf must be an ``ENC[...]`` string unless sops' own rules (its shouldBeEncrypted) leave it
    plain: the file's unencrypted_suffix (default ``_unencrypted`` when no rule is set),
    encrypted_suffix, unencrypted_regex, encrypted_regex, checked against every key on the path.
    """
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError):
        return SopsCheck(problems=("cannot be read as UTF-8 text",))
    except yaml.YAMLError as exc:  # the message could quote the file: keep only the position
        mark = getattr(exc, "problem_mark", None)
        return SopsCheck(problems=(f"not valid YAML{f' (line {mark.line + 1})' if mark else ''}",))
    if not documents:
        return SopsCheck(problems=("no top-level sops metadata: not SOPS-encrypted",))
    problems: list[str] = []
    plaintext: list[str] = []
    unverifiable = ""
    for number, data in enumerate(documents, 1):
        where = f"document {number}: " if len(documents) > 1 else ""
        prefix = f"[document {number}] " if number > 1 else ""
        if not isinstance(data, dict) or not isinstance(data.get("sops"), dict):
            problems.append(f"{where}no top-level sops metadata: not SOPS-encrypted")
            continue
        result = _check_sops_document(data, path)
        problems += [where + p for p in result.problems]
        plaintext += [prefix + k for k in result.plaintext]
        unverifiable = unverifiable or result.unverifiable
    return SopsCheck(problems=tuple(problems), plaintext=tuple(plaintext), unverifiable=unverifiable)


def _check_sops_document(data: dict[str, Any], path: Path) -> SopsCheck:
    """One YAML document with its own ``sops:`` block."""
    meta: dict[str, Any] = data["sops"]
    problems = [] if isinstance(meta.get("mac"), str) and ENC_VALUE.match(meta["mac"]) else ["sops.mac missing or not ENC[...]"]
    rules = {key: str(meta[key]) for key in SOPS_RULES if meta.get(key)}
    if len(rules) > 1:
        problems.append(f"sops metadata sets more than one of {', '.join(sorted(rules))} (sops refuses the file)")
    if any(key.endswith("comment_regex") for key in rules):
        return SopsCheck(problems=tuple(problems), unverifiable=f"{path}: comment-based sops rules cannot be checked")
    rules = rules or {"unencrypted_suffix": "_unencrypted"}
    try:
        compiled = {key: re.compile(value) for key, value in rules.items() if key.endswith("regex")}
    except re.error:
        return SopsCheck(problems=(*problems, "a sops regex rule does not compile"))
    plaintext = [dotted for dotted, keys, value in _leaves(data) if keys[0] != "sops"
                 and _should_be_encrypted(keys, rules, compiled) and not (isinstance(value, str) and ENC_VALUE.match(value))]
    return SopsCheck(problems=tuple(problems), plaintext=tuple(plaintext))


def _should_be_encrypted(keys: list[str], rules: dict[str, str], compiled: dict[str, re.Pattern]) -> bool:
    """sops' Tree.shouldBeEncrypted for key rules, in sops' order."""
    encrypted = True
    if "unencrypted_suffix" in rules and any(k.endswith(rules["unencrypted_suffix"]) for k in keys):
        encrypted = False
    if "encrypted_suffix" in rules:
        encrypted = any(k.endswith(rules["encrypted_suffix"]) for k in keys)
    if "unencrypted_regex" in compiled and any(compiled["unencrypted_regex"].search(k) for k in keys):
        encrypted = False
    if "encrypted_regex" in compiled:
        encrypted = any(compiled["encrypted_regex"].search(k) for k in keys)
    return encrypted


def _leaves(node: Any, dotted: str = "", keys: tuple[str, ...] = ()) -> Iterator[tuple[str, list[str], Any]]:
    """(dotted path, the keys on the path — list indexes are not keys in sops —, leaf value)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{dotted}.{key}" if dotted else str(key), (*keys, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{dotted}[{index}]", keys)
    else:
        yield dotted, list(keys), node


def markdown_sections(text: str) -> list[tuple[int, str, str]]:
    """(level, heading, body up to the next heading of the same or a higher level); ATX and setext headings."""
    lines, heads, fence = text.splitlines(), [], False
    for index, line in enumerate(lines):
        if re.match(r"^\s*(```|~~~)", line):
            fence = not fence
        elif not fence and (m := re.match(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)):
            heads.append((index, len(m[1]), m[2]))
        elif not fence and line.strip() and index + 1 < len(lines) and re.fullmatch(r"\s{0,3}(=+|-+)\s*", lines[index + 1]) \
                and not re.match(r"^\s*([-*+]|\d+[.)])\s", line):
            heads.append((index, 1 if "=" in lines[index + 1] else 2, line.strip()))
    sections = []
    for number, (index, level, title) in enumerate(heads):
        end = next((i for i, lv, _ in heads[number + 1:] if lv <= level), len(lines))
        sections.append((level, title, "\n".join(lines[index + 1:end])))
    return sections
