"""The whole sensor, measured: verdict latency at light load, and the offline rate against the meter.

``python -m bench.serve.sensor [--skip-latency] [--skip-offline]``

1. **Latency** (root: network namespaces ``nsS*``): ``netsentry serve -i`` listens in a victim
   namespace; an attacker namespace sends ``--flows`` one-packet UDP flows, ``--gap`` seconds
   apart (light load).  Each flow ends by the meter's idle timeout (``--flow-timeout``) after its
   packet, so a flow's end is ``send time + timeout``; its verdict time is when its row appears in
   the verdict CSV (polled every millisecond).  The same traffic is measured against the meter
   alone (its CSV rows on a pipe), so the table shows what the meter's own timing costs and what
   the sensor (batching, model, verdict log) adds.  Prints median, p99 and max beyond the timeout.
2. **Offline rate**: ``netsentry classify`` on the ``--packets`` benchmark capture
   (``bench/capture/gen_capture.py``) against ``capture/flowmeter -r`` alone writing its CSV to a
   file, wall time and flows/s, plus the sensor's fixed start-up cost (a 9-flow capture).

The model is the benchmark's "tuned" forest (``bench/serve/models.py``: 18 features, depth 12,
30 trees, trained on the shared engelen sample), registered with the pipeline's own
``log_and_register`` (so it carries its ONNX conversion) in a temporary SQLite store.
Figures only, no assertions: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.capture.gen_capture import ensure_capture
from pipeline.io import PROJECT_ROOT, shared_data_dir

METER = PROJECT_ROOT / "capture" / "flowmeter"
NETSENTRY = str(Path(sys.executable).with_name("netsentry"))

# One UDP packet per flow to ports first.., `gap` seconds apart; prints "port send_time" per flow.
SENDER = """
import socket, sys, time
addr, first, count, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(first, first + count):
    s.sendto(b"latency probe", (addr, port))
    print(port, repr(time.time()), flush=True)
    time.sleep(gap)
"""


#: The modules the sensor imports before it reads a flow (the model source loads MLflow's SQL store).
_IMPORTS = ("import serve.cli, serve.model_source, serve.alerts, mlflow.tracking, "
            "mlflow.store.tracking.sqlalchemy_store")


def register_tuned_model(store: Path) -> str:
    """Train the benchmark's tuned forest and register it as ``bench@champion``; returns the URI."""
    import mlflow

    from bench.serve.models import SPECS, load_sample, ranked_features, train
    from pipeline.model import TRUSTED_TYPES
    from pipeline.tracking import log_and_register

    frame, labels = load_sample(shared_data_dir() / "cicids2017" / "engelen-sample")
    spec = next(s for s in SPECS if s.name == "tuned")
    model, features = train(spec, frame, labels, ranked_features(frame, labels))
    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("bench-sensor", artifact_location=(store / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp):
        log_and_register(
            model,
            frame.head(5),
            {"flow_profile": "engelen", "features": ",".join(features)},
            {"registered_model": "bench", "alias": "champion"},
            list(TRUSTED_TYPES),
        )
    return uri


def quantiles(values: list[float]) -> str:
    """median / p99 / max in milliseconds."""
    a = np.asarray(values) * 1e3
    return f"median {np.median(a):7.1f} ms   p99 {np.percentile(a, 99):7.1f} ms   max {a.max():7.1f} ms"


class Arrivals:
    """When each destination port's row first appeared (port column 4 of meter and verdict rows)."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self._tail = b""

    def feed(self, block: bytes, now: float) -> None:
        data = self._tail + block
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        for line in data[:cut].splitlines():
            fields = line.split(b",")
            if len(fields) > 4 and fields[4].isdigit():
                self.seen.setdefault(int(fields[4]), now)


def send_flows(net, first: int, count: int, gap: float) -> dict[int, float]:  # noqa: ANN001
    """Send the probe flows from the attacker; {port: send time}."""
    from tests.serve.netns import VICTIM_ADDR

    proc = net.run(
        net.attacker,
        sys.executable,
        "-c",
        SENDER,
        VICTIM_ADDR,
        str(first),
        str(count),
        str(gap),
        timeout=count * gap + 60,
    )
    if proc.returncode != 0:
        raise SystemExit(f"sender failed: {proc.stderr}")
    return {int(p): float(t) for p, t in (line.split() for line in proc.stdout.splitlines())}


def latencies(sent: dict[int, float], seen: dict[int, float], timeout: float) -> list[float]:
    """Seconds from each flow's end (send + idle timeout) to its row; missing rows are reported."""
    missing = sorted(set(sent) - set(seen))
    if missing:
        print(f"   {len(missing)} of {len(sent)} flows never appeared (first: {missing[:5]})")
    return [seen[p] - (t + timeout) for p, t in sent.items() if p in seen]


def meter_alone(net, args: argparse.Namespace) -> list[float]:  # noqa: ANN001
    """Latency of the meter's own rows (stdout pipe), same traffic."""
    proc = subprocess.Popen(
        [
            *net.exec_prefix(net.victim),
            str(METER),
            "-i",
            net.victim_if,
            "--profile",
            "engelen",
            "--flow-timeout",
            str(args.flow_timeout),
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    arrivals = Arrivals()

    def read() -> None:
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        while block := os.read(fd, 1 << 16):
            arrivals.feed(block, time.time())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1.5)
    sent = send_flows(net, 20000, args.flows, args.gap)
    time.sleep(args.flow_timeout + 3)
    proc.terminate()
    proc.wait(timeout=30)
    reader.join(timeout=5)
    return latencies(sent, arrivals.seen, args.flow_timeout)


def sensor(net, store_uri: str, work: Path, args: argparse.Namespace) -> list[float]:  # noqa: ANN001
    """Latency of the sensor's verdict rows (verdict CSV polled every millisecond), same traffic."""
    from tests.serve.sensor_run import Daemon, Store

    out = work / "verdicts.csv"
    daemon = Daemon(
        Store(store_uri, work / "cache", work),
        work,
        "-i",
        net.victim_if,
        "--model",
        "models:/bench@champion",
        "-o",
        str(out),
        f"serve.meter.flow_timeout={args.flow_timeout}",
        f"serve.batch.max_wait_ms={args.max_wait_ms}",
        f"serve.batch.when_idle={args.when_idle}",
        "serve.model.poll_seconds=0",
        prefix=net.exec_prefix(net.victim),
    )
    arrivals = Arrivals()
    stop = threading.Event()

    def poll() -> None:
        while not out.exists() and not stop.is_set():
            time.sleep(0.001)
        with open(out, "rb") as fh:
            while not stop.is_set():
                block = fh.read()
                if block:
                    arrivals.feed(block, time.time())
                else:
                    time.sleep(0.001)

    try:
        daemon.wait_for("meter running", timeout=180)
        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        time.sleep(1.5)
        sent = send_flows(net, 30000, args.flows, args.gap)
        time.sleep(args.flow_timeout + 3)
    finally:
        stop.set()
        daemon.stop()
    return latencies(sent, arrivals.seen, args.flow_timeout)


def run_latency(store_uri: str, work: Path, args: argparse.Namespace) -> None:
    from tests.serve.netns import lab

    print(
        f"\n== latency: {args.flows} one-packet flows {args.gap * 1e3:.0f} ms apart, flow timeout "
        f"{args.flow_timeout} s, batch max wait {args.max_wait_ms} ms, when_idle {args.when_idle}; "
        "time beyond the timeout"
    )
    with lab() as net:
        alone = meter_alone(net, args)
        print(f"meter alone (row on its stdout)     {quantiles(alone)}")
        full = sensor(net, store_uri, work, args)
        print(f"sensor (verdict row in the CSV)     {quantiles(full)}")


@dataclass
class Timing:
    """Wall and CPU (user + system, the process and its children) seconds of one command."""

    wall: float
    cpu: float


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[Timing, subprocess.CompletedProcess]:
    """Run ``cmd`` to completion; CPU time is reported too because the machine may be shared."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(elapsed, cpu), proc


def run_offline(store_uri: str, work: Path, args: argparse.Namespace) -> None:
    capture, meta = ensure_capture(args.packets)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri}
    common = [
        f"serve.model.cache_dir={work / 'cache'}",
        f"serve.alerts.sinks.eve.path={work / 'eve.json'}",
        f"serve.batch.when_idle={args.when_idle}",
        "--model",
        args.model or "models:/bench@champion",
    ]
    small = shared_data_dir() / "pcaps" / "cicids2017" / "WebattackSQLinj.pcap"
    start_t, _ = timed([NETSENTRY, "classify", str(small), "-o", str(work / "small.csv"), *common], env)
    # what the start-up is made of: the imports alone (skops + scikit-learn, MLflow + its SQL store)
    imports_t, _ = timed([sys.executable, "-c", _IMPORTS], {**env, "PYTHONPATH": str(PROJECT_ROOT)})
    sensor_t, proc = timed([NETSENTRY, "classify", str(capture), "-o", str(work / "v.csv"), *common], env)
    detections = next((ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("alerts ")), "?")
    model_line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("model ")), "")
    runtime = model_line.split("runtime ")[1].split(")")[0] if "runtime " in model_line else "?"
    profile = model_line.split("profile ")[1].split(",")[0] if "profile " in model_line else "engelen"
    # the anchor: the meter alone, in the model's profile (what the sensor runs it in)
    meter_cmd = [str(METER), "-r", str(capture), "--profile", profile, "-q", "-o", str(work / "m.csv")]
    meter_t, _ = timed(meter_cmd)
    flows = sum(1 for _ in open(work / "m.csv", "rb")) - 1
    print(
        f"\n== offline rate: {capture.name} ({meta['packets']:,} packets, {flows:,} flows), model runtime "
        f"{runtime}; the sensor's start-up (MLflow, model load: a 9-flow capture) {start_t.wall:.2f} s wall, "
        f"{start_t.cpu:.2f} s CPU (of which the imports alone {imports_t.wall:.2f} s wall, "
        f"{imports_t.cpu:.2f} s CPU), is subtracted in the last two columns"
    )
    print(f"{'':44}{'wall s':>8}{'flows/s':>12}{'CPU s':>8}{'flows/CPU s':>13}"
          f"{'x meter wall':>14}{'x meter CPU':>13}")
    rows = (
        ("meter alone (-r, CSV to a file)", meter_t, False),
        (f"netsentry classify ({detections} detections)", sensor_t, True),
    )
    for label, t, sensor in rows:
        wall = t.wall - (start_t.wall if sensor else 0)
        cpu = t.cpu - (start_t.cpu if sensor else 0)
        print(f"{label:44}{t.wall:8.2f}{flows / t.wall:12,.0f}{t.cpu:8.2f}{flows / t.cpu:13,.0f}"
              f"{wall / meter_t.wall:14.2f}{cpu / meter_t.cpu:13.2f}")
    # what became of the alerts (sent, and dropped when a sink could not keep up)
    print(next((ln for ln in proc.stdout.splitlines() if ln.startswith("alerts ")), "alerts: ?"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.serve.sensor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--flows", type=int, default=200, help="probe flows for the latency run (default 200)")
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between probe flows (default 0.05)")
    ap.add_argument("--flow-timeout", type=float, default=2.0, help="meter idle timeout, s (default 2)")
    ap.add_argument("--max-wait-ms", type=float, default=50, help="batch max wait (default 50 = config)")
    ap.add_argument(
        "--when-idle",
        choices=("true", "false"),
        default="true",
        help="serve.batch.when_idle: classify as soon as nothing more waits (default true, as the config)",
    )
    ap.add_argument("--packets", type=int, default=3_000_000, help="offline capture size (default 3M)")
    ap.add_argument("--store", help="tracking store/server with the model to measure offline, e.g. the "
                    "project's own sqlite:///$PWD/mlflow.db after `make run` (default: a temporary store "
                    "with the tuned model)")
    ap.add_argument("--model", help="model URI in --store (default models:/bench@champion); the project's "
                    "models:/netsentry@champion flags most of the benchmark capture: a flood of detections")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-offline", action="store_true")
    args = ap.parse_args(argv)
    if args.store and not args.skip_latency:
        ap.error("--store measures the offline rate only: add --skip-latency")
    if not METER.is_file():
        raise SystemExit(f"{METER} not built: make meter")
    with tempfile.TemporaryDirectory(prefix="nsS-bench-") as tmp:
        work = Path(tmp)
        if args.store:
            store_uri = args.store
        else:
            print("training and registering the tuned model ...", flush=True)
            store_uri = register_tuned_model(work)
        if not args.skip_latency:
            if os.geteuid() != 0:
                print("latency: skipped (needs root for network namespaces)")
            else:
                run_latency(store_uri, work, args)
        if not args.skip_offline:
            run_offline(store_uri, work, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
