"""No garbage collection while pytest and the suite load, and what they loaded kept out of later scans.

Start-up creates ~60,000 long-lived objects (modules, classes, the catalog, the collected items) and
almost no garbage, yet CPython's collector runs ~100 times over them, and pytest collects once more at
unconfigure (its unraisable-exception check). ``begin()`` (plugin load) pauses the collector;
``start_up_done(freeze=True)`` (the collection finished, scenarios selected) moves every object alive then
to the permanent generation (``gc.freeze``, CPython's own tool for this) and resumes collecting, so later
collections scan only what the run creates. ``freeze=False`` (the project's own tests, a run that ended
early) only resumes. The start-up garbage that is frozen with the rest (~2,000 objects) lives until the
process exits. Measured effect: docs/architecture.md.
"""
from __future__ import annotations

import gc

_paused = False


def begin() -> None:
    """Pause the collector if it runs (once per process; a no-op when something else turned it off)."""
    global _paused
    if gc.isenabled() and not _paused:
        gc.disable()
        _paused = True


def start_up_done(*, freeze: bool) -> None:
    """Resume the collector paused by ``begin()``; ``freeze``: what is alive now is never scanned again."""
    global _paused
    if not _paused:
        return
    _paused = False
    if freeze:
        gc.freeze()
    gc.enable()
