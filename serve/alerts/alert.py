"""The alert record every sink receives, and the summary a rate-limited sink sends instead.

An :class:`Alert` is one aggregate: every detection of one group from one source to one
destination within the aggregation window.  Its identifiers (ports, protocol, ``flow_id``) and
flow statistics are those of the FIRST flow of the aggregate, so that ``flow_id`` and ``flow``
describe one real flow, as in a Suricata alert; ``count``, ``first_seen`` and ``last_seen`` cover
the whole aggregate.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: IP protocol numbers -> the names Suricata writes in ``proto`` (others: the number as text).
_PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 132: "SCTP"}

# Suricata keeps flow_id within 51 bits because JSON readers (JavaScript) lose precision above
# 2**53; we do the same so that SIEMs read our ids exactly.
_FLOW_ID_MASK = (1 << 51) - 1


def proto_name(number: int) -> str:
    """The ``proto`` value Suricata writes for IP protocol ``number`` (e.g. 6 -> "TCP")."""
    return _PROTO_NAMES.get(int(number), str(int(number)))


def flow_id(meter_flow_id: str, start: str) -> int:
    """A stable, JSON-safe integer id for one flow: a hash of the meter's Flow ID and start time.

    The meter's ``Flow ID`` (address-address-port-port-protocol) repeats for every flow of the
    same 5-tuple, so the start time makes it unique; the hash makes it the integer EVE expects.
    """
    digest = hashlib.blake2b(f"{meter_flow_id}|{start}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _FLOW_ID_MASK


def eve_time(moment: datetime) -> str:
    """``moment`` in UTC as EVE writes timestamps: ``2017-07-06T13:40:07.419016+0000`` (no colon).

    Naive datetimes are taken as UTC (the meter's timestamps are).  Formatted by hand: strftime
    with ``%z`` was most of the cost of an EVE line; the text up to the second is kept per second
    (a flood's alerts share their seconds), the microseconds are added each time.
    """
    if moment.tzinfo is not None and moment.utcoffset():
        moment = moment.astimezone(UTC)
    m = moment
    return f"{_second_text(m.year, m.month, m.day, m.hour, m.minute, m.second)}{m.microsecond:06d}+0000"


@functools.lru_cache(maxsize=4096)
def _second_text(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.``, kept per second: a flood's alerts share their seconds."""
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}."


@dataclass(frozen=True)
class Rule:
    """The signature fields of a group's alerts (EVE ``alert{}``), as a Suricata rule would set."""

    signature_id: int
    signature: str
    category: str
    severity: int          # 1 (high) .. 3 (low), as in Suricata's classification.config
    rev: int = 1
    gid: int = 1
    action: str = "allowed"   # a sensor only watches; it never blocks


@dataclass
class Alert:
    """One aggregated alert: ``count`` detections of ``group`` from ``src_ip`` to ``dest_ip``."""

    group: str
    src_ip: str
    dest_ip: str
    src_port: int
    dest_port: int
    protocol: int
    flow_id: int
    flow_start: datetime
    flow_end: datetime
    pkts_toserver: int
    pkts_toclient: int
    bytes_toserver: int
    bytes_toclient: int
    probability: float          # the highest probability among the aggregate's detections
    model_name: str
    model_version: str
    rule: Rule
    count: int = 1
    first_seen: datetime | None = None  # earliest flow start of the aggregate
    last_seen: datetime | None = None   # latest flow end of the aggregate

    def __post_init__(self) -> None:
        if self.first_seen is None:
            self.first_seen = self.flow_start
        if self.last_seen is None:
            self.last_seen = self.flow_end

    def merge(self, other: Alert) -> None:
        """Fold ``other`` (same source, destination and group) into this aggregate."""
        self.count += other.count
        self.probability = max(self.probability, other.probability)
        assert self.first_seen is not None and self.last_seen is not None
        if other.first_seen is not None and other.first_seen < self.first_seen:
            self.first_seen = other.first_seen
        if other.last_seen is not None and other.last_seen > self.last_seen:
            self.last_seen = other.last_seen

    @property
    def proto(self) -> str:
        """The protocol as Suricata names it."""
        return proto_name(self.protocol)


@dataclass
class Summary:
    """What a rate-limited sink sends instead of the alerts it held back."""

    alerts: int = 0
    detections: int = 0
    groups: Counter[str] = field(default_factory=Counter)   # detections per group
    sources: Counter[str] = field(default_factory=Counter)  # detections per source address
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def add(self, alert: Alert) -> None:
        """Count ``alert`` as held back."""
        self.alerts += 1
        self.detections += alert.count
        self.groups[alert.group] += alert.count
        self.sources[alert.src_ip] += alert.count
        if alert.first_seen and (self.first_seen is None or alert.first_seen < self.first_seen):
            self.first_seen = alert.first_seen
        if alert.last_seen and (self.last_seen is None or alert.last_seen > self.last_seen):
            self.last_seen = alert.last_seen
