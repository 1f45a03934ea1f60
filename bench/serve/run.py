"""Classification throughput of the serve path on one core, each runtime side by side.

Per batch of meter CSV rows, exactly what the sensor does: ``flows.meter_csv.parse_rows`` ->
``serve.model_source.verdicts`` (numpy preprocessing + forest + verdict frame) ->
``serve.verdict_log.VerdictLog.write`` (verdict CSV on disk).  Best of ``--repeat`` passes over
``--rows`` rows (at most 500 batches), the runtimes interleaved.  Rates are flows per CPU second
of the one pinned, single-threaded process (the machine is shared: CPU time is what the serve path
costs, wall time what it got); wall-clock flows/s are printed beside them.  The anchor is the
naive loop: the scikit-learn pipeline predicting one flow at a time (timed for ``--anchor-seconds``
of CPU and extrapolated)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.serve.models import SPECS, load_sample, loaded, meter_csv_batches, ranked_features, train
from flows.meter_csv import parse_rows
from pipeline.io import PROJECT_ROOT, shared_data_dir
from serve.model_source import verdicts
from serve.verdict_log import VerdictLog

OUT = PROJECT_ROOT / "bench" / "out" / "serve"
RUNTIMES = ("sklearn", "onnx")
TARGET = 200_000  # flows/s end to end with the tuned model (issue 7)


def serve_pass(
    model, batches: list[bytes], log_path: Path
) -> tuple[float, dict[str, float], list[np.ndarray]]:
    """One pass over every batch: (wall s, CPU s), wall seconds per stage, the predicted labels."""
    stages = {"parse": 0.0, "verdicts": 0.0, "write": 0.0}
    labels = []
    log = VerdictLog(log_path)
    start, cpu_start = time.perf_counter(), time.process_time()
    for block in batches:
        t0 = time.perf_counter()
        flows = parse_rows(block)
        t1 = time.perf_counter()
        frame = verdicts(model, flows)
        t2 = time.perf_counter()
        log.write(frame)
        t3 = time.perf_counter()
        stages["parse"] += t1 - t0
        stages["verdicts"] += t2 - t1
        stages["write"] += t3 - t2
        labels.append(frame["predicted"].to_numpy())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    log.close()
    return (wall, cpu), stages, labels


def naive_rate(pipeline_model, flows, seconds: float) -> float:
    """Flows per CPU second of predicting one flow at a time with the scikit-learn pipeline."""
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        pipeline_model.predict(flows.iloc[[n % len(flows)]])
        n += 1
    return n / (time.process_time() - start)


def forest_ms(model, x: np.ndarray, size: int, budget: float = 0.3) -> float:
    """Milliseconds of one forest call on ``size`` rows (best of the calls that fit in ``budget`` s)."""
    block = x[:size]
    best, spent = float("inf"), 0.0
    while spent < budget:
        took = _timed(lambda: model.predictor.forest.predict_proba(block))
        best, spent = min(best, took), spent + took
    return best * 1e3


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=200_000, help="meter rows per pass, at most 500 batches (default 200000)"
    )
    parser.add_argument(
        "--batch", default="64,1024,8192", help="batch sizes, comma separated (default 64,1024,8192)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="passes per setting, best kept (default 3)")
    parser.add_argument(
        "--anchor-seconds", type=float, default=1.5, help="time of the naive loop (default 1.5)"
    )
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (default 0; -1: no pinning)")
    parser.add_argument(
        "--sample", type=Path, default=None, help="engelen sample folder (default: shared data)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = parse_args(argv)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    sample = args.sample or shared_data_dir() / "cicids2017" / "engelen-sample"
    if not sample.is_dir():
        print(f"bench.serve: no engelen sample at {sample} (set NETSENTRY_SHARED_DATA or --sample)")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    frame, labels = load_sample(sample)
    ranked = ranked_features(frame, labels)
    sizes = [int(b) for b in args.batch.split(",")]
    print(
        f"bench.serve: {len(frame)} sample flows -> {args.rows} meter rows per pass, batches {sizes}, "
        f"best of {args.repeat}, pinned to CPU {args.cpu}, 1 thread per runtime"
    )
    header = (
        f"{'model':<6} {'runtime':<8} {'batch':>6} {'flows/s':>10} {'(wall)':>9} {'x naive':>8} "
        f"{'x target':>8}   {'parse':>6} {'verdicts':>8} {'write':>6}   forest ms/batch"
    )
    rows_out = []
    for spec in SPECS:
        model, features = train(spec, frame, labels, ranked)
        flows = parse_rows(meter_csv_batches(frame, min(len(frame), 20_000), 20_000)[0])
        naive = naive_rate(model, flows, args.anchor_seconds)
        print(
            f"\n{spec.name}: {spec.n_features} features, depth {spec.max_depth}, {spec.n_estimators} trees; "
            f"naive anchor (sklearn, one flow per predict): {naive:,.0f} flows/s of CPU"
        )
        print(header)
        models = {rt: loaded(model, spec.name, features, rt, OUT) for rt in RUNTIMES}
        x, _ = models["sklearn"].predictor.matrix(flows)
        for size in sizes:
            rows = min(args.rows, size * 500)  # small batches: fewer rows, same number of batches
            batches = meter_csv_batches(frame, rows, size)
            runs: dict[str, list] = {rt: [] for rt in RUNTIMES}
            for _ in range(args.repeat):  # runtimes interleaved: the shared machine's noise hits both
                for runtime, sensor_model in models.items():
                    runs[runtime].append(serve_pass(sensor_model, batches, OUT / "verdicts.csv"))
            reference = None
            for runtime, sensor_model in models.items():
                (wall, cpu), stages, predicted = min(runs[runtime], key=lambda r: r[0][1])
                predicted = np.concatenate(predicted)
                reference = predicted if reference is None else reference
                agree = float(np.mean(predicted == reference))
                rate = rows / cpu
                share = {k: 100 * v / wall for k, v in stages.items()}
                line = (
                    f"{spec.name:<6} {runtime:<8} {size:>6} {rate:>10,.0f} {rows / wall:>9,.0f} "
                    f"{rate / naive:>8,.0f} {rate / TARGET:>8.2f}   {share['parse']:>5.0f}% "
                    f"{share['verdicts']:>7.0f}% {share['write']:>5.0f}%   "
                    f"{forest_ms(sensor_model, x, size):.3f}"
                )
                if agree < 1.0:
                    line += f"   (labels agree with sklearn on {agree:.4%})"
                print(line, flush=True)
                rows_out.append((spec.name, runtime, size, rate))
    best = max((r for r in rows_out if r[0] == "tuned"), key=lambda r: r[3])
    print(
        f"\nbest tuned: {best[1]} at batch {best[2]}: {best[3]:,.0f} flows/s "
        f"({'meets' if best[3] >= TARGET else 'misses'} the {TARGET:,} flows/s target)"
    )
    return 0
