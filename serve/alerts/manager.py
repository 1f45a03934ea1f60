"""The sensor's alerting: verdict batches in, aggregated alerts out to every enabled sink.

``submit()`` runs on the flow path, so it only selects and folds detections (vectorised) and
hands finished aggregates to each sink's queue without waiting; a small timer thread emits
aggregates whose window has passed even when no batch arrives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from serve.alerts.aggregate import Aggregator, batch_alerts, select_detections
from serve.alerts.alert import Alert
from serve.alerts.settings import AlertConfigError, AlertSettings, SinkSettings, parse_settings
from serve.alerts.sink import Sink
from serve.alerts.sinks import SINK_TYPES
from serve.alerts.worker import SinkWorker

log = logging.getLogger(__name__)


class AlertManager:
    """Turns verdict frames (:data:`serve.verdict.VERDICT_COLUMNS`) into alerts on every sink."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        """Build from the ``serve.alerts`` config; a bad config raises :class:`AlertConfigError`."""
        self.settings: AlertSettings = parse_settings(cfg, set(SINK_TYPES))
        # build every sink before starting any thread: a bad option fails fast and cleanly
        sinks = [_build_sink(s) for s in self.settings.sinks]
        self._workers = [
            SinkWorker(sink, s.queue_size, s.retry, s.rate_limit)
            for sink, s in zip(sinks, self.settings.sinks, strict=True)
        ]
        self._aggregator = Aggregator(self.settings.window_s, self.settings.max_open)
        self._lock = threading.Lock()
        self._detections = 0
        self._bad_times = 0
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, name="alert-aggregation", daemon=True)
        self._timer.start()
        log.info("alerts: sinks %s, aggregation window %.0f s",
                 ", ".join(w.sink.describe() for w in self._workers) or "none", self.settings.window_s)

    def submit(self, verdicts: pd.DataFrame) -> int:
        """Take the detections of one verdict batch; return how many flows raised an alert.

        Never waits for a sink: aggregates that are due go to the sinks' queues (a full queue
        drops and counts).
        """
        detections = select_detections(verdicts, self.settings)
        if detections.empty:
            return 0
        alerts, bad_times = batch_alerts(detections, self.settings)
        if bad_times:
            self._count_bad_times(bad_times)
        with self._lock:
            self._detections += len(detections)
            ready = self._aggregator.add(alerts)
        self._dispatch(ready)
        return len(detections)

    def flush(self) -> None:
        """Emit every open aggregate now (shutdown, end of a capture)."""
        with self._lock:
            ready = self._aggregator.drain()
        self._dispatch(ready)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then let each sink deliver its queue and stop (waiting ``timeout`` s in all)."""
        self._stop.set()
        self._timer.join(timeout)
        self.flush()
        deadline = _Deadline(timeout)
        for worker in self._workers:
            worker.close(deadline.left())
        if self._bad_times:
            log.warning("alerts: %d detection(s) had an out-of-range flow time (clamped)", self._bad_times)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per sink name: messages sent, failed, retried, dropped (queue full), summarized."""
        return {worker.name: worker.stats() for worker in self._workers}

    @property
    def detections(self) -> int:
        """Flows that raised an alert since start."""
        return self._detections

    @property
    def bad_times(self) -> int:
        """Detections whose flow time was unreadable (taken as now) or ended past year 9999 (clamped)."""
        return self._bad_times

    def _count_bad_times(self, n: int) -> None:
        # a crafted capture can repeat them in every batch: said once, then counted
        if not self._bad_times:
            log.warning("alerts: a detection's flow time is out of range (unreadable, or past year "
                        "9999): alerted with its time clamped; such flows are counted")
        self._bad_times += n

    def _dispatch(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            for worker in self._workers:
                worker.offer(alert)

    def _tick(self) -> None:
        period = min(1.0, max(self.settings.window_s / 4, 0.05))
        while not self._stop.wait(period):
            with self._lock:
                ready = self._aggregator.due()
            self._dispatch(ready)


def _build_sink(settings: SinkSettings) -> Sink:
    """The configured sink; a bad option (``port: abc``) becomes one :class:`AlertConfigError` line."""
    try:
        return SINK_TYPES[settings.kind](settings.name, settings.options)
    except AlertConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise AlertConfigError(f"alerts config: sinks.{settings.name}: {exc}") from None


class _Deadline:
    """Seconds left of a budget shared by several waits."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())
