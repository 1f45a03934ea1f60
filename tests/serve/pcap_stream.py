"""Write a classic pcap of synthetic UDP flows, e.g. into a FIFO the sensor replays as a stream.

Each flow is one IPv4/UDP packet to its own destination port; the test decides when packets are
written and which timestamps they carry, so it controls when the meter ends flows (flow timeout
on packet time) and when the stream ends.
"""

from __future__ import annotations

import errno
import os
import struct
import time
from collections.abc import Callable
from typing import BinaryIO

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet, µs timestamps
ETHERNET = bytes.fromhex("020000000002" "020000000001" "0800")  # locally administered MACs, IPv4


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_packet(ts_us: int, src: str, dst: str, sport: int, dport: int,
               payload: bytes = b"netsentry") -> bytes:
    """One pcap record: Ethernet + IPv4 + UDP (UDP checksum 0 = none, as IPv4 allows)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    frame = ETHERNET + ip + udp
    return struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)) + frame


def udp_flows(start_us: int, first_port: int, count: int, gap_us: int = 10_000) -> bytes:
    """``count`` one-packet flows 10.97.0.1 -> 10.97.0.2 to ports first_port.., ``gap_us`` apart."""
    return b"".join(udp_packet(start_us + i * gap_us, "10.97.0.1", "10.97.0.2", 40000, first_port + i)
                    for i in range(count))


def tick(start_us: int, packets: int = 300) -> bytes:
    """One flow of ``packets`` packets starting at ``start_us``: advances the meter's packet clock
    (ending idle flows) and fills its 256-packet read round, so the rows it ended come out now."""
    return b"".join(udp_packet(start_us + i * 1000, "10.97.0.3", "10.97.0.2", 40001, 9)
                    for i in range(packets))


def open_fifo_for_writing(path: str, alive: Callable[[], bool], timeout: float = 120) -> BinaryIO:
    """Open a FIFO once its reader (the meter) has opened it; fail if ``alive()`` turns False
    (the reader's parent died) or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline or not alive():
                raise
            time.sleep(0.1)
            continue
        os.set_blocking(fd, True)
        return os.fdopen(fd, "wb", buffering=0)
