"""From verdict rows to aggregated alerts.

:func:`batch_alerts` picks the detections of one verdict batch (an attack group with probability
at or over the group's threshold) and folds them per (source, destination, group) with pandas, so
a batch of a million flows costs one vectorised pass, not a Python loop per flow.
:class:`Aggregator` keeps those per-batch aggregates open across batches for the aggregation
window and hands each one out once when its window has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC

import numpy as np
import pandas as pd

from serve.alerts.alert import Alert, flow_id
from serve.alerts.settings import AlertSettings
from serve.verdict import BENIGN, UNJUDGED

_KEY = ["Source IP", "Destination IP", "predicted"]
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_COPIED = ("Source Port", "Destination Port", "Protocol", "Flow ID", "Timestamp", "Total Fwd Packets",
           "Total Backward Packets", "Total Length of Fwd Packets", "Total Length of Bwd Packets",
           "model_name", "model_version", "_count", "_probability")


def _times(column: pd.Series) -> pd.Series:
    """The meter's flow start timestamps (UTC, e.g. ``2017-07-06 13:40:07.419016``) as datetimes."""
    return pd.to_datetime(column, format=_TIME_FORMAT, errors="coerce", utc=True)


def select_detections(verdicts: pd.DataFrame, settings: AlertSettings) -> pd.DataFrame:
    """The rows of ``verdicts`` that raise an alert: attack group, probability >= its threshold."""
    predicted = verdicts["predicted"].astype(object)
    attack = ~predicted.isin((BENIGN, UNJUDGED)).to_numpy()
    if not attack.any():
        return verdicts.iloc[0:0]
    thresholds = predicted.map(settings.thresholds).fillna(settings.default_threshold)
    probability = verdicts["probability"].to_numpy(dtype=float, na_value=np.nan)
    # NaN probability compares False: a verdict without a probability never alerts
    return verdicts[attack & (probability >= thresholds.to_numpy(dtype=float))]


def batch_alerts(detections: pd.DataFrame, settings: AlertSettings) -> list[Alert]:
    """One :class:`Alert` per (source, destination, group) among ``detections``."""
    if detections.empty:
        return []
    start = _times(detections["Timestamp"])
    start = start.fillna(pd.Timestamp.now(tz=UTC))  # an unreadable timestamp: say "now", not nothing
    duration = pd.to_timedelta(detections["Flow Duration"].clip(lower=0), unit="us")
    frame = detections.assign(_start=start, _end=start + duration).sort_values("_start", kind="stable")
    grouped = frame.groupby(_KEY, sort=False, dropna=False)
    firsts = grouped.head(1).set_index(_KEY)
    folded = grouped.agg(
        _count=("predicted", "size"),
        _last=("_end", "max"),
        _probability=("probability", "max"),
    )
    rows = firsts.join(folded)
    # column lists, not iterrows(): a flood can make tens of thousands of aggregates per batch
    keys = rows.index.tolist()
    col = {c: rows[c].tolist() for c in _COPIED}
    # rows are sorted by start, so the first flow's start is also the aggregate's first seen
    times = {c: list(rows[c].dt.to_pydatetime()) for c in ("_start", "_end", "_last")}
    rules = {group: settings.rule(str(group)) for group in rows.index.get_level_values(2).unique()}
    alerts = []
    for i, (src, dst, group) in enumerate(keys):
        alerts.append(
            Alert(
                group=str(group),
                src_ip=str(src),
                dest_ip=str(dst),
                src_port=int(col["Source Port"][i]),
                dest_port=int(col["Destination Port"][i]),
                protocol=int(col["Protocol"][i]),
                flow_id=flow_id(str(col["Flow ID"][i]), str(col["Timestamp"][i])),
                flow_start=times["_start"][i],
                flow_end=times["_end"][i],
                pkts_toserver=int(col["Total Fwd Packets"][i]),
                pkts_toclient=int(col["Total Backward Packets"][i]),
                bytes_toserver=int(col["Total Length of Fwd Packets"][i]),
                bytes_toclient=int(col["Total Length of Bwd Packets"][i]),
                probability=float(col["_probability"][i]),
                model_name=str(col["model_name"][i]),
                model_version=str(col["model_version"][i]),
                rule=rules[group],
                count=int(col["_count"][i]),
                first_seen=times["_start"][i],
                last_seen=times["_last"][i],
            )
        )
    return alerts


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
        self._open: dict[tuple[str, str, str], tuple[float, Alert]] = {}  # insertion order = age

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
            ready.append(self._open.pop(next(iter(self._open)))[1])
        return ready

    def due(self, now: float | None = None) -> list[Alert]:
        """Remove and return the aggregates whose window has passed."""
        now = self._clock() if now is None else now
        ready = []
        for key, (opened, alert) in list(self._open.items()):
            if now - opened < self._window_s:
                break  # insertion order: every later aggregate opened later still
            ready.append(alert)
            del self._open[key]
        return ready

    def drain(self) -> list[Alert]:
        """Remove and return every open aggregate."""
        ready = [alert for _, alert in self._open.values()]
        self._open.clear()
        return ready
