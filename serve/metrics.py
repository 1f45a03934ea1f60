"""The sensor's Prometheus metrics (``prometheus_client``), on their own registry.

Counted by the flow path: flows, verdicts by group, unjudged flows, batch latency.  Read at
scrape time from their owners: the meter's statistics (kernel drops, skipped packets, evicted
flows, restarts), the verdict rows not written, the alert sinks' counters
(``AlertManager.stats()``) and the flow rate.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Histogram, Info, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

#: Batch latency buckets (seconds): sub-millisecond to a few seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class FlowRate:
    """Flows per second over a sliding window (what a dashboard shows without PromQL)."""

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        """Record ``count`` flows now."""
        with self._lock:
            self._events.append((self._clock(), count))

    def rate(self) -> float:
        """Flows per second over the last ``window`` seconds."""
        now = self._clock()
        with self._lock:
            while self._events and self._events[0][0] < now - self.window:
                self._events.popleft()
            return sum(n for _, n in self._events) / self.window


class _Polled(Collector):
    """Metrics read from their owners at scrape time."""

    def __init__(self, metrics: SensorMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield GaugeMetricFamily("netsentry_flows_per_second", "Flows classified per second (10 s window)",
                                value=self.m.rate.rate())
        meter = self.m.meter_stats() if self.m.meter_stats else {}
        for key, help_text in (
            ("kernel_drops", "Packets the kernel dropped before the meter read them"),
            ("skipped_total", "Packets the meter skipped (not IP, truncated, ...)"),
            ("flows_evicted", "Flows the meter ended early because its table was full"),
            ("packets", "Packets the meter read"),
        ):
            yield CounterMetricFamily(f"netsentry_meter_{key.removesuffix('_total')}", help_text,
                                      value=float(meter.get(key, 0)))
        unwritten = self.m.verdicts_unwritten() if self.m.verdicts_unwritten else 0
        yield CounterMetricFamily("netsentry_verdict_rows_unwritten",
                                  "Verdict rows judged but not written to the verdict file (full disk)",
                                  value=float(unwritten))
        yield CounterMetricFamily("netsentry_meter_restarts", "Times the meter died and was restarted",
                                  value=float(self.m.meter_restarts() if self.m.meter_restarts else 0))
        alerts = CounterMetricFamily("netsentry_alerts", "Alerts by sink and outcome",
                                     labels=["sink", "outcome"])
        for sink, counts in (self.m.alert_stats() if self.m.alert_stats else {}).items():
            for outcome, value in counts.items():
                alerts.add_metric([sink, outcome], float(value))
        yield alerts


class SensorMetrics:
    """Every metric of one sensor, on a private registry (so tests can run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.flows = Counter("netsentry_flows", "Flows classified (one verdict each)", registry=r)
        self.verdicts = Counter("netsentry_verdicts", "Verdicts by predicted group", ["group"], registry=r)
        self.unjudged = Counter("netsentry_unjudged_flows", "Flows the model could not judge", registry=r)
        self.detections = Counter("netsentry_detections", "Flows taken as attack detections", registry=r)
        self.batch_seconds = Histogram("netsentry_batch_seconds", "Time to classify one batch",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.model = Info("netsentry_model", "The model in use", registry=r)
        self.rate = FlowRate()
        self.meter_stats: Callable[[], Mapping[str, int]] | None = None
        self.meter_restarts: Callable[[], int] | None = None
        self.alert_stats: Callable[[], Mapping[str, Mapping[str, int]]] | None = None
        self.verdicts_unwritten: Callable[[], int] | None = None
        r.register(_Polled(self))
        self._server = None

    def set_model(self, name: str, version: str, profile: str, runtime: str) -> None:
        """Publish which model classifies now."""
        self.model.info({"name": name, "version": version, "profile": profile, "runtime": runtime})

    def observe_batch(self, groups: pd.Series, seconds: float, detections: int, unjudged: str) -> None:
        """Count one classified batch: its verdicts by group and how long it took."""
        counts = groups.value_counts()
        for group, n in counts.items():
            self.verdicts.labels(group=str(group)).inc(int(n))
        self.flows.inc(len(groups))
        self.unjudged.inc(int(counts.get(unjudged, 0)))
        self.detections.inc(detections)
        self.batch_seconds.observe(seconds)
        self.rate.add(len(groups))

    def serve(self, port: int, address: str = "127.0.0.1") -> int:
        """Start the HTTP endpoint (``/metrics``) on ``port`` (> 0); returns the bound port."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        self._server = server
        return server.server_address[1]

    def close(self) -> None:
        """Stop the HTTP endpoint."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
