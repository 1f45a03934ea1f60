"""Live capture benchmark: the flow meter on one end of a veth pair, tcpreplay on the other.

Two network namespaces (nsbench-tx, nsbench-rx) joined by a veth pair (nsbench-tx0 <-> nsbench-rx0,
MTU 65535 so that the captures' large frames fit, IPv6 off so the kernel adds no traffic of its
own).  The meter captures on nsbench-rx0 (`flowmeter -i`, pinned to CPU 0), tcpreplay sends a
capture on nsbench-tx0 (pinned to CPU 1), the meter is stopped with SIGINT and its --stats-json
gives packets seen and `kernel_drops`.  Rates are tried from fastest (--topspeed) down, and the
highest rate with zero kernel drops is reported.  All traffic stays inside the two namespaces,
which are deleted in `finally`.  Needs root (CAP_NET_ADMIN), iproute2 and tcpreplay.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.capture import meterstats
from bench.capture.gen_capture import OUT_DIR, ensure_capture
from bench.capture.measure import pin_prefix

ROOT = Path(__file__).resolve().parents[2]
NS_TX, NS_RX = "nsbench-tx", "nsbench-rx"
IF_TX, IF_RX = "nsbench-tx0", "nsbench-rx0"


@dataclass
class Trial:
    """One replay at one rate."""

    rate: str
    sent: int
    failed: int
    seconds: float
    pps: float
    seen: int | None
    kernel_drops: int | None
    meter_rc: int


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def teardown() -> None:
    """Delete the benchmark namespaces (the veth pair goes with them); quiet if absent."""
    for ns in (NS_TX, NS_RX):
        _ip("netns", "del", ns, check=False)


def setup() -> None:
    """Create the two namespaces and the veth pair between them, up, MTU 65535, IPv6 off."""
    teardown()  # leftovers of an interrupted earlier run of this script
    _ip("netns", "add", NS_TX)
    _ip("netns", "add", NS_RX)
    _ip("link", "add", IF_TX, "netns", NS_TX, "type", "veth", "peer", "name", IF_RX, "netns", NS_RX)
    for ns, ifname in ((NS_TX, IF_TX), (NS_RX, IF_RX)):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1"], capture_output=True, check=False)
        _ip("-n", ns, "link", "set", ifname, "mtu", "65535")
        _ip("-n", ns, "link", "set", ifname, "up")


def _parse_tcpreplay(out: str) -> tuple[int, int, float, float]:
    """(sent, failed, seconds, pps) from tcpreplay's summary."""
    m = re.search(r"Actual:\s*(\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds", out)
    rated = re.search(r"Rated:.*?([\d.]+) pps", out)
    failed = re.search(r"Failed packets:\s*(\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read tcpreplay's summary:\n{out[-1500:]}")
    sent, seconds = int(m.group(1)), float(m.group(3))
    pps = float(rated.group(1)) if rated else (sent / seconds if seconds else 0.0)
    return sent, int(failed.group(1)) if failed else 0, seconds, pps


def trial(meter: Path, pcap: Path, rate: str, work: Path, profile: str, settle: float) -> Trial:
    """Start the meter on the rx end, replay `pcap` at `rate` on the tx end, stop the meter, read stats."""
    stats_path = work / "live-stats.json"
    stats_path.unlink(missing_ok=True)
    meter_cmd = ["ip", "netns", "exec", NS_RX, *pin_prefix(0), str(meter), "-i", IF_RX, "--profile", profile,
                 "-o", str(work / "live-flows.csv"), "--stats-json", str(stats_path)]
    mproc = subprocess.Popen(meter_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(settle)  # let the meter open the interface before the first packet
        if mproc.poll() is not None:
            raise RuntimeError(f"flowmeter exited early ({mproc.returncode}): {mproc.stderr.read()[-1500:]}")
        speed = ["--topspeed"] if rate == "topspeed" else [f"--pps={rate}"]
        replay_cmd = ["ip", "netns", "exec", NS_TX, *pin_prefix(1), "tcpreplay", "-q", "--no-flow-stats",
                      "-i", IF_TX, *speed, str(pcap)]
        rp = subprocess.run(replay_cmd, capture_output=True, text=True)
        if rp.returncode != 0 and "Actual:" not in rp.stdout:
            raise RuntimeError(f"tcpreplay failed: {(rp.stderr or rp.stdout)[-1500:]}")
        sent, failed, seconds, pps = _parse_tcpreplay(rp.stdout + rp.stderr)
        time.sleep(settle)  # let the meter drain its ring before stopping it
    finally:
        if mproc.poll() is None:
            mproc.send_signal(signal.SIGINT)
        try:
            mproc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            mproc.kill()
            mproc.wait()
    stats = meterstats.load(stats_path)
    if not stats:
        raise RuntimeError(f"flowmeter wrote no stats JSON (exit {mproc.returncode}): "
                           f"{mproc.stderr.read()[-1500:]}")
    return Trial(rate, sent, failed, seconds, pps, meterstats.find(stats, meterstats.PACKETS_KEYS),
                 meterstats.find(stats, meterstats.KERNEL_DROP_KEYS), mproc.returncode)


def print_table(trials: list[Trial]) -> None:
    """One line per trial."""
    head = f"{'tcpreplay rate':<15} {'sent':>10} {'failed':>7} {'seconds':>8} {'sent pps':>11} " \
           f"{'meter seen':>11} {'seen/sent':>9} {'kernel drops':>12} {'meter rc':>8}"
    print(head)
    print("-" * len(head))
    for t in trials:
        seen = f"{t.seen:,}" if t.seen is not None else "?"
        ratio = f"{t.seen / t.sent:.4f}" if t.seen is not None and t.sent else "?"
        drops = f"{t.kernel_drops:,}" if t.kernel_drops is not None else "?"
        print(f"{t.rate:<15} {t.sent:>10,} {t.failed:>7,} {t.seconds:>8.2f} {t.pps:>11,.0f} {seen:>11} "
              f"{ratio:>9} {drops:>12} {t.meter_rc:>8}")


def preflight() -> str | None:
    """Why this benchmark cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (it creates network namespaces and a veth pair): run it with sudo"
    for tool in ("ip", "tcpreplay"):
        if shutil.which(tool) is None:
            pkg = "iproute2" if tool == "ip" else "tcpreplay"
            return f"`{tool}` not found: apt-get install -y {pkg}"
    return None


def main(argv: list[str] | None = None) -> int:
    """CLI entry point of `python -m bench.capture.live_veth`."""
    ap = argparse.ArgumentParser(prog="python -m bench.capture.live_veth", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=500_000,
                    help="packets to replay per trial, from the generated capture (default 500,000)")
    ap.add_argument("--rates", default="topspeed,800000,400000,200000,100000,50000",
                    help="comma-separated rates to try, fastest first: 'topspeed' or packets/s "
                         "(default %(default)s)")
    ap.add_argument("--all-rates", action="store_true",
                    help="try every rate instead of stopping at the first one without kernel drops")
    ap.add_argument("--profile", default="cic2017", choices=["cic2017", "engelen", "clean"])
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to wait after starting the meter and after the replay (default 1)")
    ap.add_argument("--flowmeter", type=Path, default=ROOT / "capture" / "flowmeter",
                    help="meter binary (default capture/flowmeter, built with make -C capture)")
    args = ap.parse_args(argv)
    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    for r in rates:
        if r != "topspeed" and not (r.isdigit() and int(r) > 0):
            ap.error(f"--rates: {r!r} is neither 'topspeed' nor a positive packets/s number")
    if args.packets <= 0:
        ap.error("--packets must be positive")
    why = preflight()
    if why:
        print(f"live_veth: {why}", file=sys.stderr)
        return 2
    if args.flowmeter == ROOT / "capture" / "flowmeter":
        mk = subprocess.run(["make", "-C", str(ROOT / "capture")], capture_output=True, text=True)
        if mk.returncode != 0:
            err = (mk.stderr or mk.stdout)[-1500:]
            print(f"live_veth: `make -C capture` failed:\n{err}", file=sys.stderr)
            return 1
    if not args.flowmeter.is_file():
        print(f"live_veth: flow meter not found at {args.flowmeter}", file=sys.stderr)
        return 1
    pcap, meta = ensure_capture(args.packets, OUT_DIR)
    print(f"replaying {pcap} ({meta['packets']:,} packets, mean frame {meta['mean_frame_bytes']} B) "
          f"from {NS_TX}/{IF_TX} to the meter on {NS_RX}/{IF_RX}")
    trials: list[Trial] = []
    try:
        setup()
        for rate in rates:
            t = trial(args.flowmeter, pcap, rate, OUT_DIR, args.profile, args.settle)
            trials.append(t)
            print(f"  {rate}: sent {t.sent:,} at {t.pps:,.0f} pps, meter saw {t.seen}, "
                  f"kernel drops {t.kernel_drops}")
            if t.kernel_drops == 0 and not args.all_rates:
                break
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        print(f"live_veth: {exc} {detail}".strip(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        teardown()
    print(f"\nLive capture on veth (meter pinned to CPU 0, tcpreplay to CPU 1, {meta['packets']:,} packets "
          f"per trial, profile {args.profile})")
    print_table(trials)
    clean = [t for t in trials if t.kernel_drops == 0]
    if clean:
        best = max(clean, key=lambda t: t.pps)
        print(f"\nhighest rate with zero kernel drops: {best.pps:,.0f} pps (tcpreplay {best.rate}), "
              f"meter saw {best.seen} of {best.sent:,} sent")
    else:
        print("\nno tried rate was free of kernel drops: try lower --rates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
