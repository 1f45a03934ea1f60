"""What ``classify`` and ``serve`` do on each signal.

A handler only records what was asked (and, to stop, asks the producer of flows to end: the meter
then writes its open flows); the flow path acts on it between two batches, so no handler ever runs
inside a verdict write or a log call.

=========  ==================================================  =======================================
signal     ``serve`` (the daemon)                              ``classify``
=========  ==================================================  =======================================
SIGTERM    stop: open flows judged, alerts flushed, exit 0     interrupted: exit 143
SIGINT     the same                                            interrupted: exit 130
SIGQUIT    the same                                            interrupted: exit 131
SIGHUP     reopen the verdict file (logrotate moved it)        interrupted (terminal gone): exit 129
SIGUSR1    log one status line (flows, detections, rows)       the same
=========  ==================================================  =======================================
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

#: What ``--help`` says (kept next to the table above).
HELP = {
    True: "Signals: SIGTERM/SIGINT/SIGQUIT stop (the meter writes every open flow, those are classified,\n"
          "alerts are flushed, exit 0); SIGHUP reopens the verdict file (after logrotate moved it; the\n"
          "EVE file is reopened by itself when moved); SIGUSR1 logs one status line.",
    False: "Signals: SIGTERM/SIGINT/SIGQUIT/SIGHUP interrupt: the flows metered so far are judged, their\n"
           "verdicts kept in VERDICTS.csv.partial, exit 128+signal with 'interrupted after N flows';\n"
           "SIGUSR1 logs one status line.",
}


class SignalPlan:
    """Installs the handlers for one run; :meth:`restore` puts the previous ones back."""

    def __init__(self, daemon: bool, stop: Callable[[], None]) -> None:
        self.daemon = daemon
        self._stop = stop
        #: the signal that stopped (serve) or interrupted (classify) the run
        self.stopped_by: signal.Signals | None = None
        self._said_stop = False
        self._reopen = False
        self._status = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle every signal of the table (main thread only)."""
        hup = self._on_stop if not self.daemon else self._on_reopen
        for sig, handler in [*((s, self._on_stop) for s in STOP_SIGNALS), (signal.SIGHUP, hup),
                             (signal.SIGUSR1, self._on_status)]:
            self._previous[sig] = signal.signal(sig, handler)

    def restore(self) -> None:
        """The handlers from before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = signal.Signals(signum)
        self._stop()

    def _on_reopen(self, _signum: int, _frame: FrameType | None) -> None:
        self._reopen = True

    def _on_status(self, _signum: int, _frame: FrameType | None) -> None:
        self._status = True

    @property
    def interrupted(self) -> bool:
        """``classify`` was stopped by a signal (its output is not the whole capture)."""
        return not self.daemon and self.stopped_by is not None

    def exit_status(self) -> int:
        """128 + the signal number: the shell's convention for a command a signal ended."""
        return 128 + int(self.stopped_by or 0)

    def pending(self) -> tuple[signal.Signals | None, bool, bool]:
        """(stop signal not yet announced, reopen asked, status asked); each is reported once."""
        stop = self.stopped_by if self.stopped_by is not None and not self._said_stop else None
        self._said_stop = self._said_stop or stop is not None
        reopen, status, self._reopen, self._status = self._reopen, self._status, False, False
        return stop, reopen, status
