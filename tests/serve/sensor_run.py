"""Run the ``netsentry`` command the way a user does (a subprocess) and read what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from serve.verdict import VERDICT_COLUMNS

NETSENTRY = str(Path(sys.executable).with_name("netsentry"))


@dataclass
class Store:
    """A tracking store (or server) with a registered model, and a model cache folder."""

    uri: str
    cache: Path
    work: Path


def sensor_env(store: Store) -> dict[str, str]:
    """The environment for ``netsentry``: the test's tracking store, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = store.uri
    return env


def common_overrides(store: Store, out: Path) -> list[str]:
    """Keep every file the sensor writes (model cache, EVE alerts) inside the test's folders."""
    return [f"serve.model.cache_dir={store.cache}", f"serve.alerts.sinks.eve.path={out / 'eve.json'}"]


def netsentry(store: Store, out: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``netsentry ARGS... <overrides>`` to completion (cwd = ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run([NETSENTRY, *args, *common_overrides(store, out)], cwd=out, env=sensor_env(store),
                          capture_output=True, text=True, timeout=timeout)


class Daemon:
    """``netsentry serve`` (or classify) running in the background; its stderr is collected as it comes."""

    def __init__(self, store: Store, out: Path, *args: str, prefix: tuple[str, ...] = (),
                 command: str = "serve", overrides: list[str] | None = None) -> None:
        """``command``: ``serve`` or ``classify`` (run in the background, e.g. to signal it);
        ``overrides``: instead of :func:`common_overrides`."""
        out.mkdir(parents=True, exist_ok=True)
        overrides = common_overrides(store, out) if overrides is None else overrides
        self.proc = subprocess.Popen([*prefix, NETSENTRY, command, *args, *overrides],
                                     cwd=out, env=sensor_env(store), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def stderr(self) -> str:
        """Everything logged so far."""
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90, count: int = 1) -> str:
        """Wait until ``count`` stderr lines contain ``text``; return the last of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if text in line]
                if len(found) >= count:
                    return found[-1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {text!r} in the sensor's log:\n{self.stderr}")
                self._changed.wait(min(left, 0.5))

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        """Send ``sig`` (None: let it end by itself) and wait; returns (exit status, stdout)."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        # stdout only: communicate() would also read stderr, racing the reader thread for its lines
        assert self.proc.stdout is not None
        collected: list[str] = []
        out = threading.Thread(target=lambda: collected.append(self.proc.stdout.read()), daemon=True)
        out.start()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out.join(timeout=10)
        self._reader.join(timeout=5)
        return self.proc.returncode, "".join(collected)


def count_rows(path: Path) -> int:
    """Data rows in a CSV written so far (0 if it does not exist yet)."""
    return max(0, len(path.read_bytes().splitlines()) - 1) if path.exists() else 0


def read_verdicts(path: Path) -> pd.DataFrame:
    """The verdict CSV, identifiers as strings."""
    frame = pd.read_csv(path, dtype={"model_version": str, "Flow ID": str})
    assert tuple(frame.columns) == VERDICT_COLUMNS
    return frame


def assert_one_clear_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Non-zero exit, no traceback, and a single stderr line that contains every fragment."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
