"""An independent, deliberately simple Python flow meter used as the oracle for ``capture/flowmeter``.

It shares no code with the C meter: packets are read with pcapy-ng (libpcap) and decoded here with
``struct`` from the wire formats (Ethernet/802.1Q, Linux cooked v1/v2, BSD loopback, raw IP, IPv4,
IPv6 with extension headers, TCP, UDP).  Flows and features follow
``../shared/docs/flow-features.md`` for the ``clean`` profile (and ``engelen`` where that
profile only differs in how a terminated TCP flow absorbs later packets):

* key: the unordered pair of (address, port) endpoints + IP protocol; ports 0 unless TCP/UDP;
* direction: the first packet's source is forward, except a flow opened by a SYN+ACK, whose
  forward side is the SYN+ACK's destination (the client);
* a packet older than its flow's last packet counts as arriving at that time (no negative IAT);
* a flow ends on the flow timeout (idle since its last packet, or active since its first packet;
  an active-timeout restart keeps the original direction), on TCP RST, or on FIN from both sides
  followed by an ACK of the second FIN; ``clean`` then keeps absorbing packets for ``linger``
  seconds (a SYN without ACK starts a new flow at once), ``engelen`` until a new SYN;
* lengths are L4 payload bytes from the IP header lengths (no Ethernet padding), header lengths
  are L4 headers (TCP data offset, 8 for UDP, 0 otherwise), statistics use the sample (n-1)
  standard deviation, times are microseconds.

Only used by the tests; it is slow (pure Python) and meant for captures of a few thousand packets.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pcapy

# Link-layer types (libpcap DLT_* values on Linux; LINKTYPE_RAW 101 is mapped to 12 by libpcap).
DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_RAW_ALT, DLT_LOOP = 0, 1, 12, 14, 108
DLT_LINUX_SLL, DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL2 = 113, 228, 229, 276
SUPPORTED_DLTS = frozenset({DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_RAW_ALT, DLT_LOOP, DLT_LINUX_SLL,
                            DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL2})

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
# IPv6 extension headers walked to find the upper layer (44 = fragment: the packet is skipped).
_IPV6_EXT = frozenset({0, 43, 44, 51, 60, 135, 139, 140})
_MAX_IPV6_EXT = 8
_MAX_VLAN_TAGS = 4


@dataclass(frozen=True)
class Packet:
    """One decoded IP packet, reduced to what the flow features need."""

    ts_us: int
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    flags: int  # TCP flags byte, 0 unless TCP
    window: int  # raw TCP window, -1 unless TCP
    hdr_len: int  # L4 header bytes
    payload: int  # L4 payload bytes from the IP lengths


def _addr(raw: bytes) -> str:
    """Text form of a 4- or 16-byte address, as the C library's inet_ntop writes it."""
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _l4(proto: int, seg: bytes, avail: int) -> tuple[int, int, int, int, int] | None:
    """Decode the L4 header: (sport, dport, flags, window, header length), or None if unusable.

    ``seg`` holds the captured bytes from the L4 header on, ``avail`` the bytes the IP header
    says the L4 segment has.
    """
    if proto == 6:
        if len(seg) < 20 or avail < 20:
            return None
        sport, dport, _seq, _ack, off, flags, window = struct.unpack_from("!HHIIBBH", seg)
        hdr = (off >> 4) * 4
        if hdr < 20 or hdr > avail:
            return None
        return sport, dport, flags, window, hdr
    if proto == 17:
        if len(seg) < 8 or avail < 8:
            return None
        sport, dport = struct.unpack_from("!HH", seg)
        return sport, dport, 0, -1, 8
    return 0, 0, 0, -1, 0


def _ipv4(ip: bytes, wire: int, ts_us: int) -> Packet | None:
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20 or len(ip) < ihl:
        return None
    total, frag = struct.unpack_from("!H2xH", ip, 2)
    if total == 0:  # segmentation offload: the length on the wire is the truth
        total = wire
    total = min(total, wire)
    if total < ihl or frag & 0x3FFF:  # bogus length, or a fragment (not reassembled)
        return None
    proto = ip[9]
    l4 = _l4(proto, ip[ihl:], total - ihl)
    if l4 is None:
        return None
    sport, dport, flags, window, hdr = l4
    return Packet(ts_us, _addr(ip[12:16]), _addr(ip[16:20]), sport, dport, proto, flags, window,
                  hdr, total - ihl - hdr)


def _ipv6(ip: bytes, wire: int, ts_us: int) -> Packet | None:
    if len(ip) < 40 or ip[0] >> 4 != 6:
        return None
    plen = struct.unpack_from("!H", ip, 4)[0]
    if plen == 0 or plen + 40 > wire:
        plen = wire - 40
    end = plen + 40
    nh, off = ip[6], 40
    for _ in range(_MAX_IPV6_EXT + 1):
        if nh not in _IPV6_EXT:
            break
        if nh == 44 or off + 8 > len(ip) or off + 8 > end:
            return None
        size = (ip[off + 1] + 2) * 4 if nh == 51 else (ip[off + 1] + 1) * 8
        nh, off = ip[off], off + size
        if off > end:
            return None
    else:
        return None  # chain too long
    l4 = _l4(nh, ip[off:], end - off)
    if l4 is None:
        return None
    sport, dport, flags, window, hdr = l4
    return Packet(ts_us, _addr(ip[8:24]), _addr(ip[24:40]), sport, dport, nh, flags, window, hdr,
                  end - off - hdr)


def _ethertype(et: int, ip: bytes, wire: int, ts_us: int) -> Packet | None:
    if et == 0x0800:
        return _ipv4(ip, wire, ts_us)
    if et == 0x86DD:
        return _ipv6(ip, wire, ts_us)
    return None


def decode(dlt: int, frame: bytes, wirelen: int, ts_us: int) -> Packet | None:
    """Decode one frame of link type ``dlt``; None for anything that is not a usable IP packet."""
    wirelen = max(wirelen, len(frame))
    if dlt == DLT_EN10MB:
        if len(frame) < 14:
            return None
        off, tags = 12, 0
        et = struct.unpack_from("!H", frame, off)[0]
        while et in _VLAN_TYPES:
            if tags >= _MAX_VLAN_TAGS or len(frame) < off + 8:
                return None
            tags, off = tags + 1, off + 4
            et = struct.unpack_from("!H", frame, off)[0]
        return _ethertype(et, frame[off + 2:], wirelen - off - 2, ts_us)
    if dlt == DLT_LINUX_SLL:
        if len(frame) < 16:
            return None
        return _ethertype(struct.unpack_from("!H", frame, 14)[0], frame[16:], wirelen - 16, ts_us)
    if dlt == DLT_LINUX_SLL2:
        if len(frame) < 20:
            return None
        return _ethertype(struct.unpack_from("!H", frame, 0)[0], frame[20:], wirelen - 20, ts_us)
    if dlt in (DLT_RAW, DLT_RAW_ALT, DLT_IPV4, DLT_IPV6):
        if not frame:
            return None
        version = frame[0] >> 4
        if version == 4 and dlt != DLT_IPV6:
            return _ipv4(frame, wirelen, ts_us)
        if version == 6 and dlt != DLT_IPV4:
            return _ipv6(frame, wirelen, ts_us)
        return None
    if dlt in (DLT_NULL, DLT_LOOP):
        if len(frame) < 4:
            return None
        big, little = struct.unpack_from("!I", frame)[0], struct.unpack_from("<I", frame)[0]
        family = big if dlt == DLT_LOOP or big < 256 else little
        if family == 2:
            return _ipv4(frame[4:], wirelen - 4, ts_us)
        if family in (10, 24, 28, 30):  # AF_INET6 on Linux, the BSDs and macOS
            return _ipv6(frame[4:], wirelen - 4, ts_us)
        return None
    return None


def read_capture(path: str, bpf: str | None = None) -> Iterator[tuple[int, Packet | None]]:
    """Yield (frame number from 1, decoded packet or None) for every frame of a pcap/pcapng file.

    ``bpf`` is an optional libpcap filter expression, applied as the meter's ``-f`` does.
    """
    reader = pcapy.open_offline(str(path))
    if bpf:
        reader.setfilter(bpf)
    dlt = reader.datalink()
    n = 0
    while True:
        hdr, frame = reader.next()
        if hdr is None:
            return
        n += 1
        sec, usec = hdr.getts()
        yield n, decode(dlt, bytes(frame), hdr.getlen(), sec * 1_000_000 + usec)


class _Stat:
    """Exact running statistics of integers: n, sum, sum of squares, min, max."""

    __slots__ = ("n", "total", "squares", "lo", "hi")

    def __init__(self) -> None:
        self.n = self.total = self.squares = 0
        self.lo = self.hi = 0

    def add(self, x: int) -> None:
        if self.n == 0 or x < self.lo:
            self.lo = x
        if self.n == 0 or x > self.hi:
            self.hi = x
        self.n += 1
        self.total += x
        self.squares += x * x

    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def var(self) -> float:
        """Sample variance (n-1), 0 for fewer than two values; exact until the final division."""
        if self.n < 2:
            return 0.0
        return (self.n * self.squares - self.total * self.total) / (self.n * (self.n - 1))

    def std(self) -> float:
        return math.sqrt(self.var())


@dataclass
class Flow:
    """Accumulated state of one bidirectional flow."""

    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    start: int
    last: int
    fwd_len: _Stat = field(default_factory=_Stat)
    bwd_len: _Stat = field(default_factory=_Stat)
    all_len: _Stat = field(default_factory=_Stat)
    flow_iat: _Stat = field(default_factory=_Stat)
    fwd_iat: _Stat = field(default_factory=_Stat)
    bwd_iat: _Stat = field(default_factory=_Stat)
    fwd_last: int | None = None
    bwd_last: int | None = None
    flag_counts: dict[int, int] = field(default_factory=lambda: dict.fromkeys(
        (FIN, SYN, RST, PSH, ACK, URG, CWR, ECE), 0))
    fwd_psh: int = 0
    bwd_psh: int = 0
    fwd_urg: int = 0
    bwd_urg: int = 0
    fwd_hdr: int = 0
    bwd_hdr: int = 0
    fwd_min_hdr: int | None = None
    init_win_fwd: int = -1
    init_win_bwd: int = -1
    act_data_fwd: int = 0
    subflows: int = 1
    # TCP termination
    fin_fwd: bool = False
    fin_bwd: bool = False
    second_fin_fwd: bool | None = None  # direction of the FIN that completed the pair
    closed_at: int | None = None
    # Active/Idle (activity timeout)
    active_start: int = 0
    active_end: int = 0
    active: _Stat = field(default_factory=_Stat)
    idle: _Stat = field(default_factory=_Stat)

    def is_forward(self, p: Packet) -> bool:
        """Forward iff the packet comes from the flow's source endpoint (address and port)."""
        return p.src == self.src and p.sport == self.sport


class ReferenceMeter:
    """Flow assembly over decoded packets; finished flows are collected in ``rows``."""

    def __init__(self, profile: str = "clean", flow_timeout_s: float = 120.0,
                 activity_timeout_s: float = 5.0, linger_s: float = 1.0) -> None:
        if profile not in ("clean", "engelen"):
            raise ValueError(f"reference meter implements clean and engelen, not {profile!r}")
        self.profile = profile
        self.timeout = round(flow_timeout_s * 1e6)
        self.activity = round(activity_timeout_s * 1e6)
        self.linger = round(linger_s * 1e6)
        self.flows: dict[tuple, Flow] = {}
        self.rows: list[dict[str, object]] = []
        self.packets = self.parsed = 0

    @staticmethod
    def key(p: Packet) -> tuple:
        """Direction-free flow key."""
        a, b = (p.src, p.sport), (p.dst, p.dport)
        return (min(a, b), max(a, b), p.proto)

    def add(self, p: Packet | None) -> None:
        """Account one frame (None = not a usable IP packet)."""
        self.packets += 1
        if p is None:
            return
        self.parsed += 1
        k = self.key(p)
        flow = self.flows.get(k)
        if flow is not None:
            inherit = None
            if p.ts_us - flow.last > self.timeout:
                inherit = False  # idle timeout: a fresh flow
            elif p.ts_us - flow.start > self.timeout:
                inherit = True  # active timeout: same conversation, same direction
            elif flow.closed_at is not None and self._ends_after_close(flow, p):
                inherit = False
            if inherit is not None:
                self._emit(flow)
                del self.flows[k]
                if inherit:
                    new = self._new_flow(p, flow)
                    self.flows[k] = new
                    self._update(new, p, first=True)
                    return
                flow = None
        if flow is None:
            flow = self._new_flow(p, None)
            self.flows[k] = flow
            self._update(flow, p, first=True)
        else:
            self._update(flow, p, first=False)

    def _ends_after_close(self, flow: Flow, p: Packet) -> bool:
        """Whether a packet after the TCP close belongs to a new flow instead of the old one."""
        new_syn = bool(p.flags & SYN) and not p.flags & ACK
        if self.profile == "engelen":
            return bool(p.flags & SYN)
        assert flow.closed_at is not None
        return new_syn or p.ts_us - flow.closed_at > self.linger

    def _new_flow(self, p: Packet, parent: Flow | None) -> Flow:
        if parent is not None:
            ends = (parent.src, parent.dst, parent.sport, parent.dport)
        elif p.proto == 6 and p.flags & SYN and p.flags & ACK:
            ends = (p.dst, p.src, p.dport, p.sport)  # SYN+ACK seen first: the client is forward
        else:
            ends = (p.src, p.dst, p.sport, p.dport)
        return Flow(*ends, proto=p.proto, start=p.ts_us, last=p.ts_us,
                    active_start=p.ts_us, active_end=p.ts_us)

    def _update(self, f: Flow, p: Packet, first: bool) -> None:
        ts = max(p.ts_us, f.last)  # out-of-order packets arrive "now"
        fwd = f.is_forward(p)
        if not first:
            gap = ts - f.last
            f.flow_iat.add(gap)
            if gap > 1_000_000:
                f.subflows += 1
            if ts - f.active_end > self.activity:
                if f.active_end - f.active_start > 0:
                    f.active.add(f.active_end - f.active_start)
                f.idle.add(ts - f.active_end)
                f.active_start = f.active_end = ts
            else:
                f.active_end = ts
        f.last = ts
        f.all_len.add(p.payload)
        if fwd:
            f.fwd_len.add(p.payload)
            if f.fwd_last is not None:
                f.fwd_iat.add(ts - f.fwd_last)
            f.fwd_last = ts
            f.fwd_psh += bool(p.flags & PSH)
            f.fwd_urg += bool(p.flags & URG)
            f.fwd_hdr += p.hdr_len
            f.fwd_min_hdr = p.hdr_len if f.fwd_min_hdr is None else min(f.fwd_min_hdr, p.hdr_len)
            f.act_data_fwd += p.payload >= 1
            if f.fwd_len.n == 1:
                f.init_win_fwd = p.window
        else:
            f.bwd_len.add(p.payload)
            if f.bwd_last is not None:
                f.bwd_iat.add(ts - f.bwd_last)
            f.bwd_last = ts
            f.bwd_psh += bool(p.flags & PSH)
            f.bwd_urg += bool(p.flags & URG)
            f.bwd_hdr += p.hdr_len
            if f.bwd_len.n == 1:
                f.init_win_bwd = p.window
        for bit in f.flag_counts:
            f.flag_counts[bit] += bool(p.flags & bit)
        if p.proto == 6 and f.closed_at is None:
            self._tcp_state(f, p, fwd, ts)

    @staticmethod
    def _tcp_state(f: Flow, p: Packet, fwd: bool, ts: int) -> None:
        if p.flags & RST:
            f.closed_at = ts
            return
        if f.second_fin_fwd is not None and p.flags & ACK and fwd != f.second_fin_fwd:
            f.closed_at = ts  # the ACK of the second FIN
            return
        if p.flags & FIN:
            if fwd:
                f.fin_fwd = True
            else:
                f.fin_bwd = True
            if f.fin_fwd and f.fin_bwd and f.second_fin_fwd is None:
                f.second_fin_fwd = fwd

    def finish(self) -> list[dict[str, object]]:
        """Emit every open flow (end of input) and return all rows."""
        for flow in self.flows.values():
            self._emit(flow)
        self.flows.clear()
        return self.rows

    def _emit(self, f: Flow) -> None:
        duration = f.last - f.start
        n_fwd, n_bwd = f.fwd_len.n, f.bwd_len.n
        secs = duration / 1e6
        total_bytes = f.fwd_len.total + f.bwd_len.total
        start = datetime.fromtimestamp(f.start // 1_000_000, tz=UTC)
        fc = f.flag_counts
        row: dict[str, object] = {
            "Flow ID": f"{f.src}-{f.dst}-{f.sport}-{f.dport}-{f.proto}",
            "Source IP": f.src, "Source Port": f.sport,
            "Destination IP": f.dst, "Destination Port": f.dport, "Protocol": f.proto,
            "Timestamp": f"{start:%Y-%m-%d %H:%M:%S}.{f.start % 1_000_000:06d}",
            "Flow Duration": duration,
            "Total Fwd Packets": n_fwd, "Total Backward Packets": n_bwd,
            "Total Length of Fwd Packets": f.fwd_len.total,
            "Total Length of Bwd Packets": f.bwd_len.total,
            "Fwd Packet Length Max": f.fwd_len.hi, "Fwd Packet Length Min": f.fwd_len.lo,
            "Fwd Packet Length Mean": f.fwd_len.mean(), "Fwd Packet Length Std": f.fwd_len.std(),
            "Bwd Packet Length Max": f.bwd_len.hi, "Bwd Packet Length Min": f.bwd_len.lo,
            "Bwd Packet Length Mean": f.bwd_len.mean(), "Bwd Packet Length Std": f.bwd_len.std(),
            "Flow IAT Mean": f.flow_iat.mean(), "Flow IAT Std": f.flow_iat.std(),
            "Flow IAT Max": f.flow_iat.hi, "Flow IAT Min": f.flow_iat.lo,
            "Fwd IAT Total": f.fwd_iat.total, "Fwd IAT Mean": f.fwd_iat.mean(),
            "Fwd IAT Std": f.fwd_iat.std(), "Fwd IAT Max": f.fwd_iat.hi,
            "Fwd IAT Min": f.fwd_iat.lo,
            "Bwd IAT Total": f.bwd_iat.total, "Bwd IAT Mean": f.bwd_iat.mean(),
            "Bwd IAT Std": f.bwd_iat.std(), "Bwd IAT Max": f.bwd_iat.hi,
            "Bwd IAT Min": f.bwd_iat.lo,
            "Fwd PSH Flags": f.fwd_psh, "Bwd PSH Flags": f.bwd_psh,
            "Fwd URG Flags": f.fwd_urg, "Bwd URG Flags": f.bwd_urg,
            "Fwd Header Length": f.fwd_hdr, "Bwd Header Length": f.bwd_hdr,
            "Min Packet Length": f.all_len.lo, "Max Packet Length": f.all_len.hi,
            "Packet Length Mean": f.all_len.mean(), "Packet Length Std": f.all_len.std(),
            "Packet Length Variance": f.all_len.var(),
            "FIN Flag Count": fc[FIN], "SYN Flag Count": fc[SYN], "RST Flag Count": fc[RST],
            "PSH Flag Count": fc[PSH], "ACK Flag Count": fc[ACK], "URG Flag Count": fc[URG],
            "CWE Flag Count": fc[CWR], "ECE Flag Count": fc[ECE],
            "Down/Up Ratio": n_bwd / n_fwd if n_fwd else 0.0,
            "Average Packet Size": f.all_len.mean(),
            "Avg Fwd Segment Size": f.fwd_len.mean(), "Avg Bwd Segment Size": f.bwd_len.mean(),
            "Subflow Fwd Packets": n_fwd // f.subflows,
            "Subflow Fwd Bytes": f.fwd_len.total // f.subflows,
            "Subflow Bwd Packets": n_bwd // f.subflows,
            "Subflow Bwd Bytes": f.bwd_len.total // f.subflows,
            "Init_Win_bytes_forward": f.init_win_fwd, "Init_Win_bytes_backward": f.init_win_bwd,
            "act_data_pkt_fwd": f.act_data_fwd,
            "min_seg_size_forward": f.fwd_min_hdr or 0,
            "Active Mean": f.active.mean(), "Active Std": f.active.std(),
            "Active Max": f.active.hi, "Active Min": f.active.lo,
            "Idle Mean": f.idle.mean(), "Idle Std": f.idle.std(),
            "Idle Max": f.idle.hi, "Idle Min": f.idle.lo,
        }
        if duration > 0:  # the zero-duration sentinels are profile-specific; not modelled here
            row["Flow Bytes/s"] = total_bytes / secs
            row["Flow Packets/s"] = (n_fwd + n_bwd) / secs
            row["Fwd Packets/s"] = n_fwd / secs
            row["Bwd Packets/s"] = n_bwd / secs
        self.rows.append(row)


def run_reference(path: str, profile: str = "clean", bpf: str | None = None,
                  **settings: float) -> ReferenceMeter:
    """Meter a whole capture file; the returned meter holds ``rows``, ``packets`` and ``parsed``.

    ``settings`` are the ReferenceMeter timeouts (flow_timeout_s, activity_timeout_s, linger_s).
    """
    meter = ReferenceMeter(profile, **settings)
    for _n, packet in read_capture(path, bpf):
        meter.add(packet)
    meter.finish()
    return meter
