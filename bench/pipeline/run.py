"""Full-size training benchmark: wall time and peak RSS of `dvc repro` on a synthetic CICIDS2017.

1. Synthesises (once; reused while its manifest matches) a full-size set with :mod:`bench.pipeline.synth`
   (2,830,743 rows at the real class proportions by default) outside the repository.
2. Copies the project (``pipeline/``, ``conf/``, ``dvc.yaml``, DVC config) into a scratch folder,
   ``git init``s it, composes ``params.yaml`` with ``data.input_dir=<synthetic folder>`` plus any
   ``--override`` (the default config otherwise: sweep enabled, default grid), and runs
   ``dvc repro`` there, as a user would.
3. Measures the whole run's wall time, each stage's wall time (from DVC's "Running stage" lines,
   so DVC's hashing and caching of the stage's outputs is included) and the stage process's own
   lifetime, and peak RSS: the process tree polled every ``--interval`` s (summed over the tree,
   and per stage), plus wait4()'s ru_maxrss (largest single process) as a check.
4. Prints a table (stage, wall s, process s, peak RSS MiB, rows in/out) and the totals against
   the targets (15 min, 6 GiB) as ratios; writes ``bench/out/pipeline-<rows>.json`` and the full
   DVC log beside it.

Usage: ``nice -n 5 .venv/bin/python -m bench.pipeline [--rows N] [--override KEY=VALUE ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.pipeline import synth
from bench.pipeline.monitor import TreeMonitor
from pipeline.io import PROJECT_ROOT
from pipeline.scratch import copy_project

OUT_DIR = PROJECT_ROOT / "bench" / "out"
BIN = Path(sys.executable).parent
TARGET_SECONDS = 15 * 60
TARGET_BYTES = 6 * 2**30
MIB = 2**20
_RUNNING = re.compile(r"Running stage '([^']+)'")


def stage_modules(dvc_file: Path) -> dict[str, dict[str, Any]]:
    """The stages of ``dvc.yaml`` in file order (their cmd, deps, outs)."""
    return yaml.safe_load(dvc_file.read_text())["stages"]


def missing_stage_code(root: Path) -> list[str]:
    """Modules named by ``python -m pipeline.X`` stage commands that do not exist under ``root``."""
    missing = []
    for name, stage in stage_modules(root / "dvc.yaml").items():
        m = re.search(r"-m\s+pipeline\.(\w+)", str(stage.get("cmd", "")))
        if m and not (root / "pipeline" / f"{m.group(1)}.py").exists():
            missing.append(f"{name} (pipeline/{m.group(1)}.py)")
    return missing


def child_env() -> dict[str, str]:
    """Environment of the run: the venv first on PATH (stages say `python`), the copy's own MLflow store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def compose(root: Path, overrides: list[str]) -> None:
    """Write the copy's params.yaml from conf/ with ``overrides``; SystemExit with Hydra's message."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.params", *overrides],
        cwd=root,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"composing params with {overrides} failed:\n{proc.stderr.strip()[-2000:]}")


def run_repro(root: Path, log_path: Path, interval: float, timeout: float) -> dict[str, Any]:
    """Run `dvc repro` in ``root`` under the monitor; return timings, memory and the exit status."""
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(BIN / "dvc"), "repro"],
        cwd=root,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    monitor = TreeMonitor(proc.pid, interval).start()

    def read() -> None:
        assert proc.stdout is not None
        with log_path.open("w") as log:
            for raw in proc.stdout:
                text = raw.decode(errors="replace").rstrip("\n")
                lines.append((time.monotonic(), text))
                log.write(f"{time.monotonic() - t0:9.2f} {text}\n")
                log.flush()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    t_end = time.monotonic()
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    monitor.stop()

    starts = [(t, m.group(1)) for t, text in lines if (m := _RUNNING.search(text))]
    stages = []
    for i, (t, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else t_end
        mem = monitor.stages.get(name)
        process_s = None
        if mem and mem.first_seen is not None and mem.last_seen is not None:
            process_s = round(mem.last_seen - mem.first_seen + interval, 2)
        stages.append(
            {
                "stage": name,
                "wall_s": round(end - t, 2),
                "process_s": process_s,
                "peak_rss_mib": round(mem.peak_rss / MIB, 1) if mem else None,
                "peak_single_rss_mib": round(mem.peak_single / MIB, 1) if mem else None,
                "max_processes": mem.max_procs if mem else None,
            }
        )
    return {
        "returncode": proc.returncode,
        "killed_by_timeout": proc.returncode == -signal.SIGKILL,
        "wall_s": round(t_end - t0, 2),
        "before_first_stage_s": round(starts[0][0] - t0, 2) if starts else None,
        "stages": stages,
        "peak_tree_rss_mib": round(monitor.peak_total / MIB, 1),
        "peak_tree_rss_at_s": round(monitor.peak_total_at - t0, 1) if monitor.peak_total_at else None,
        "max_single_rss_mib_wait4": round(usage.ru_maxrss * 1024 / MIB, 1),  # Linux: ru_maxrss in KiB
        "samples": monitor.samples,
        "tail": [text for _, text in lines[-40:]],
    }


def _parquet_rows(path: Path) -> int | None:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows if path.exists() else None


def _rows(root: Path, paths: list[Any]) -> str:
    """Rows of the Parquet files among ``paths`` ('a+b' when several), or ''."""
    found = []
    for p in paths:
        name = next(iter(p)) if isinstance(p, dict) else str(p)
        if name.endswith(".parquet"):
            n = _parquet_rows(root / name)
            found.append(f"{n:,}" if n is not None else "?")
    return "+".join(found)


def _metrics(root: Path, stage: dict[str, Any]) -> dict[str, Any]:
    for m in stage.get("metrics", []):
        path = root / (next(iter(m)) if isinstance(m, dict) else str(m))
        if path.exists():
            return json.loads(path.read_text())
    return {}


_NOTES = ("rows_used", "n_features", "points", "max_depth", "n_estimators", "f1_macro", "accuracy")


def annotate(root: Path, result: dict[str, Any], input_rows: int) -> None:
    """Add rows in/out and a few metrics to each measured stage."""
    spec = stage_modules(root / "dvc.yaml")
    for st in result["stages"]:
        s = spec.get(st["stage"], {})
        st["rows_in"] = _rows(root, s.get("deps", [])) or (
            f"{input_rows:,} (CSV)" if st["stage"] == "clean" else ""
        )
        st["rows_out"] = _rows(root, s.get("outs", []))
        metrics = _metrics(root, s)
        notes = {k: metrics[k] for k in _NOTES if k in metrics and not isinstance(metrics[k], dict)}
        st["notes"] = ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in notes.items()
        )


def render(result: dict[str, Any]) -> str:
    """The human-readable table and totals."""
    rows_in, rows_out = "rows in", "rows out"
    head = (
        f"{'stage':<8} {'wall s':>8} {'proc s':>8} {'peak RSS MiB':>13} {rows_in:>22} {rows_out:>22}  notes"
    )
    out = [head, "-" * len(head)]
    if result.get("before_first_stage_s") is not None:
        out.append(
            f"{'(dvc)':<8} {result['before_first_stage_s']:>8.1f} {'':>8} {'':>13} {'':>22} {'':>22}  "
            "start-up, hashing the input folder"
        )
    for st in result["stages"]:
        proc_s = f"{st['process_s']:.1f}" if st["process_s"] is not None else "-"
        rss = f"{st['peak_rss_mib']:,.0f}" if st["peak_rss_mib"] is not None else "-"
        out.append(
            f"{st['stage']:<8} {st['wall_s']:>8.1f} {proc_s:>8} {rss:>13} {st.get('rows_in', ''):>22} "
            f"{st.get('rows_out', ''):>22}  {st.get('notes', '')}"
        )
    t = result["targets"]
    out.append("-" * len(head))
    out.append(
        f"total wall  {result['wall_s']:,.1f} s ({result['wall_s'] / 60:.1f} min) / target "
        f"{TARGET_SECONDS // 60} min = {t['wall_ratio']:.2f}  {'PASS' if t['wall_ratio'] <= 1 else 'MISS'}"
    )
    out.append(
        f"peak RSS    {result['peak_tree_rss_mib']:,.0f} MiB (process tree, polled) / target 6 GiB = "
        f"{t['rss_ratio']:.2f}  {'PASS' if t['rss_ratio'] <= 1 else 'MISS'}; largest single process "
        f"(wait4) {result['max_single_rss_mib_wait4']:,.0f} MiB"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--rows",
        type=synth._positive_int,
        default=synth.FULL_TOTAL,
        help=f"synthetic rows (default {synth.FULL_TOTAL:,})",
    )
    ap.add_argument("--seed", type=int, default=42, help="seed of the synthesiser")
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="synthetic folder (default $NETSENTRY_BENCH_DIR/synth-ROWS-sSEED, made when missing)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=synth.DEFAULT_SCRATCH / "project",
        help="scratch copy of the project (replaced on every run; default %(default)s)",
    )
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Hydra override for params.yaml, repeatable (e.g. sweep.enabled=false)",
    )
    ap.add_argument("--interval", type=float, default=0.2, help="RSS polling interval in seconds")
    ap.add_argument(
        "--timeout", type=float, default=3 * 3600, help="kill `dvc repro` after this many seconds"
    )
    ap.add_argument("--nice", type=int, default=5, help="niceness added to this process and its children")
    ap.add_argument(
        "--out", type=Path, default=None, help="result JSON (default bench/out/pipeline-ROWS.json)"
    )
    args = ap.parse_args(argv)
    if args.interval <= 0 or args.timeout <= 0:
        ap.error("--interval and --timeout must be positive")
    bad = [o for o in args.override if "=" not in o]
    if bad:
        ap.error(f"--override needs KEY=VALUE, got {bad}")
    missing = missing_stage_code(PROJECT_ROOT)
    if missing:
        print(f"cannot run: stage code not written yet: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.nice:
        os.nice(args.nice)

    data = args.data or synth.default_out_dir(args.rows, args.seed)
    t0 = time.monotonic()
    manifest = synth.ensure(data, args.rows, args.seed)
    synth_s = round(time.monotonic() - t0, 1)
    root = args.work.resolve()
    copy_project(root)
    overrides = [f"data.input_dir={data.resolve()}", *args.override]
    compose(root, overrides)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = args.out or OUT_DIR / f"pipeline-{args.rows}.json"
    log_path = out.with_suffix(".log")
    print(f"dvc repro in {root} on {manifest['rows']:,} rows ({data}); log: {log_path}", flush=True)

    result = run_repro(root, log_path, args.interval, args.timeout)
    annotate(root, result, int(manifest["rows"]))
    result["targets"] = {
        "wall_s": TARGET_SECONDS,
        "rss_mib": TARGET_BYTES / MIB,
        "wall_ratio": round(result["wall_s"] / TARGET_SECONDS, 3),
        "rss_ratio": round(result["peak_tree_rss_mib"] * MIB / TARGET_BYTES, 3),
    }
    result.update(
        {
            "command": " ".join(["python -m bench.pipeline", *(argv if argv is not None else sys.argv[1:])]),
            "overrides": overrides,
            "data": str(data),
            "synth": {k: manifest[k] for k in ("rows", "seed", "bytes", "files", "class_counts", "seconds")},
            "synth_or_reuse_s": synth_s,
            "machine": {
                "cpus": os.cpu_count(),
                "mem_total_mib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MIB),
                "loadavg_at_end": os.getloadavg(),
                "python": platform.python_version(),
            },
            "interval_s": args.interval,
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"results: {out}")
    if result["returncode"] != 0:
        why = (
            "killed after --timeout" if result["killed_by_timeout"] else f"exit status {result['returncode']}"
        )
        if result["stages"]:
            why += f", in stage {result['stages'][-1]['stage']!r}"
        print(f"dvc repro FAILED ({why}); last lines:\n" + "\n".join(result["tail"]), file=sys.stderr)
        return 1
    return 0
