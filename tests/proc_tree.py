"""The process tree of this machine as /proc shows it, for tests that check what a run left behind."""
from __future__ import annotations

from pathlib import Path


def descendants(root: int) -> list[int]:
    """Every live pid below ``root`` (children first found, then theirs), read from /proc/<pid>/stat's ppid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
