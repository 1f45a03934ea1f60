"""Write small synthetic classic pcap files (Ethernet/IPv4/UDP or TCP) for the meter's tests."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def udp_frame(src: int, dst: int, sport: int, dport: int, payload: int = 8) -> bytes:
    """One Ethernet/IPv4/UDP frame between 32-bit addresses (checksums left 0: the meter ignores them)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + payload, 0) + b"\x00" * payload
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp


def tcp_frame(src: int, dst: int, sport: int, dport: int, flags: int, *, window: int = 1024,
              options: int = 0, payload: int = 0, padding: int = 0) -> bytes:
    """One Ethernet/IPv4/TCP frame: `options` bytes of TCP options (a multiple of 4), `payload`
    bytes of data, `padding` bytes after the IP packet (Ethernet padding: captured, not in the IP
    length).  Checksums are left 0 (the meter ignores them)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, (5 + options // 4) << 4, flags, window, 0, 0)
    tcp += b"\x01" * options + b"\x00" * payload
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + b"\x00" * padding


def record(ts_us: int, frame: bytes, wirelen: int | None = None) -> bytes:
    """A pcap record header plus the frame."""
    length = len(frame) if wirelen is None else wirelen
    return struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), length) + frame


def write_pcap(path: Path, records: Iterable[bytes]) -> Path:
    """Write a pcap file from records; returns path."""
    with path.open("wb") as fh:
        fh.write(PCAP_HEADER)
        for rec in records:
            fh.write(rec)
    return path


def one_packet_flows(n: int, start_us: int = 1_500_000_000_000_000, step_us: int = 10) -> Iterable[bytes]:
    """n single-packet UDP flows from distinct source ports/addresses to one server."""
    server = 0x0AC80001  # 10.200.0.1
    for i in range(n):
        src = 0x0A000000 | (i // 50_000) << 8 | 1  # 10.0.x.1
        yield record(start_us + i * step_us, udp_frame(src, server, 1024 + i % 50_000, 53))
