"""Run ``capture/flowmeter`` as a child and read its CSV stream as it is written.

The meter is started in the model's flow profile, on a capture file (``-r``) or an interface
(``-i``, optional BPF filter).  Its stdout is read in blocks; each block is cut at the last
newline and the complete rows are parsed with :func:`flows.meter_csv.parse_rows`, so the sensor
sees exactly the types the pipeline trained on.  Statistics arrive on stderr as JSON lines.

If a live meter dies unexpectedly, :class:`Meter` logs why (exit status or signal and its last
stderr lines) and restarts it with exponential backoff, counting restarts.  A meter that fails
before writing its header (unknown interface, no permission, corrupt capture, a refused option)
raises :class:`MeterError` with the meter's own reason instead, as one line
(:func:`meter_reason`).  What the meter says is kept bounded: its last lines, each cut short.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO

import pandas as pd

from flows.meter_csv import check_header, parse_rows
from flows.schema import FLOW_COLUMNS

log = logging.getLogger(__name__)

#: Counters in the meter's statistics that add up across restarts.
COUNTERS: tuple[str, ...] = (
    "packets", "parsed", "skipped_total", "flows_emitted", "flows_evicted",
    "flows_below_min_packets", "kernel_drops",
)


#: The meter's latest stderr lines kept per run, and how many of them make an error's reason.
_KEPT_LINES = 20
_REASON_LINES = 3
#: A meter line longer than this is cut (it may echo a user's whole BPF filter, say).
_LINE_CHARS = 300
#: Its usage errors end with this hint, which means nothing to a user of the sensor.
_HELP_HINT = "try 'flowmeter --help'"
_PIECE = 64 * 1024  # stderr is read in lines of at most this many bytes

_F_SETPIPE_SZ = 1031  # fcntl: set a pipe's capacity (Linux)
_PIPE_MAX = 1 << 20  # /proc/sys/fs/pipe-max-size by default


class MeterError(RuntimeError):
    """The meter cannot run (bad input, interface, permission): a one-line reason."""


@dataclass(frozen=True)
class MeterSpec:
    """How to run the meter: binary, profile, input and timing options."""

    binary: Path
    profile: str
    file: Path | None = None
    iface: str | None = None
    bpf: str | None = None
    flow_timeout: float = 120.0
    activity_timeout: float = 5.0
    stats_interval: float = 5.0
    buffer_mib: int = 64

    @property
    def live(self) -> bool:
        """True when capturing on an interface (restarts allowed), False for a capture file."""
        return self.iface is not None

    def command(self) -> list[str]:
        """The meter's command line (CSV with the canonical header on stdout)."""
        cmd = [str(self.binary), "--profile", self.profile, "--header", "canonical",
               "--flow-timeout", f"{self.flow_timeout:g}", "--activity-timeout", f"{self.activity_timeout:g}"]
        if self.live:
            cmd += ["-i", str(self.iface), "-B", str(self.buffer_mib)]
        else:
            cmd += ["-r", str(self.file)]
        if self.bpf:
            cmd += ["-f", self.bpf]
        if self.stats_interval > 0 and supports_stats_interval(str(self.binary)):
            cmd += ["--stats-interval", f"{self.stats_interval:g}"]
        return cmd


@cache
def supports_stats_interval(binary: str) -> bool:
    """Whether this meter build prints periodic statistics (``--stats-interval`` in its help)."""
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return False
    return "--stats-interval" in out


def parse_stats_line(line: str) -> dict | None:
    """The JSON statistics object on a meter stderr line (``flowmeter: {...}`` or ``{...}``), else None."""
    start = line.find("{")
    if start < 0 or not line.rstrip().endswith("}"):
        return None
    try:
        value = json.loads(line[start:])
    except ValueError:
        return None
    return value if isinstance(value, dict) and "packets" in value else None


def meter_reason(lines: Iterable[str], total: int | None = None) -> str:
    """What the meter said, as one line: its last few ``lines`` (without the ``flowmeter:`` prefix
    and the hint to its own --help) and how many earlier ones were left out (``total``: how many
    it said in all, when ``lines`` holds only the latest)."""
    lines = list(lines)
    said = [line.removeprefix("flowmeter: ") for line in lines if line != _HELP_HINT]
    shown = said[-_REASON_LINES:]
    left_out = len(said) - len(shown) + (total - len(lines) if total is not None else 0)
    return "; ".join(shown) + (f" (and {left_out} earlier lines)" if left_out else "")


def _stderr_lines(stream: IO[bytes]) -> Iterator[tuple[str, int]]:
    """The lines of the meter's stderr and their lengths in bytes, each line read up to ``_PIECE``
    bytes (a line that never ends costs no more memory than a short one)."""
    while first := stream.readline(_PIECE):
        length, piece = len(first), first
        while not piece.endswith(b"\n") and (piece := stream.readline(_PIECE)):
            length += len(piece)  # the rest of a long line: counted, not kept
        yield first.decode("utf-8", "replace").rstrip(), length


def _cut(line: str, length: int) -> str:
    """A meter message kept for the log and the error: at most ``_LINE_CHARS`` of it."""
    return f"{line[:_LINE_CHARS]}... ({length} bytes)" if len(line) > _LINE_CHARS else line


def describe_exit(returncode: int) -> str:
    """``exit status 1`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _find_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# looked up once here: the child between fork and exec should do as little as possible
_PRCTL = _find_prctl()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGTERM the meter if the sensor dies, so no orphan keeps capturing."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Run:
    """One meter process: its statistics and its stderr tail."""

    proc: subprocess.Popen
    stats: dict = field(default_factory=dict)
    messages: deque[str] = field(default_factory=lambda: deque(maxlen=_KEPT_LINES))  # the latest ones
    said: int = 0  # lines the meter wrote (statistics aside), also those no longer kept
    header_seen: bool = False
    started: float = field(default_factory=time.monotonic)
    stderr_done: threading.Event = field(default_factory=threading.Event)


class Meter:
    """The meter child process, restarted in live mode; iterate :meth:`frames` for flow rows."""

    def __init__(self, spec: MeterSpec, read_block: int = 1 << 20,
                 restart_backoff: tuple[float, float] = (0.5, 30.0), max_restarts: int = 0) -> None:
        self.spec = spec
        self.read_block = read_block
        self.backoff_first, self.backoff_max = restart_backoff
        self.max_restarts = max_restarts
        self.restarts = 0
        self.rows_read = 0
        self.partial_rows_lost = 0
        self._finished: dict[str, int] = dict.fromkeys(COUNTERS, 0)  # totals of runs that ended
        self._run: _Run | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # -- statistics ---------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Counters summed over every meter run so far (the current run's latest report included)."""
        with self._lock:
            current = self._run.stats if self._run else {}
            return {k: self._finished[k] + int(current.get(k, 0)) for k in COUNTERS}

    def _on_stderr(self, run: _Run) -> None:
        """Collect statistics lines; remember (and log) anything else the meter says."""
        assert run.proc.stderr is not None
        for line, length in _stderr_lines(run.proc.stderr):
            stats = parse_stats_line(line)  # a statistics line is read whole (it is longer than a message)
            if stats is not None:
                with self._lock:
                    dropped = int(stats.get("kernel_drops", 0)) - int(run.stats.get("kernel_drops", 0))
                    run.stats = stats
                log.debug("meter stats: %s", stats)
                if dropped > 0:  # the capture could not keep up: flows are missing packets
                    log.warning("meter: the kernel dropped %d packets (%d in this run)", dropped,
                                stats["kernel_drops"])
            elif line:
                line = _cut(line, length)
                run.messages.append(line)
                run.said += 1
                # live: say it now; a capture file: said at the end, as the error if the meter failed
                if self.spec.live and run.header_seen:
                    log.warning("meter: %s", line)
        run.stderr_done.set()

    # -- process ------------------------------------------------------------------------------
    def _start(self) -> _Run:
        cmd = self.spec.command()
        log.info("starting meter: %s", " ".join(cmd))
        try:
            # its own process group: a signal to the sensor's group (Ctrl-C, a terminal hangup) reaches
            # the sensor only, which decides (serve.signals) and stops the meter with SIGTERM itself
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, preexec_fn=_die_with_parent, process_group=0)
        except OSError as exc:
            raise MeterError(f"cannot run the flow meter {self.spec.binary}: {exc.strerror}") from exc
        run = _Run(proc)
        threading.Thread(target=self._on_stderr, args=(run,), name="meter-stderr", daemon=True).start()
        with self._lock:
            self._run = run
        return run

    def _finish(self, run: _Run) -> int:
        """Wait for the process and its stderr; fold its counters into the totals."""
        returncode = run.proc.wait()
        run.stderr_done.wait(5)
        with self._lock:
            for k in COUNTERS:
                self._finished[k] += int(run.stats.get(k, 0))
            self._run = None
        return returncode

    def stop(self) -> None:
        """Ask the meter to finish: SIGTERM makes it write every open flow, then exit 0."""
        self._stopping.set()
        with self._lock:
            run = self._run
        if run and run.proc.poll() is None:
            run.proc.send_signal(signal.SIGTERM)

    @property
    def pid(self) -> int | None:
        """The current meter process id (None between runs)."""
        with self._lock:
            return self._run.proc.pid if self._run else None

    # -- stream -------------------------------------------------------------------------------
    def _read_block(self, fd: int) -> bytes:
        """Wait for data, then take what is already there, up to ``read_block`` bytes.

        Parsing costs mostly per call (64 KiB blocks cost ~5x the CPU of 1 MiB blocks), so a busy
        stream is read in big blocks; a quiet one is handed on at once (no added latency).
        """
        chunks = [os.read(fd, self.read_block)]
        size = len(chunks[0])
        while chunks[-1] and size < self.read_block and select.select([fd], [], [], 0)[0]:
            chunks.append(os.read(fd, self.read_block - size))
            size += len(chunks[-1])
        return b"".join(chunks)

    def _rows(self, run: _Run) -> Iterator[pd.DataFrame]:
        """Parse the run's stdout block by block; raises MeterError if no header ever came."""
        fd = run.proc.stdout.fileno()  # type: ignore[union-attr]
        with contextlib.suppress(OSError):  # a bigger pipe: fewer, larger reads (Linux only)
            fcntl.fcntl(fd, _F_SETPIPE_SZ, min(self.read_block, _PIPE_MAX))
        tail = b""
        while True:
            block = self._read_block(fd)
            if not block:
                break
            data = tail + block
            cut = data.rfind(b"\n") + 1
            complete, tail = data[:cut], data[cut:]
            if not run.header_seen and complete:
                first, _, complete = complete.partition(b"\n")
                check_header(first.decode("utf-8", "replace").rstrip("\r").split(","))
                run.header_seen = True
                log.info("meter running (pid %d, profile %s): reading flows", run.proc.pid, self.spec.profile)
            if complete:
                frame = parse_rows(complete, FLOW_COLUMNS)
                self.rows_read += len(frame)
                yield frame
        if tail:
            self.partial_rows_lost += 1
            log.warning("meter stream ended inside a row (%d bytes dropped)", len(tail))

    def frames(self) -> Iterator[pd.DataFrame]:
        """Flow rows as the meter writes them, until it ends (file) or :meth:`stop` (live).

        Raises :class:`MeterError` if the meter cannot start, or (capture file) dies early.
        """
        backoff = self.backoff_first
        in_a_row = 0
        first = True
        while not self._stopping.is_set():
            run = self._start()
            try:
                yield from self._rows(run)
            finally:
                if run.proc.poll() is None and not self._stopping.is_set():
                    run.proc.kill()  # the consumer gave up (error or close): do not leave it behind
                returncode = self._finish(run)
            said = meter_reason(run.messages, run.said)
            reason = describe_exit(returncode) + (f": {said}" if said else "")
            if first and not run.header_seen:  # failed at start: a user mistake, not worth restarting
                raise MeterError(f"flow meter: {said or describe_exit(returncode)}")
            first = False
            if returncode == 0 and not self.spec.live:
                for message in run.messages:
                    log.warning("meter: %s", message)
                return
            if self._stopping.is_set():
                return
            if not self.spec.live:  # re-reading the file would judge its flows twice: stop here
                if returncode < 0:
                    raise MeterError(f"flow meter {describe_exit(returncode)} while reading {self.spec.file}")
                raise MeterError(f"flow meter: {said or reason}")
            if time.monotonic() - run.started > self.backoff_max:  # it ran fine for a while
                backoff, in_a_row = self.backoff_first, 0
            in_a_row += 1
            if self.max_restarts and in_a_row > self.max_restarts:
                raise MeterError(f"flow meter died {in_a_row} times in a row, giving up ({reason})")
            log.error("flow meter died (%s); restarting in %.1f s", reason, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self.backoff_max)
            self.restarts += 1
