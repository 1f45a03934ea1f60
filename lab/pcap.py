"""Classic pcap files, read and written record by record (what tcpdump -w writes), stdlib only.

Used to keep only the headers of each packet (the meter's clean and engelen profiles take lengths
from the IP header, so a header-only capture meters to the same flows at a fraction of the size) and
to cut time windows out of a capture (the demo capture).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_MAGIC_US, _MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D

Packet = tuple[int, int, int, bytes]  # (seconds, microseconds, length on the wire, captured bytes)


def _open(path: Path, mode: str) -> IO[bytes]:
    if path.name.endswith(".gz"):  # mtime 0: the same packets give the same bytes (git, DVC)
        return gzip.GzipFile(path, mode, mtime=0)
    return path.open(mode)


def read(path: Path) -> tuple[int, Iterator[Packet]]:
    """The link type of a little-endian classic pcap (optionally .gz) and an iterator over its packets."""
    fh = _open(path, "rb")
    head = fh.read(_GLOBAL.size)
    magic, _, _, _, _, _, linktype = _GLOBAL.unpack(head)
    if magic not in (_MAGIC_US, _MAGIC_NS):
        raise ValueError(f"{path}: not a little-endian classic pcap (magic {magic:#x})")
    divisor = 1 if magic == _MAGIC_US else 1000

    def packets() -> Iterator[Packet]:
        with fh:
            while rec := fh.read(_RECORD.size):
                sec, frac, incl, orig = _RECORD.unpack(rec)
                yield sec, frac // divisor, orig, fh.read(incl)

    return linktype, packets()


def write(path: Path, linktype: int, packets: Iterable[Packet], snaplen: int = 262144) -> int:
    """Write packets (cut to ``snaplen`` bytes, wire length kept) as a microsecond pcap; return the count."""
    n = 0
    with _open(path, "wb") as fh:
        fh.write(_GLOBAL.pack(_MAGIC_US, 2, 4, 0, 0, snaplen, linktype))
        for sec, usec, orig, data in packets:
            data = data[:snaplen]
            fh.write(_RECORD.pack(sec, usec, len(data), orig))
            fh.write(data)
            n += 1
    return n


def in_windows(packets: Iterable[Packet], windows: list[tuple[float, float]]) -> Iterator[Packet]:
    """The packets whose timestamp falls in one of ``windows`` (start, end)."""
    for p in packets:
        ts = p[0] + p[1] * 1e-6
        if any(a <= ts <= b for a, b in windows):
            yield p


def flow_key(frame: bytes) -> tuple[str, str, int, int, int] | None:
    """Direction-free 5-tuple (lower address first) of an Ethernet/IPv4 frame, or None if not IPv4."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    src, dst = ".".join(map(str, frame[26:30])), ".".join(map(str, frame[30:34]))
    sport = dport = 0
    if proto in (6, 17) and len(frame) >= 14 + ihl + 4:
        sport, dport = struct.unpack_from(">HH", frame, 14 + ihl)
    return canonical_key(src, dst, sport, dport, proto)


def canonical_key(src: str, dst: str, sport: int, dport: int, proto: int) -> tuple[str, str, int, int, int]:
    """The same key for both directions of a conversation."""
    if (src, sport) <= (dst, dport):
        return src, dst, sport, dport, proto
    return dst, src, dport, sport, proto


def without_flows(packets: Iterable[Packet], drop: set[tuple[str, str, int, int, int]]) -> Iterator[Packet]:
    """The packets whose 5-tuple is not in ``drop`` (whole flows kept or removed, never cut)."""
    for p in packets:
        if flow_key(p[3]) not in drop:
            yield p
