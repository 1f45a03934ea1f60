"""Run the ``netsentry`` command the way a user does (a subprocess) and read what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
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


def start_netsentry(store: Store, out: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start ``netsentry ARGS...`` in the background (optionally under ``prefix``, e.g. ip netns exec)."""
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([*prefix, NETSENTRY, *args, *common_overrides(store, out)], cwd=out,
                            env=sensor_env(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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
