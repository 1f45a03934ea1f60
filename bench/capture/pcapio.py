"""Minimal pcap / pcapng reading and classic-pcap writing with `struct` (no third-party parser).

Only what the benchmark capture builder needs: every packet of a file as (timestamp in µs,
Ethernet frame, original length).  Frames of other link types that carry plain IP (BSD null,
raw IP, Linux cooked) get a synthetic Ethernet header so that they can be replayed too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LINKTYPE_ETHERNET = 1
PCAP_GLOBAL_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET)
RECORD_HEADER = struct.Struct("<IIII")

# Locally administered MACs for frames that had no Ethernet header of their own.
_FAKE_ETH_V4 = bytes.fromhex("020000000002" "020000000001" "0800")
_FAKE_ETH_V6 = bytes.fromhex("020000000002" "020000000001" "86dd")


class PcapFormatError(ValueError):
    """The file is not a pcap/pcapng file this reader understands."""


@dataclass(frozen=True)
class Frame:
    """One captured packet as an Ethernet frame."""

    ts_us: int
    data: bytes
    orig_len: int


def _ip_to_ethernet(payload: bytes) -> bytes | None:
    """Prefix a raw IP packet with a synthetic Ethernet header (None if not IPv4/IPv6)."""
    if not payload:
        return None
    version = payload[0] >> 4
    if version == 4:
        return _FAKE_ETH_V4 + payload
    if version == 6:
        return _FAKE_ETH_V6 + payload
    return None


def _to_ethernet(linktype: int, data: bytes) -> tuple[bytes, int] | None:
    """Return (Ethernet frame, bytes added) for a frame of `linktype`, or None to skip it."""
    if linktype == LINKTYPE_ETHERNET:
        return data, 0
    if linktype in (0, 108):  # BSD null / OpenBSD loop: 4-byte family, then IP
        inner = data[4:]
    elif linktype in (101, 12, 14, 228, 229):  # raw IP
        inner = data
    elif linktype == 113:  # Linux cooked v1: 16-byte header
        inner = data[16:]
    elif linktype == 276:  # Linux cooked v2: 20-byte header
        inner = data[20:]
    else:
        return None
    frame = _ip_to_ethernet(inner)
    if frame is None:
        return None
    return frame, len(frame) - len(data)


def _read_pcap(buf: bytes) -> Iterator[Frame]:
    magic = buf[:4]
    table = {
        b"\xd4\xc3\xb2\xa1": ("<", 1), b"\xa1\xb2\xc3\xd4": (">", 1),
        b"\x4d\x3c\xb2\xa1": ("<", 1000), b"\xa1\xb2\x3c\x4d": (">", 1000),
    }
    endian, frac_div = table[magic]
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(buf):
        sec, frac, incl, orig = rec.unpack_from(buf, pos)
        pos += 16
        data = buf[pos:pos + incl]
        pos += incl
        if len(data) < incl:
            break  # truncated last record
        conv = _to_ethernet(linktype, data)
        if conv is not None:
            yield Frame(sec * 1_000_000 + frac // frac_div, conv[0], orig + conv[1])


def _tsresol_divisor(options: bytes, endian: str) -> tuple[int, int]:
    """if_tsresol of an IDB as (units per second); default microseconds."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[pos + 4]
            return (2 ** (v & 0x7F), 0) if v & 0x80 else (10 ** v, 0)
        pos += 4 + ((length + 3) & ~3)
    return 1_000_000, 0


def _read_pcapng(buf: bytes) -> Iterator[Frame]:
    endian = "<"
    ifaces: list[tuple[int, int]] = []  # (linktype, units per second)
    pos = 0
    while pos + 12 <= len(buf):
        btype = struct.unpack_from(endian + "I", buf, pos)[0]
        if btype == 0x0A0D0D0A:  # section header: byte order may change per section
            bom = buf[pos + 8:pos + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
        if blen < 12 or pos + blen > len(buf):
            break
        body = buf[pos + 8:pos + blen - 4]
        pos += blen
        if btype == 1:  # interface description
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            ifaces.append((linktype, _tsresol_divisor(body[8:], endian)[0]))
        elif btype in (6, 2):  # enhanced packet / obsolete packet block
            if btype == 6:
                iface, ts_hi, ts_lo, caplen, orig = struct.unpack_from(endian + "IIIII", body, 0)
            else:
                iface, _drops, ts_hi, ts_lo, caplen, orig = struct.unpack_from(endian + "HHIIII", body, 0)
            if iface >= len(ifaces):
                continue
            linktype, units = ifaces[iface]
            ts = (ts_hi << 32) | ts_lo
            conv = _to_ethernet(linktype, body[20:20 + caplen])
            if conv is not None:
                yield Frame(ts * 1_000_000 // units, conv[0], orig + conv[1])


def read_frames(path: Path) -> Iterator[Frame]:
    """Yield every packet of a pcap or pcapng file as an Ethernet `Frame`.

    Packets of link types that cannot be turned into Ethernet are left out.
    Raises PcapFormatError for a file that is neither pcap nor pcapng.
    """
    buf = Path(path).read_bytes()
    magic = buf[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return _read_pcapng(buf)
    if magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        return _read_pcap(buf)
    raise PcapFormatError(f"{path}: not a pcap or pcapng file (magic {magic.hex()})")


def count_records(path: Path) -> int:
    """Number of records in a classic little-endian pcap written by this module."""
    n = 0
    with open(path, "rb") as fh:
        fh.seek(24)
        while True:
            hdr = fh.read(16)
            if len(hdr) < 16:
                return n
            fh.seek(RECORD_HEADER.unpack(hdr)[2], 1)
            n += 1


def write_head(src: Path, dst: Path, packets: int) -> int:
    """Copy the first `packets` records of classic pcap `src` into `dst`; return how many were copied."""
    n = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(fin.read(24))
        while n < packets:
            hdr = fin.read(16)
            if len(hdr) < 16:
                break
            incl = RECORD_HEADER.unpack(hdr)[2]
            fout.write(hdr + fin.read(incl))
            n += 1
    return n
