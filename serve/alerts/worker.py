"""One thread per sink: a bounded queue, a rate limit, retries with backoff, and counters.

``offer()`` never blocks: when the queue is full the alert is dropped, counted and warned about
(once a minute), because a stuck SIEM or mail server must never slow classification.  The thread
delivers alerts in order; over the rate limit it folds them into one :class:`Summary`, sent when
the limit allows again (or on close), so a flood yields a handful of messages that still account
for every detection.  A sink without a rate limit whose ``send_many`` is all-or-nothing (the EVE
file) gets everything that queued up at once, up to _BATCH_MAX alerts per call.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

from serve.alerts.alert import Alert, Summary
from serve.alerts.settings import RateLimit, RetryPolicy
from serve.alerts.sink import Sink

log = logging.getLogger(__name__)

#: Counter names every sink reports (``AlertManager.stats()``).
COUNTERS = ("sent", "failed", "retried", "dropped", "summarized")

_IDLE_POLL_S = 0.2  # how often an idle worker looks at its summary and at close()
_BATCH_MAX = 256  # alerts handed to a sink with atomic batches in one call (what queued up)
_DROP_WARN_EVERY_S = 60.0  # while a sink drops alerts, one warning a minute


class RateLimiter:
    """A sliding window: at most ``limit.max`` sends in any ``limit.per_s`` seconds."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._sent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self._limit.per_s:
            self._sent.popleft()

    def allow(self) -> bool:
        """Whether one more send fits now; if so it is counted."""
        now = self._clock()
        self._expire(now)
        if len(self._sent) >= self._limit.max:
            return False
        self._sent.append(now)
        return True


class SinkWorker:
    """Delivers one sink's alerts on its own daemon thread."""

    def __init__(self, sink: Sink, queue_size: int, retry: RetryPolicy, rate_limit: RateLimit | None) -> None:
        self.sink = sink
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=queue_size)
        self._retry = retry
        self._limiter = RateLimiter(rate_limit) if rate_limit else None
        self._summary = Summary()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._counts_lock = threading.Lock()
        self._closing = threading.Event()
        self._deadline: float | None = None  # set by close(): retries stop when it would pass
        self._drop_warned: float | None = None  # when the last "queue full" warning was logged
        self._thread = threading.Thread(target=self._run, name=f"alert-sink-{sink.name}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.sink.name

    def _count(self, counter: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[counter] += n

    def stats(self) -> dict[str, int]:
        """A snapshot of this sink's counters."""
        with self._counts_lock:
            return dict(self._counts)

    def offer(self, alert: Alert) -> bool:
        """Queue ``alert`` without waiting; a full queue (or a closed sink) drops it and counts it."""
        if not self._closing.is_set():
            try:
                self._queue.put_nowait(alert)
                return True
            except queue.Full:
                pass
        self._count("dropped")
        now = time.monotonic()
        if self._drop_warned is None or now - self._drop_warned >= _DROP_WARN_EVERY_S:
            self._drop_warned = now
            log.warning("alert sink %s cannot keep up: its queue is full, alerts are dropped (%d so far; "
                        "netsentry_alerts_total{outcome=\"dropped\"})", self.name, self.stats()["dropped"])
        return False

    def close(self, timeout: float) -> None:
        """Deliver what is queued (and any summary), then stop; give up after ``timeout`` seconds.

        Alerts still queued when the time is up are counted as dropped; the daemon thread is left
        behind (a transport stuck in a blocking call cannot be interrupted from outside).
        """
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            left = self._drain_queue()
            self._count("dropped", left)
            log.warning("alert sink %s did not finish within %.1f s; %d queued alert(s) dropped",
                        self.name, timeout, left)
            return
        self._guarded(self.sink.close)  # a sink that cannot close is logged; the run goes on

    def _drain_queue(self) -> int:
        left = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return left
            left += 1

    def _run(self) -> None:
        while True:
            try:
                alert = self._queue.get(timeout=_IDLE_POLL_S)
            except queue.Empty:
                if self._closing.is_set():
                    break
                self._guarded(self._maybe_send_summary)
                continue
            if self.sink.atomic_batches and self._limiter is None:
                batch = self._take_more([alert])
                self._guarded(lambda b=batch: self._deliver(lambda: self.sink.send_many(b), len(b)))
            else:
                self._guarded(lambda alert=alert: self._handle(alert))
        if self._summary.alerts:  # the last word on close, whatever the rate limit says
            self._guarded(self._send_summary)

    def _take_more(self, batch: list[Alert]) -> list[Alert]:
        """``batch`` plus whatever else is queued now, up to _BATCH_MAX alerts (never waits)."""
        while len(batch) < _BATCH_MAX:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step of the loop; a bug in it is logged, never the end of the sink's thread."""
        try:
            step()
        except Exception:
            log.exception("alert sink %s: unexpected error", self.name)

    def _handle(self, alert: Alert) -> None:
        if self._summary.alerts and self._limiter is not None:
            self._maybe_send_summary()
        if self._limiter is None or (not self._summary.alerts and self._limiter.allow()):
            self._deliver(lambda: self.sink.send(alert))
        else:
            self._summary.add(alert)
            self._count("summarized")

    def _maybe_send_summary(self) -> None:
        if self._summary.alerts and (self._limiter is None or self._limiter.allow()):
            self._send_summary()

    def _send_summary(self) -> None:
        summary, self._summary = self._summary, Summary()
        self._deliver(lambda: self.sink.send_summary(summary))

    def _deliver(self, attempt: Callable[[], None], alerts: int = 1) -> None:
        """Run ``attempt`` (delivering ``alerts`` alerts) until it succeeds or the retry policy (or
        close()'s deadline) is spent; the counters move by ``alerts``."""
        delay = self._retry.backoff_s
        for tries in range(1, self._retry.attempts + 1):
            try:
                attempt()
            except Exception as exc:  # any transport error: the sink must not kill its thread
                last = tries == self._retry.attempts or not self._fits(delay)
                log.warning("alert sink %s (%s): %s%s", self.name, self.sink.describe(),
                            _one_line(exc), "; giving up" if last else f"; retrying in {delay:.1f} s")
                if last or not self._backoff(delay):
                    self._count("failed", alerts)
                    return
                self._count("retried", alerts)
                delay = min(delay * 2, self._retry.max_backoff_s)
                continue
            self._count("sent", alerts)
            return

    def _fits(self, delay: float) -> bool:
        """Whether a wait of ``delay`` seconds ends before close()'s deadline (if close() was called)."""
        return self._deadline is None or time.monotonic() + delay < self._deadline

    def _backoff(self, delay: float) -> bool:
        """Wait ``delay`` seconds; False (at once) when close() is called meanwhile and the wait
        would outlast its deadline."""
        end = time.monotonic() + delay
        if not self._closing.is_set():
            self._closing.wait(delay)  # close() wakes us up to look at its deadline
        if not self._fits(end - time.monotonic()):
            log.warning("alert sink %s: shutting down; no time left to retry", self.name)
            return False
        time.sleep(max(0.0, end - time.monotonic()))
        return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
