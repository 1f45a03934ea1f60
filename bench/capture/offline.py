"""Offline throughput of capture/flowmeter against its anchors, measured side by side in one run.

Tools, all on the same generated capture (see gen_capture.py), each pinned to CPU 0, best of
--repeat runs:
  * pcap_loop     bare libpcap pcap_next_ex loop (bench/capture/pcap_loop.c): the ceiling
  * flowmeter     capture/flowmeter -r FILE -o /dev/null (CSV formatted, not stored), each profile,
                  and the clean profile built with the former fixed-seed hash (cost of the keyed one)
  * nfstream      NFStream, statistical_analysis=True, n_dissections=0, n_meters=1
  * cicflowmeter  the Python cicflowmeter 0.2.0, on a slice (first --cic-packets packets) only,
                  because it runs at a few thousand packets/s
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.capture import anchors, meterstats
from bench.capture.gen_capture import OUT_DIR, ensure_capture
from bench.capture.measure import Run, best_of, build_helper
from bench.capture.pcapio import write_head

ROOT = Path(__file__).resolve().parents[2]
CAPTURE_DIR = ROOT / "capture"

TARGET_MPPS = 3.0
TARGET_X_NFSTREAM = 50.0
TARGET_X_LOOP = 2.0
PROFILES = ("cic2017", "engelen", "clean")


@dataclass
class Row:
    """One line of the result table."""

    tool: str
    input: str
    packets: int
    run: Run
    flows: int | None = None
    note: str = ""

    @property
    def pps(self) -> float:
        """Packets per second of the best run."""
        return self.packets / self.run.seconds

    @property
    def cpu_pps(self) -> float:
        """Packets per CPU second (user + system) of the best run."""
        return self.packets / self.run.cpu_seconds


def build_flowmeter() -> Path | None:
    """`make -C capture`; return the meter's path, or None (with a message) if it cannot be built."""
    r = subprocess.run(["make", "-C", str(CAPTURE_DIR)], capture_output=True, text=True)
    exe = CAPTURE_DIR / "flowmeter"
    if r.returncode != 0 or not exe.exists():
        print(f"warning: `make -C capture` failed, flowmeter not measured:\n{(r.stderr or r.stdout)[-1500:]}")
        return None
    return exe


def build_fixed_hash_meter() -> Path | None:
    """`make -C capture build/flowmeter-fixedhash`: the meter with the former unkeyed hash (bench only)."""
    r = subprocess.run(["make", "-C", str(CAPTURE_DIR), "build/flowmeter-fixedhash"], capture_output=True,
                       text=True)
    exe = CAPTURE_DIR / "build" / "flowmeter-fixedhash"
    if r.returncode != 0 or not exe.exists():
        print("warning: fixed-hash meter not built, hash cost not measured:\n"
              f"{(r.stderr or r.stdout)[-800:]}")
        return None
    return exe


def _profiles(text: str) -> list[str]:
    names = [p for p in text.split(",") if p]
    bad = [p for p in names if p not in PROFILES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"profiles are {', '.join(PROFILES)}; got {text!r}")
    return names


def measure_meter(exe: Path, profile: str, label: str, pcap: Path, total: int, runrss: Path, repeat: int,
                  cpu: int | None, out: Path) -> Row:
    """Best of `repeat` runs of the meter on the whole capture, CSV to /dev/null."""
    print(f"measuring flowmeter --profile {profile}{label} ...")
    stats_path = out / f"flowmeter-{profile}{'-fixedhash' if label else ''}-stats.json"
    cmd = [str(exe), "-r", str(pcap), "--profile", profile, "-o", "/dev/null",
           "--stats-json", str(stats_path)]
    r = best_of(cmd, runrss, repeat, cpu, log=print, label=f"flowmeter {profile}{label}")
    stats = meterstats.load(stats_path)
    flows = meterstats.find(stats, meterstats.FLOWS_KEYS)
    peak = meterstats.find(stats, meterstats.PEAK_FLOWS_KEYS)
    seen = meterstats.find(stats, meterstats.PACKETS_KEYS)
    if peak:
        note = f"{r.max_rss_kb * 1024 / peak:,.0f} bytes per active flow (peak RSS / {peak:,} max " \
               f"concurrent flows)"
    elif flows:
        note = f"{r.max_rss_kb * 1024 / flows:,.0f} bytes per flow (peak RSS / {flows:,} flows " \
               f"emitted; no max-concurrent count in the stats JSON)"
    else:
        note = "stats JSON has no flow count"
    if seen is not None and seen != total:
        note += f"; meter reports {seen:,} packets read of {total:,}"
    return Row(f"flowmeter ({profile}{label})", "full", total, r, flows, note + "; CSV written to /dev/null")


def _mib(kb: int) -> str:
    return f"{kb / 1024:.1f} MiB"


def print_table(rows: list[Row], meter: Row | None) -> None:
    """The result table: tool, input, packets, seconds, packets/s, ratio, peak RSS, flows."""
    head = f"{'tool':<36} {'input':<6} {'packets':>10} {'seconds':>8} {'CPU s':>7} {'packets/s':>11} " \
           f"{'flowmeter/x':>11} {'peak RSS':>11} {'flows':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = f"{meter.pps / r.pps:.2f}x" if meter else "n/a"
        flows = f"{r.flows:,}" if r.flows is not None else "-"
        print(f"{r.tool:<36} {r.input:<6} {r.packets:>10,} {r.run.seconds:>8.3f} {r.run.cpu_seconds:>7.3f} "
              f"{r.pps:>11,.0f} {ratio:>11} {_mib(r.run.max_rss_kb):>11} {flows:>9}")
    for r in rows:
        if r.note:
            print(f"  {r.tool}: {r.note}")


def print_targets(meter: Row | None, loop: Row | None, nfs: Row | None, profile: str) -> None:
    """PASS/MISS against the issue's targets (information only, never an assertion)."""
    print("\nTargets (information only):")

    def line(name: str, ok: bool | None, detail: str) -> None:
        verdict = "n/a " if ok is None else ("PASS" if ok else "MISS")
        print(f"  [{verdict}] {name:<38} {detail}")

    if meter is None:
        line(f"flowmeter >= {TARGET_MPPS:g} Mpps", None, "flowmeter not measured")
        return
    mpps = meter.pps / 1e6
    line(f"flowmeter >= {TARGET_MPPS:g} Mpps ({profile})", mpps >= TARGET_MPPS, f"{mpps:.2f} Mpps")
    if nfs:
        x = meter.pps / nfs.pps
        line(f"flowmeter >= {TARGET_X_NFSTREAM:g}x NFStream", x >= TARGET_X_NFSTREAM,
             f"{x:.1f}x wall, {meter.cpu_pps / nfs.cpu_pps:.1f}x CPU")
    else:
        line(f"flowmeter >= {TARGET_X_NFSTREAM:g}x NFStream", None, "NFStream not measured")
    if loop:
        x = loop.pps / meter.pps
        line(f"flowmeter within {TARGET_X_LOOP:g}x of bare loop", x <= TARGET_X_LOOP,
             f"bare loop / flowmeter = {x:.2f}x wall, {loop.cpu_pps / meter.cpu_pps:.2f}x CPU")


def run(args: argparse.Namespace) -> int:
    """Measure everything and print the table."""
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    cpu = None if args.no_pin else 0
    pcap, meta = ensure_capture(args.packets, out)
    total = meta["packets"]
    print(f"capture: {pcap} — {total:,} packets, {meta['file_bytes'] / 1e6:.0f} MB, "
          f"mean frame {meta['mean_frame_bytes']} B, {meta['replays']} re-addressed replays of "
          f"{meta['template_packets']:,} packets from {meta['source_files']} shared captures")
    # Warm the page cache so that the first tool does not pay for the disk.
    with open(pcap, "rb") as fh:
        while fh.read(1 << 24):
            pass
    rows: list[Row] = []
    loop_row = nfs_row = None

    runrss = build_helper("runrss", out)
    loop = build_helper("pcap_loop", out, ("-lpcap",))
    print("measuring pcap_loop ...")
    r = best_of([str(loop), str(pcap)], runrss, args.repeat, cpu, log=print, label="pcap_loop")
    loop_row = Row("pcap_loop (ceiling)", "full", json.loads(r.stdout)["packets"], r)
    rows.append(loop_row)

    meter = build_flowmeter() if args.flowmeter is None else args.flowmeter
    meter_rows: dict[str, Row] = {}
    if meter is not None:
        variants = [(profile, meter, "") for profile in args.profiles]
        fixed = None if args.flowmeter is not None or args.skip_hash_cost else build_fixed_hash_meter()
        if fixed is not None:  # the cost of the keyed hash: the same meter with the former fixed hash
            variants.append(("clean", fixed, ", fixed-seed hash"))
        for profile, exe, label in variants:
            row = measure_meter(exe, profile, label, pcap, total, runrss, args.repeat, cpu, out)
            meter_rows[f"{profile}{label}"] = row
            rows.append(row)
    meter_row = meter_rows.get(args.profiles[0])

    cic_slice = None
    if not args.skip_anchors:
        anchors.ensure_venv()
        print("measuring NFStream ...")
        r = best_of(anchors.nfstream_cmd(pcap), runrss, args.repeat, cpu, log=print, label="nfstream")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        nfs_row = Row("nfstream 6.6.0", "full", total, r, res["flows"],
                      f"{res['packets']:,} packets in flows; n_meters=1, n_dissections=0; "
                      f"RSS = largest process of its tree")
        rows.append(nfs_row)

        cic_slice = out / f"slice-{args.cic_packets}.pcap"
        n_slice = write_head(pcap, cic_slice, args.cic_packets)
        print(f"measuring cicflowmeter on the first {n_slice:,} packets ...")
        csv_out = out / "cicflowmeter-slice.csv"
        r = best_of(anchors.cicflowmeter_cmd(cic_slice, csv_out), runrss, args.repeat, cpu, log=print,
                       label="cicflowmeter")
        with open(csv_out) as fh:
            cic_flows = max(sum(1 for _ in fh) - 1, 0)
        rows.append(Row("cicflowmeter 0.2.0", "slice", n_slice, r, cic_flows,
                        f"first {n_slice:,} packets only (too slow for the full file); CSV to disk"))
        if meter is not None:
            profile = args.profiles[0]
            r = best_of([str(meter), "-r", str(cic_slice), "--profile", profile, "-o", "/dev/null"],
                           runrss, args.repeat, cpu, log=print, label="flowmeter slice")
            rows.append(Row(f"flowmeter ({profile})", "slice", n_slice, r, None,
                            "same slice as cicflowmeter; process start-up dominates"))

    print(f"\nOffline throughput, best of {args.repeat}, "
          f"{'pinned to CPU 0 (taskset -c 0)' if cpu is not None else 'not pinned'}; "
          f"flowmeter/x = flowmeter packets/s (full file) / tool packets/s")
    print_table(rows, meter_row)
    for name, row in meter_rows.items():
        print_targets(row, loop_row, nfs_row, name)
    if "clean" in meter_rows and "clean, fixed-seed hash" in meter_rows:
        keyed, fixed = meter_rows["clean"], meter_rows["clean, fixed-seed hash"]
        print(f"\nKeyed hash (SipHash-1-3, per-run key) vs the former fixed-seed hash, clean profile: "
              f"{keyed.run.seconds:.3f} s vs {fixed.run.seconds:.3f} s "
              f"({(keyed.run.seconds / fixed.run.seconds - 1) * 100:+.1f}% time)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point of `python -m bench.capture`."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.capture",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The capture is bench/out/replay-<N>.pcap, built once from the shared captures "
               "(python -m bench.capture.gen_capture --help). Anchors live in bench/out/anchors-venv, "
               "created on first use from bench/capture/anchors.txt.")
    ap.add_argument("--packets", type=int, default=3_000_000,
                    help="packets in the generated capture (default 3,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the best is kept (default 3)")
    ap.add_argument("--skip-anchors", action="store_true",
                    help="measure only pcap_loop and flowmeter (no NFStream / cicflowmeter, no anchors venv)")
    ap.add_argument("--cic-packets", type=int, default=30_000,
                    help="slice size for the Python cicflowmeter (default 30,000)")
    ap.add_argument("--profiles", default=",".join(PROFILES), type=_profiles,
                    help="flowmeter feature profiles to measure, comma-separated (default: all three, "
                         "cic2017,engelen,clean); the first is the one compared with the anchors' slice")
    ap.add_argument("--skip-hash-cost", action="store_true",
                    help="do not measure the meter built with the former fixed-seed hash")
    ap.add_argument("--flowmeter", type=Path, default=None,
                    help="meter binary to measure (default: build capture/flowmeter with make)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the tools to CPU 0")
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR, help="work folder (default bench/out)")
    args = ap.parse_args(argv)
    if args.packets <= 0 or args.repeat <= 0 or args.cic_packets <= 0:
        ap.error("--packets, --repeat and --cic-packets must be positive")
    if args.flowmeter is not None and not args.flowmeter.is_file():
        ap.error(f"--flowmeter {args.flowmeter}: no such file")
    try:
        return run(args)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
