"""The flow path: flow rows -> micro-batches -> model -> verdicts -> (verdict log, alerts, metrics).

Rows arrive from a producer (the meter's stream, or a flow CSV) on a reader thread and are
queued; the calling thread batches them (:class:`serve.batcher.Batcher`) and classifies each
batch with the model in the :class:`ModelSlot`.  A new model version found by the slot's poll
thread is put in use between two batches, so every flow is judged exactly once, by one version.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from serve.batcher import Batcher
from serve.metrics import SensorMetrics
from serve.verdict import UNJUDGED
from serve.verdict_log import VerdictLog

log = logging.getLogger(__name__)


class Alerts(Protocol):
    """What the flow path needs from :class:`serve.alerts.AlertManager`."""

    def submit(self, verdicts: pd.DataFrame) -> int: ...


class BatchObserver(Protocol):
    """A detector that watches the flow stream beside the per-flow model.

    Host-level detectors (windows of flows per host: password guessing, slow and UDP scans,
    beaconing), a shadow challenger model or a drift monitor plug in here: each judged batch is
    handed over once, in order, as the typed meter rows and their verdicts (same length and
    order).  An observer must be quick or hand the work to its own thread.
    """

    def observe(self, flows: pd.DataFrame, verdicts: pd.DataFrame) -> None: ...


@dataclass
class Summary:
    """What a run of the flow path did."""

    flows: int = 0
    by_group: Counter[str] = field(default_factory=Counter)
    detections: int = 0
    batches: int = 0
    versions: list[str] = field(default_factory=list)  # model versions used, in order

    @property
    def unjudged(self) -> int:
        """Flows the model could not judge."""
        return self.by_group.get(UNJUDGED, 0)


class ModelSlot:
    """The model in use, and a background poll that finds a new version of its alias.

    ``poll`` (e.g. ``ModelSource.poll``) returns a new loaded model or None; the swap itself
    happens only in :meth:`current`, which the flow path calls between batches.
    """

    def __init__(self, model: Any, poll: Callable[[], Any] | None = None, poll_seconds: float = 0,
                 on_swap: Callable[[Any], None] | None = None) -> None:
        self.model = model
        self._poll = poll
        self._poll_seconds = poll_seconds
        self._on_swap = on_swap
        self._pending: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling (no-op without a poll function or with a zero interval)."""
        if self._poll is None or self._poll_seconds <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="model-poll", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                new = self._poll()  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - a failed poll must never stop the sensor
                log.warning("model poll failed: %s", (str(exc) or type(exc).__name__).splitlines()[0])
                continue
            if new is None:
                continue
            if new.profile != self.model.profile:
                log.error("model %s version %s expects flow profile %s but the meter runs %s: "
                          "not swapping (restart the sensor to use it)", new.name, new.version,
                          new.profile, self.model.profile)
                continue
            log.info("model %s version %s found; swapping in between batches", new.name, new.version)
            with self._lock:
                self._pending = new

    def current(self) -> Any:
        """The model to classify the next batch with (a pending new version is swapped in now)."""
        with self._lock:
            new, self._pending = self._pending, None
        if new is not None:
            old, self.model = self.model, new
            log.info("model swapped: version %s -> %s", old.version, new.version)
            if self._on_swap:
                self._on_swap(new)
        return self.model

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


#: Marks the end of the producer's rows in the queue.
_END = object()


class FlowPath:
    """Classifies batches of flow rows and hands the verdicts to the log, the alerts and the metrics."""

    def __init__(self, slot: ModelSlot, verdicts: Callable[[Any, pd.DataFrame], pd.DataFrame],
                 batcher: Batcher, alerts: Alerts | None = None, verdict_log: VerdictLog | None = None,
                 metrics: SensorMetrics | None = None, observers: Iterable[BatchObserver] = (),
                 between_batches: Callable[[], None] | None = None) -> None:
        """``between_batches`` runs on the calling thread at least once a second, never during a
        batch: what a signal asked for (reopen the verdict file, log the status) is done there."""
        self.slot = slot
        self._verdicts = verdicts
        self.batcher = batcher
        self.alerts = alerts
        self.verdict_log = verdict_log
        self.metrics = metrics
        self.observers = list(observers)
        self.between_batches = between_batches
        self.summary = Summary()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """End :meth:`run` early (safe from a signal handler): rows already batched are judged, rows
        still queued are not (an interrupted flow CSV; a meter's rows are judged: stop the meter)."""
        self._cancelled.set()

    def classify(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Judge one batch with the current model; log, alert and count the verdicts."""
        started = time.perf_counter()
        model = self.slot.current()
        if not self.summary.versions or self.summary.versions[-1] != model.version:
            self.summary.versions.append(model.version)
        result = self._verdicts(model, batch)
        detections = self.alerts.submit(result) if self.alerts is not None else 0
        if self.verdict_log is not None:
            self.verdict_log.write(result)
        for observer in self.observers:
            observer.observe(batch, result)
        groups = result["predicted"]
        s = self.summary
        s.flows += len(result)
        s.by_group.update(groups.value_counts().to_dict())
        s.detections += detections
        s.batches += 1
        if self.metrics is not None:
            self.metrics.observe_batch(groups, time.perf_counter() - started, detections, UNJUDGED)
        return result

    def _between_batches(self) -> None:
        if self.between_batches is not None:
            self.between_batches()

    def run(self, frames: Iterable[pd.DataFrame], queue_size: int = 64) -> Summary:
        """Read ``frames`` on a thread and classify them in micro-batches until they end.

        An exception raised by the producer is re-raised here after the rows before it are judged.
        """
        q: queue.Queue = queue.Queue(maxsize=queue_size)

        def produce() -> None:
            try:
                for frame in frames:
                    q.put(frame)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                q.put(exc)
            q.put(_END)

        reader = threading.Thread(target=produce, name="flow-reader", daemon=True)
        reader.start()
        error: BaseException | None = None
        while True:
            wait = self.batcher.wait_time()
            try:  # wake at least every second so signal handlers run promptly
                item = q.get(timeout=1.0 if wait is None else min(wait, 1.0))
            except queue.Empty:
                item = None
                if not len(self.batcher):
                    self.slot.current()  # idle: take a new model version now, not at the next flow
            if item is _END:
                break
            if isinstance(item, BaseException):
                error = item
                continue
            if item is not None and not self._cancelled.is_set():
                self.batcher.add(item)
            while self.batcher.due(upstream_idle=q.empty()):  # a big frame makes several batches
                self.classify(self.batcher.take())  # type: ignore[arg-type]
            self._between_batches()
        self._between_batches()  # a stop signal that ended the stream is told too
        while (rest := self.batcher.take()) is not None:
            self.classify(rest)
        reader.join(timeout=5)
        if error is not None:
            raise error
        return self.summary
