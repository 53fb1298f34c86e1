"""The whole run's deadline: past it the run is interrupted and reported as partial.

Every probe has its own bound (``--command-timeout`` per host, ``--api-timeout`` per request, a
page budget per LIST); this is the backstop for everything else. When it expires, SIGINT is sent
to the suite's own process, exactly as a Ctrl-C: pytest stops, the partial run's findings are
reported and recorded, and the run says which deadline passed. A real signal (not
``_thread.interrupt_main``) is used because it also interrupts a blocking wait.
Example: ``deadline = RunDeadline(385.0); deadline.arm(); ...; deadline.disarm()``.
"""
from __future__ import annotations

import os
import signal
import threading


class RunDeadline:
    """``seconds`` of wall time from ``arm()``; ``expired`` once it fired."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.expired = False
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self.expired = True
        os.kill(os.getpid(), signal.SIGINT)
