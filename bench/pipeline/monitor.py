"""Sample the resident memory of a process tree, attributing it to the pipeline stage running.

A background thread walks the tree every ``interval`` seconds (psutil).  A process whose command
line runs ``pipeline.<stage>`` is the root of that stage; it and all its descendants (joblib
workers, ...) count for the stage.  Everything else (dvc itself, the shell) counts as overhead.
RSS is summed over processes alive at one instant: pages shared after fork() are counted once per
process, so the sum is an upper bound of the memory really used.  Spikes shorter than the interval
can be missed; the caller also reads wait4()'s ru_maxrss (largest single process) as a check.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import psutil

_STAGE = re.compile(r"(?:-m\s+|/)pipeline[./](\w+)")


@dataclass
class StageMemory:
    """What was seen of one stage's processes."""

    peak_rss: int = 0  # bytes, sum over the stage's process tree at one sample
    peak_single: int = 0  # bytes, the largest single process
    first_seen: float | None = None  # time.monotonic()
    last_seen: float | None = None
    max_procs: int = 0


@dataclass
class TreeMonitor:
    """Polls the tree rooted at ``pid`` until :meth:`stop`."""

    pid: int
    interval: float = 0.2
    peak_total: int = 0  # bytes, sum over the whole tree at one sample
    peak_total_at: float | None = None
    samples: int = 0
    stages: dict[str, StageMemory] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeMonitor:
        """Start sampling in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="rss-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            self.sample(root)
            self._stop.wait(self.interval)

    def sample(self, root: psutil.Process) -> None:
        """Take one sample of the tree under ``root``."""
        now = time.monotonic()
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss: dict[int, int] = {}
        stage_of: dict[int, str] = {}
        for p in procs:
            try:
                rss[p.pid] = p.memory_info().rss
                m = _STAGE.search(" ".join(p.cmdline()))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if m and p.pid not in stage_of:
                stage_of[p.pid] = m.group(1)
                try:
                    for child in p.children(recursive=True):
                        stage_of.setdefault(child.pid, m.group(1))
                except psutil.NoSuchProcess:
                    pass
        total = sum(rss.values())
        self.samples += 1
        if total > self.peak_total:
            self.peak_total, self.peak_total_at = total, now
        per_stage: dict[str, list[int]] = {}
        for pid, name in stage_of.items():
            if pid in rss:
                per_stage.setdefault(name, []).append(rss[pid])
        for name, values in per_stage.items():
            mem = self.stages.setdefault(name, StageMemory())
            mem.peak_rss = max(mem.peak_rss, sum(values))
            mem.peak_single = max(mem.peak_single, max(values))
            mem.max_procs = max(mem.max_procs, len(values))
            mem.first_seen = now if mem.first_seen is None else mem.first_seen
            mem.last_seen = now
