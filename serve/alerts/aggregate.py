"""From verdict rows to aggregated alerts.

:func:`select_detections` picks the detections of one verdict batch (an attack group with
probability at or over the group's threshold) with one vectorised mask: a batch is mostly benign,
so nothing is done per row.  :func:`batch_alerts` folds those detections per (source,
destination, group): one vectorised pass over the times, then a plain dict over the few
detections (pandas' groupby costs ~15 ms per call however few rows it groups).
:class:`Aggregator` keeps those per-batch aggregates open across batches for the aggregation
window and hands each one out once when its window has passed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from serve.alerts.alert import Alert, flow_id
from serve.alerts.settings import AlertSettings
from serve.verdict import BENIGN, UNJUDGED

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_INTS = ("Source Port", "Destination Port", "Protocol", "Total Fwd Packets", "Total Backward Packets",
         "Total Length of Fwd Packets", "Total Length of Bwd Packets")
_STRS = ("Flow ID", "Timestamp", "model_name", "model_version")


#: The µs since the epoch of the first and last moments a datetime can hold (years 1 and 9999).
_MIN_US = -62_135_596_800_000_000
_MAX_US = 253_402_300_799_999_999


def _start_us(column: pd.Series) -> tuple[np.ndarray, int]:
    """The meter's flow start timestamps (UTC, e.g. ``2017-07-06 13:40:07.419016``) as int64 µs since
    the epoch, and how many were unreadable; an unreadable one is "now", not nothing."""
    start = pd.to_datetime(column, format=_TIME_FORMAT, errors="coerce", utc=True)
    unreadable = int(start.isna().sum())
    start = start.fillna(pd.Timestamp.now(tz=UTC))
    us = start.dt.as_unit("us").to_numpy(dtype="datetime64[us]").astype(np.int64)
    return np.clip(us, _MIN_US, _MAX_US), unreadable


def _end_us(start: np.ndarray, duration: pd.Series) -> tuple[np.ndarray, int]:
    """Flow ends (µs) from starts and durations (µs), and how many were clamped to the last moment
    a datetime holds: a crafted duration (int64 max) must not overflow or leave year 9999."""
    if pd.api.types.is_integer_dtype(duration.dtype):
        span = duration.to_numpy(dtype=np.int64)
    else:  # a float or missing duration: NaN is no duration, +inf the longest one
        raw = pd.to_numeric(duration, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        span = np.nan_to_num(np.clip(raw, 0, _MAX_US - _MIN_US), nan=0.0).astype(np.int64)
    span = np.clip(span, 0, None)
    room = _MAX_US - start  # never negative (starts are clamped), never overflows
    clamped = span > room
    return start + np.minimum(span, room), int(clamped.sum())


def _datetimes(us: np.ndarray) -> list[datetime]:
    """µs since the epoch as UTC-aware datetimes, in one vectorised conversion (µs exact)."""
    return pd.to_datetime(us, unit="us", utc=True).to_pydatetime().tolist()


def _thresholds(groups: pd.Index, settings: AlertSettings) -> np.ndarray:
    """Per distinct group, the probability it needs to alert (never for BENIGN/UNJUDGED); the last
    entry is for a missing group (code -1), which gets the default threshold."""
    values = [np.inf if g in (BENIGN, UNJUDGED) else settings.threshold(g) for g in groups.tolist()]
    return np.asarray([*values, settings.default_threshold], dtype=np.float64)


def select_detections(verdicts: pd.DataFrame, settings: AlertSettings) -> pd.DataFrame:
    """The rows of ``verdicts`` that raise an alert: attack group, probability >= its threshold."""
    codes, groups = pd.factorize(verdicts["predicted"])  # a handful of groups: thresholds per group
    probability = verdicts["probability"].to_numpy(dtype=np.float64, na_value=np.nan)
    # NaN probability compares False: a verdict without a probability never alerts
    rows = np.flatnonzero(probability >= _thresholds(groups, settings)[codes])
    return verdicts.iloc[rows] if len(rows) else verdicts.iloc[:0]


def batch_alerts(detections: pd.DataFrame, settings: AlertSettings) -> tuple[list[Alert], int]:
    """One :class:`Alert` per (source, destination, group) among ``detections``, and how many
    detections had a bad time (an unreadable start, taken as now; an end past year 9999, clamped).

    Its identifiers and flow statistics are those of its earliest-starting flow (ties: the first
    in the batch); count, highest probability and last flow end cover every detection.
    """
    if detections.empty:
        return [], 0
    start, unreadable = _start_us(detections["Timestamp"])
    end, clamped = _end_us(start, detections["Flow Duration"])
    order = np.argsort(start, kind="stable").tolist()
    src = detections["Source IP"].tolist()
    dst = detections["Destination IP"].tolist()
    group = detections["predicted"].tolist()
    probability = detections["probability"].to_numpy(dtype=np.float64).tolist()
    ends = end.tolist()
    # key -> [first row, count, last end, highest probability]; sorted by start, so the first row
    # seen is the earliest flow and insertion order is the order of the aggregates' first flows
    folded: dict[tuple[str, str, str], list] = {}
    for i in order:
        key = (src[i], dst[i], group[i])
        agg = folded.get(key)
        if agg is None:
            folded[key] = [i, 1, ends[i], probability[i]]
        else:
            agg[1] += 1
            agg[2] = max(agg[2], ends[i])
            agg[3] = max(agg[3], probability[i])
    firsts = np.asarray([agg[0] for agg in folded.values()], dtype=np.intp)
    col = {c: detections[c].to_numpy(dtype=np.int64)[firsts].tolist() for c in _INTS}
    col.update({c: detections[c].to_numpy(dtype=object)[firsts].tolist() for c in _STRS})
    first_starts = _datetimes(start[firsts])
    first_ends = _datetimes(end[firsts])
    lasts = _datetimes(np.asarray([agg[2] for agg in folded.values()], dtype=np.int64))
    rules = {g: settings.rule(str(g)) for g in set(group)}
    alerts = []
    for j, ((s, d, g), (_, count, _, best)) in enumerate(folded.items()):
        first_start = first_starts[j]
        alerts.append(
            Alert(
                group=str(g),
                src_ip=str(s),
                dest_ip=str(d),
                src_port=col["Source Port"][j],
                dest_port=col["Destination Port"][j],
                protocol=col["Protocol"][j],
                flow_id=flow_id(str(col["Flow ID"][j]), str(col["Timestamp"][j])),
                flow_start=first_start,
                flow_end=first_ends[j],
                pkts_toserver=col["Total Fwd Packets"][j],
                pkts_toclient=col["Total Backward Packets"][j],
                bytes_toserver=col["Total Length of Fwd Packets"][j],
                bytes_toclient=col["Total Length of Bwd Packets"][j],
                probability=float(best),
                model_name=str(col["model_name"][j]),
                model_version=str(col["model_version"][j]),
                rule=rules[g],
                count=count,
                first_seen=first_start,
                last_seen=lasts[j],
            )
        )
    return alerts, unreadable + clamped


class Aggregator:
    """Open aggregates keyed by (source, destination, group), each emitted once its window passed.

    The window is measured on the sensor's clock from the aggregate's first detection (flow
    times can be years old when a capture is replayed).  ``max_open`` bounds memory: past it, the
    oldest aggregate is emitted early.  Not thread-safe; :class:`AlertManager` holds the lock.
    """

    def __init__(self, window_s: float, max_open: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._max_open = max_open
        self._clock = clock
        # insertion order = age; an OrderedDict, because taking from the front of a plain dict
        # skips every slot deleted before it (quadratic once a flood keeps max_open aggregates open)
        self._open: OrderedDict[tuple[str, str, str], tuple[float, Alert]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, alerts: list[Alert]) -> list[Alert]:
        """Fold ``alerts`` into the open aggregates; return any that must leave now."""
        now = self._clock()
        for alert in alerts:
            key = (alert.src_ip, alert.dest_ip, alert.group)
            opened = self._open.get(key)
            if opened is None:
                self._open[key] = (now, alert)
            else:
                opened[1].merge(alert)
        ready = self.due(now)
        while len(self._open) > self._max_open:
            ready.append(self._open.popitem(last=False)[1][1])
        return ready

    def due(self, now: float | None = None) -> list[Alert]:
        """Remove and return the aggregates whose window has passed."""
        now = self._clock() if now is None else now
        ready = []
        while self._open:  # oldest first: stop at the first one still in its window
            opened, alert = self._open[next(iter(self._open))]
            if now - opened < self._window_s:
                break  # insertion order: every later aggregate opened later still
            ready.append(self._open.popitem(last=False)[1][1])
        return ready

    def drain(self) -> list[Alert]:
        """Remove and return every open aggregate."""
        ready = [alert for _, alert in self._open.values()]
        self._open.clear()
        return ready
