"""Run one child process and measure it: wall time and peak RSS.

Children are started through the tiny C launcher runrss.c, which fork()s, exec()s the command
and reports wait4()'s ru_maxrss: the largest process of the command's tree (not the sum of the
processes alive at once).  Measuring from Python directly would be wrong because ru_maxrss
survives exec(): a child forked from this (large) Python process reports at least its size.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Run:
    """One measured child run."""

    seconds: float
    max_rss_kb: int
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = float("nan")  # user + system time (wait4), NaN from an old runrss


def build_helper(name: str, out_dir: Path, libs: tuple[str, ...] = ()) -> Path:
    """Compile bench/capture/<name>.c with `cc -O2` into out_dir unless up to date; return the binary."""
    src = HERE / f"{name}.c"
    exe = out_dir / name
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        out_dir.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["cc", "-O2", "-Wall", "-o", str(exe), str(src), *libs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"building {src.name} failed (needs cc{' and libpcap-dev' if libs else ''}):"
                               f"\n{r.stderr}")
    return exe


def pin_prefix(cpu: int | None) -> list[str]:
    """`taskset -c CPU` when pinning is asked for and taskset exists, else nothing."""
    if cpu is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


def run_child(cmd: list[str], runrss: Path, cpu: int | None = 0, timeout: float | None = None) -> Run:
    """Run `cmd` (pinned to `cpu`) to completion under runrss; capture its output."""
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp) / "rss"
        proc = subprocess.Popen([str(runrss), str(res), *pin_prefix(cpu), *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"{cmd[0]} did not finish within {timeout:.0f} s") from None
        if not res.exists():
            raise RuntimeError(f"could not run {cmd[0]}: {err.decode(errors='replace').strip()}")
        rss, seconds, *cpu = res.read_text().split()
        return Run(float(seconds), int(rss), proc.returncode, out.decode(errors="replace"),
                   err.decode(errors="replace"), float(cpu[0]) if cpu else float("nan"))


def best_of(cmd: list[str], runrss: Path, repeat: int, cpu: int | None = 0, timeout: float | None = None,
            log=print, label: str = "") -> Run:
    """Run `cmd` `repeat` times and return the fastest run.

    Raises RuntimeError with the child's stderr if a run fails.
    """
    best: Run | None = None
    for i in range(repeat):
        r = run_child(cmd, runrss, cpu=cpu, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{label or cmd[0]} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
        log(f"  {label} run {i + 1}/{repeat}: {r.seconds:.3f} s (CPU {r.cpu_seconds:.3f} s), "
            f"peak RSS {r.max_rss_kb / 1024:.1f} MiB")
        if best is None or r.seconds < best.seconds:
            best = r
    assert best is not None
    return best
