"""What a repo checkout holds: its files (``git ls-files``, else a walk) and its markdown sections.

``repo_files(Path("railiance-apps"))`` -> (sorted relative paths, ``"git ls-files"`` or ``"walk"``);
``matching(files, ["*.sops.yaml"])``; ``markdown_sections(text)`` -> (level, heading, body) for
CommonMark's two heading forms, ATX (``## x``) and setext (underlined), outside fenced code. Make's
view of a Makefile: ``resources.makefiles``; SOPS files: ``resources.sops_files``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from fnmatch import fnmatch
from pathlib import Path


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
