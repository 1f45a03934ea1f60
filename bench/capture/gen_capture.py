"""Build the large benchmark capture by replaying and re-addressing the shared captures.

How: every packet of every pcap/pcapng under the shared `pcaps/` folder is read (frames of
non-Ethernet link types get a synthetic Ethernet header); each file is rebased to start at 0 with
its inter-packet gaps clipped to [0, MAX_GAP_S] (some captures span years or run backwards in
time), started at a staggered offset (FILE_STAGGER_S apart, fixed shuffled order), and all files are
merged by time into one *template*.  The output is the template replayed
back to back (replay k starts at k x (template span + 1 s)) until `--packets` is reached.
Replay k XORs octets 2-3 of every IPv4 address (bytes 13-14 of every IPv6 address) with a mask
unique to k, the same mask for source and destination, so both directions of a flow stay one
flow, while replays never merge into the flows of another replay.  First and last octet stay
(private stays private, multicast stays multicast).  IPv4 header and TCP/UDP/ICMPv6 checksums are
patched incrementally (RFC 1624), so the packets stay valid.  Packet sizes and payloads are the
originals.  Vectorised with numpy: a few million packets take seconds.

The result (`replay-<N>.pcap` plus `replay-<N>.json` with its metadata) is rebuilt only if missing
or built by another generator version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.capture.pcapio import PCAP_GLOBAL_HEADER, RECORD_HEADER, PcapFormatError, read_frames

GENERATOR_VERSION = 2
MAX_GAP_S = 1.0
FILE_STAGGER_S = 0.25  # start of the i-th file (in a fixed shuffled order) in the template
MAX_WIRE_LEN = 262144
BASE_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z, so that timestamps look current
OUT_DIR = Path(__file__).resolve().parents[1] / "out"


def shared_pcaps_dir() -> Path:
    """The shared captures folder: $NETSENTRY_SHARED_DATA/pcaps, default ../shared/data/pcaps."""
    root = os.environ.get("NETSENTRY_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return base / "pcaps"


@dataclass
class Template:
    """All shared packets merged into one time line, laid out as pcap records in one buffer."""

    buf: np.ndarray  # uint8: record header (timestamp to be filled) + frame, back to back
    rec_off: np.ndarray  # int64 offset of each record header; one extra entry = buffer end
    t_rel_us: np.ndarray  # int64 rebased timestamp of each record
    addr: np.ndarray  # int64 offsets of the 4-byte address groups to re-address (src and dst)
    csum: np.ndarray  # int64 offsets of checksums to patch
    csum_addr: np.ndarray  # int64 (n, 2): address-group offsets covered by each checksum
    csum_udp4: np.ndarray  # bool: UDP over IPv4 (checksum 0 means "none" and must stay 0)
    span_us: int
    files: int
    skipped_files: list[str]


def _locate(frame: bytes) -> tuple[list[int], list[tuple[int, bool]]]:
    """Address-group offsets and (checksum offset, is_udp4) pairs inside one Ethernet frame."""
    n = len(frame)
    off, etype = 14, int.from_bytes(frame[12:14], "big") if n >= 14 else 0
    while etype in (0x8100, 0x88A8) and n >= off + 4:  # VLAN / QinQ tags
        etype = int.from_bytes(frame[off + 2:off + 4], "big")
        off += 4
    if etype == 0x0800 and n >= off + 20 and frame[off] >> 4 == 4:
        addrs = [off + 12, off + 16]
        sums = [(off + 10, False)]
        proto = frame[off + 9]
        frag_off = int.from_bytes(frame[off + 6:off + 8], "big") & 0x1FFF
        l4 = off + (frame[off] & 0x0F) * 4
    elif etype == 0x86DD and n >= off + 40 and frame[off] >> 4 == 6:
        addrs = [off + 20, off + 36]
        sums = []
        proto = frame[off + 6]
        frag_off = 0
        l4 = off + 40
    else:
        return [], []
    if frag_off == 0:
        pos = {6: l4 + 16, 17: l4 + 6}.get(proto)
        if proto == 58 and etype == 0x86DD:
            pos = l4 + 2
        if pos is not None and n >= pos + 2:
            sums.append((pos, proto == 17 and etype == 0x0800))
    return addrs, sums


def build_template(pcaps_dir: Path) -> Template:
    """Read and merge every shared capture into a `Template`."""
    files = sorted(p for p in pcaps_dir.rglob("*") if p.is_file() and ".pcap" in p.name)
    frames: list[tuple[int, int, bytes, int]] = []  # (t_rel, seq, data, orig_len)
    skipped: list[str] = []
    used = 0
    # Stagger the files' starts (fixed shuffled order) so that they do not all begin at once.
    starts = np.random.default_rng(2017).permutation(len(files)) * FILE_STAGGER_S
    starts_used: list[int] = []
    for path in files:
        try:
            got = list(read_frames(path))
        except (PcapFormatError, KeyError, IndexError, ValueError):
            skipped.append(str(path.relative_to(pcaps_dir)))  # e.g. nfstream-expected/*.pcap are CSV
            continue
        if not got:
            skipped.append(str(path.relative_to(pcaps_dir)))
            continue
        used += 1
        t_rel, prev = 0, got[0].ts_us
        start = int(starts[len(starts_used)] * 1e6)
        starts_used.append(start)
        for fr in got:
            t_rel += min(max(fr.ts_us - prev, 0), int(MAX_GAP_S * 1e6))
            prev = fr.ts_us
            # A wire length below the captured length or beyond any MTU is bogus (fuzzed captures).
            orig = fr.orig_len if len(fr.data) <= fr.orig_len <= MAX_WIRE_LEN else len(fr.data)
            frames.append((start + t_rel, len(frames), fr.data, orig))
    if not frames:
        raise SystemExit(f"error: no readable captures under {pcaps_dir}")
    frames.sort(key=lambda f: (f[0], f[1]))

    parts: list[bytes] = []
    rec_off = np.empty(len(frames) + 1, dtype=np.int64)
    t_rel_us = np.empty(len(frames), dtype=np.int64)
    addr: list[int] = []
    csum: list[int] = []
    csum_addr: list[tuple[int, int]] = []
    csum_udp4: list[bool] = []
    pos = 0
    for i, (t, _seq, data, orig) in enumerate(frames):
        rec_off[i] = pos
        t_rel_us[i] = t
        parts.append(RECORD_HEADER.pack(0, 0, len(data), orig))
        parts.append(data)
        data_pos = pos + 16
        addrs, sums = _locate(data)
        if addrs:
            addr.extend(data_pos + a for a in addrs)
            for c, udp4 in sums:
                csum.append(data_pos + c)
                csum_addr.append((data_pos + addrs[0], data_pos + addrs[1]))
                csum_udp4.append(udp4)
        pos += 16 + len(data)
    rec_off[-1] = pos
    return Template(
        buf=np.frombuffer(b"".join(parts), dtype=np.uint8).copy(),
        rec_off=rec_off,
        t_rel_us=t_rel_us,
        addr=np.array(addr, dtype=np.int64),
        csum=np.array(csum, dtype=np.int64),
        csum_addr=np.array(csum_addr, dtype=np.int64).reshape(-1, 2),
        csum_udp4=np.array(csum_udp4, dtype=bool),
        span_us=int(t_rel_us.max()),
        files=used,
        skipped_files=skipped,
    )


def _word(buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (buf[pos].astype(np.int64) << 8) | buf[pos + 1]


def replay(tpl: Template, k: int) -> np.ndarray:
    """The template as replay number k: shifted in time and re-addressed with mask k."""
    buf = tpl.buf.copy()
    ts = BASE_EPOCH_S * 1_000_000 + tpl.t_rel_us + k * (tpl.span_us + 1_000_000)
    sec, usec = ts // 1_000_000, ts % 1_000_000
    hdr = tpl.rec_off[:-1]
    for b in range(4):
        buf[hdr + b] = (sec >> (8 * b)) & 0xFF
        buf[hdr + 4 + b] = (usec >> (8 * b)) & 0xFF
    if k == 0:
        return buf
    mask = (k * 40503) & 0xFFFF  # odd multiplier: distinct non-zero masks for k < 65536
    m_hi, m_lo = mask >> 8, mask & 0xFF
    # Checksum words before the change (address group = words [a, a+1] and [a+2, a+3]).
    a = tpl.csum_addr
    old = [_word(buf, a[:, j] + d) for j in (0, 1) for d in (0, 2)]
    buf[tpl.addr + 1] ^= m_hi
    buf[tpl.addr + 2] ^= m_lo
    new = [_word(buf, a[:, j] + d) for j in (0, 1) for d in (0, 2)]
    hc = _word(buf, tpl.csum)
    total = (~hc & 0xFFFF) + sum((~w & 0xFFFF) for w in old) + sum(new)
    for _ in range(3):
        total = (total & 0xFFFF) + (total >> 16)
    patched = ~total & 0xFFFF
    patched = np.where(tpl.csum_udp4 & (patched == 0), 0xFFFF, patched)
    patched = np.where(tpl.csum_udp4 & (hc == 0), 0, patched)  # UDP/IPv4 without checksum
    buf[tpl.csum] = patched >> 8
    buf[tpl.csum + 1] = patched & 0xFF
    return buf


def ensure_capture(packets: int, out_dir: Path = OUT_DIR, pcaps_dir: Path | None = None,
                   force: bool = False, log=print) -> tuple[Path, dict]:
    """Return (path, metadata) of the `packets`-packet benchmark capture, building it if needed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"replay-{packets}.pcap"
    meta_path = path.with_suffix(".json")
    if not force and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("generator_version") == GENERATOR_VERSION and meta.get("packets") == packets \
                and path.stat().st_size == meta.get("file_bytes"):
            return path, meta
    src = pcaps_dir or shared_pcaps_dir()
    if not src.is_dir():
        raise SystemExit(f"error: shared captures not found at {src} (set NETSENTRY_SHARED_DATA)")
    t0 = time.monotonic()
    log(f"building {path} ({packets:,} packets) from {src} ...")
    tpl = build_template(src)
    n_tpl = len(tpl.t_rel_us)
    tmp = path.with_suffix(".pcap.tmp")
    written, replays, frame_bytes = 0, 0, 0
    with open(tmp, "wb") as fh:
        fh.write(PCAP_GLOBAL_HEADER)
        while written < packets:
            take = min(n_tpl, packets - written)
            buf = replay(tpl, replays)
            end = int(tpl.rec_off[take])
            fh.write(buf[:end].tobytes())
            frame_bytes += end - 16 * take
            written += take
            replays += 1
    os.replace(tmp, path)
    meta = {
        "generator_version": GENERATOR_VERSION,
        "packets": written,
        "file_bytes": path.stat().st_size,
        "mean_frame_bytes": round(frame_bytes / written, 1),
        "replays": replays,
        "template_packets": n_tpl,
        "template_span_s": round(tpl.span_us / 1e6, 3),
        "source_files": tpl.files,
        "skipped_files": len(tpl.skipped_files),
        "source_dir": str(src),
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"built {path}: {json.dumps(meta)}")
    return path, meta


def main(argv: list[str] | None = None) -> int:
    """CLI: build (or reuse) the benchmark capture and print its path and metadata."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.capture.gen_capture",
        description="Build bench/out/replay-<N>.pcap: the shared captures replayed and re-addressed "
                    "(distinct flows per replay, original packet sizes) up to N packets.")
    ap.add_argument("--packets", type=int, default=3_000_000, help="packets in the capture (default 3M)")
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR, help="output folder (default bench/out)")
    ap.add_argument("--force", action="store_true", help="rebuild even if an up-to-date file exists")
    args = ap.parse_args(argv)
    if args.packets <= 0:
        ap.error("--packets must be positive")
    path, meta = ensure_capture(args.packets, args.out_dir, force=args.force)
    print(path)
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
