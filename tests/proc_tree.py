"""The process tree of this machine as /proc shows it, for tests that check what a run left behind."""
from __future__ import annotations

from pathlib import Path


def descendants(root: int, *, zombies: bool = True) -> list[int]:
    """Every pid below ``root`` (children first found, then theirs), read from /proc/<pid>/stat's ppid.
    ``zombies=False`` leaves out the processes that ended and were not reaped yet (state Z): nothing to kill.
    A process that ends between the listing and the read of its stat is left out."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, IndexError, ValueError):
                continue
            if zombies or state != "Z":
                children.setdefault(int(ppid), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
