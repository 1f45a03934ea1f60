"""Build a libFuzzer seed corpus for the capture fuzz harnesses from real packet captures.

``fuzz_parse`` input (see fuzz_parse.c): byte 0 selects the link type by its index in the
harness's ``dlts[]`` table, byte 1 is added to caplen to form wirelen, the rest is one frame.
``fuzz_meter`` input (see fuzz_meter.c): 2 configuration bytes, then records
``[link byte][gap ms, 1 byte; 255 = 1 ms back][caplen, 2 bytes big-endian][frame]`` where the
link byte is the dlt index plus snaplen-cut bits (``cut << 4``: only (8 - cut)/8 of the frame is
captured; bit 7: the wire length claims 1500 bytes more); each capture gives a few files (one per
configuration, and one with every record cut) holding its first frames.  The link-type order is
read from fuzz_parse.c, so the harnesses and the corpus stay in step.

    python capture/fuzz/seed_corpus.py OUT_DIR CAPTURE... [--meter] [--max-per-file N]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import struct
import sys
from pathlib import Path

import pcapy

FUZZ_DIR = Path(__file__).resolve().parent
MAX_FRAME = 4096  # longer frames add no parser paths, only slow the fuzzer down


def harness_dlts(harness: Path = FUZZ_DIR / "fuzz_parse.c",
                 header: Path = FUZZ_DIR.parent / "parse.h") -> list[int]:
    """The DLT values of the harness's ``dlts[]`` table, in order."""
    values = {m[1]: int(m[2]) for m in re.finditer(r"#define\s+(NS_DLT_\w+)\s+(\d+)",
                                                   header.read_text())}
    table = re.search(r"dlts\[\]\s*=\s*\{([^}]*)\}", harness.read_text())
    if table is None:
        raise SystemExit(f"seed_corpus: no dlts[] table in {harness}")
    return [values[name.strip()] for name in table[1].split(",") if name.strip()]


def frames(path: Path, limit: int) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(link type, up to ``limit`` frames as (timestamp µs, wirelen, bytes)) of one capture."""
    reader = pcapy.open_offline(str(path))
    out: list[tuple[int, int, bytes]] = []
    while len(out) < limit:
        try:
            hdr, data = reader.next()
        except pcapy.PcapError:  # damaged tail: keep what was read
            break
        if hdr is None:
            break
        sec, usec = hdr.getts()
        out.append((sec * 1_000_000 + usec, hdr.getlen(), bytes(data)))
    return reader.datalink(), out


def parse_inputs(path: Path, dlt_index: int, limit: int) -> list[bytes]:
    """fuzz_parse inputs: one per frame."""
    _dlt, recs = frames(path, limit)
    return [bytes([dlt_index, min(max(wire - len(data), 0), 255)]) + data[:MAX_FRAME]
            for _ts, wire, data in recs]


# fuzz_meter configuration bytes: (profile + timeout bits + header bit, max_flows).
METER_CONFIGS = (bytes([2 | 7 << 2, 0]),  # clean, 2 s timeout, no flow cap
                 bytes([0 | 1 << 2 | 0x80, 5]),  # cic2017, 0.5 s, cic2017 header, 5 flows max
                 bytes([1 | 3 << 2, 0]))  # engelen, 1 s


def meter_inputs(path: Path, dlt_index: int, limit: int) -> list[bytes]:
    """fuzz_meter inputs: the capture's first frames as records with their time gaps."""
    _dlt, recs = frames(path, limit)
    if not recs:
        return []
    body, cut_body = bytearray(), bytearray()
    prev = recs[0][0]
    for i, (ts, _wire, data) in enumerate(recs):
        gap_ms = 255 if ts < prev else min((ts - prev) // 1000, 254)
        prev = ts
        data = data[:MAX_FRAME]
        record = bytes([gap_ms]) + struct.pack("!H", len(data)) + data
        body += bytes([dlt_index]) + record
        # snaplen-cut variant: cut 1..7 eighths in turn, every other record also claiming more
        cut_body += bytes([dlt_index | (1 + i % 7) << 4 | (i % 2) << 7]) + record
    return [cfg + body for cfg in METER_CONFIGS] + [METER_CONFIGS[0] + cut_body]


def cut_records(blob: bytes) -> int:
    """Records of a fuzz_meter input that are snaplen-cut (cut bits or a longer wire length)."""
    off, n = 2, 0
    while off + 4 <= len(blob):
        n += (blob[off] & 0xF0) != 0
        off += 4 + struct.unpack("!H", blob[off + 2:off + 4])[0]
    return n


def write_unique(out_dir: Path, blobs: list[bytes]) -> int:
    """Write each blob as a file named by its SHA-1 (duplicates collapse); returns files written."""
    written = 0
    for blob in blobs:
        target = out_dir / hashlib.sha1(blob).hexdigest()
        if not target.exists():
            target.write_bytes(blob)
            written += 1
    return written


def build(out_dir: Path, captures: list[Path], meter: bool = False,
          max_per_file: int = 200) -> int:
    """Fill ``out_dir`` with seeds from ``captures`` (unsupported link types are skipped)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    order = harness_dlts()
    written = 0
    for path in captures:
        try:
            dlt, _ = frames(path, 0)
        except pcapy.PcapError:
            continue  # not a capture
        if dlt not in order:
            continue
        index = order.index(dlt)
        if meter:
            written += write_unique(out_dir, meter_inputs(path, index, max_per_file))
        else:
            written += write_unique(out_dir, parse_inputs(path, index, max_per_file))
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="corpus directory to fill (created)")
    ap.add_argument("captures", type=Path, nargs="+", help="pcap/pcapng files to take frames from")
    ap.add_argument("--meter", action="store_true",
                    help="write fuzz_meter inputs (one multi-frame file per capture)")
    ap.add_argument("--max-per-file", type=int, default=200,
                    help="frames taken from each capture (default 200)")
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.captures if not p.is_file()]
    if missing:
        print(f"seed_corpus: not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    n = build(args.out_dir, args.captures, args.meter, args.max_per_file)
    print(f"seed_corpus: {n} inputs written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
