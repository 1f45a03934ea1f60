"""Micro-batching of flow rows: classify when enough rows wait, or when the oldest waited long enough.

At light load a flow waits at most ``max_wait`` seconds for company, so its verdict comes
quickly; at heavy load batches fill to ``max_rows`` and the model's per-call overhead is paid
once per many flows.  No batch holds more than ``max_rows`` rows, even when one frame from the
meter is larger (it is cut), so ``max_rows`` bounds the memory and latency of one classification.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import pandas as pd


class Batcher:
    """Collects frames of flow rows and says when a batch is due."""

    def __init__(self, max_rows: int, max_wait: float, clock: Callable[[], float] = time.monotonic,
                 when_idle: bool = False) -> None:
        """``when_idle``: a batch is also due as soon as no more rows are waiting upstream (see
        :meth:`due`), so a lone flow at light load does not sit out ``max_wait``."""
        if max_rows < 1 or max_wait < 0:
            raise ValueError("batch size must be >= 1 and max wait >= 0")
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.when_idle = when_idle
        self._clock = clock
        self._frames: deque[pd.DataFrame] = deque()
        self._rows = 0
        self._oldest: float | None = None

    def __len__(self) -> int:
        return self._rows

    def add(self, frame: pd.DataFrame) -> None:
        """Queue the rows of ``frame`` (an empty frame is ignored)."""
        if len(frame) == 0:
            return
        if self._oldest is None:
            self._oldest = self._clock()
        self._frames.append(frame)
        self._rows += len(frame)

    def wait_time(self) -> float | None:
        """Seconds until the waiting rows are due (0 = now), or None when nothing waits."""
        if self._oldest is None:
            return None
        if self._rows >= self.max_rows:
            return 0.0
        return max(0.0, self._oldest + self.max_wait - self._clock())

    def due(self, upstream_idle: bool = False) -> bool:
        """True when a batch should be classified now: full, waited long enough, or (``when_idle``)
        nothing more is waiting upstream (at heavy load rows keep coming and batches fill up)."""
        wait = self.wait_time()
        return wait is not None and (wait <= 0 or (self.when_idle and upstream_idle))

    def take(self) -> pd.DataFrame | None:
        """The oldest waiting rows, at most ``max_rows`` of them, as one frame (None if nothing
        waits).  A frame larger than that is cut: the rest waits, still as old, so it is due too."""
        if not self._frames:
            return None
        taken: list[pd.DataFrame] = []
        rows = 0
        while self._frames and rows < self.max_rows:
            frame = self._frames.popleft()
            room = self.max_rows - rows
            if len(frame) > room:
                self._frames.appendleft(frame.iloc[room:])
                frame = frame.iloc[:room]
            taken.append(frame)
            rows += len(frame)
        self._rows -= rows
        if not self._frames:
            self._oldest = None
        batch = taken[0] if len(taken) == 1 else pd.concat(taken, ignore_index=True)
        return batch.reset_index(drop=True)
