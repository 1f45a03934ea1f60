"""A `lab run` stopped from outside (root only): SIGTERM tears the testbed down and says so in the
manifest; a `lab down` in the middle of a run makes the run fail instead of labelling a broken capture.

The smallest run there is: one nmap scenario, benign users, stopped while warming up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import netns, services
from tests.lab.labtools import lab_processes, needs_lab, netsentry

pytestmark = [pytest.mark.slow, needs_lab]
UP_LINE = "testbed and services up"


def start_run(out: Path, warmup: int) -> tuple[subprocess.Popen, Path]:
    """Start a short `lab run` whose stdout goes to a file; wait until its testbed is up."""
    stdout = out.parent / f"{out.name}.stdout"
    with stdout.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netsentry.cli",
                "lab",
                "run",
                "--scenario",
                "nmap-syn-t4",
                "--max-time",
                "5",
                "--warmup",
                str(warmup),
                "--cooldown",
                "0",
                "--out",
                str(out),
                "--profile",
                "clean",
            ],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 60
    while UP_LINE not in stdout.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.2)
    time.sleep(1)  # benign users are running now
    return proc, stdout


@pytest.fixture
def out(tmp_path: Path):
    yield tmp_path / "run"
    services.teardown()


def test_sigterm_tears_the_testbed_down_and_records_the_interruption(out: Path) -> None:
    proc, _ = start_run(out, warmup=60)
    assert netns.our_namespaces()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert len(err.strip().splitlines()) == 1 and "SIGTERM" in err, err
    assert netns.our_namespaces() == []
    assert lab_processes(str(out)) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted by SIGTERM"
    assert not (out / "labelled-clean.csv.gz").exists()


def test_lab_down_during_a_run_makes_the_run_fail(out: Path) -> None:
    proc, _ = start_run(out, warmup=40)
    down = netsentry("lab", "down")
    assert down.returncode == 0, down.stderr
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "vanished" in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"].startswith("failed") and "vanished" in manifest["status"]
    assert not (out / "labelled-clean.csv.gz").exists()
    assert lab_processes(str(out)) == []
