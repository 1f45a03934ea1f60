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
from tests.lab.labtools import account_exists, lab_processes, needs_lab, netsentry

pytestmark = [pytest.mark.slow, needs_lab]
UP_LINE = "testbed and services up"


class Runs:
    """Short `lab run`s started by a test, into its temporary folder."""

    def __init__(self, tmp: Path) -> None:
        self.out = tmp / "run"
        self.started: list[subprocess.Popen] = []

    def start(self, warmup: int) -> subprocess.Popen:
        """Start a run (one nmap scenario) whose stdout goes to a file; return once its testbed is up."""
        stdout = self.out.parent / "run.stdout"
        argv = ["lab", "run", "--scenario", "nmap-syn-t4", "--max-time", "5", "--warmup", str(warmup)]
        argv += ["--cooldown", "0", "--out", str(self.out), "--profile", "clean"]
        with stdout.open("w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "netsentry.cli", *argv],
                stdout=sink,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.started.append(proc)
        deadline = time.monotonic() + 60
        while UP_LINE not in stdout.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, stdout.read_text()
            time.sleep(0.2)
        time.sleep(1)  # benign users are running now
        return proc


@pytest.fixture
def runs(tmp_path: Path):
    """Start runs; afterwards any run still going is killed and the testbed removed."""
    made = Runs(tmp_path)
    yield made
    for proc in made.started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    services.teardown()


def test_sigterm_tears_the_testbed_down_and_records_the_interruption(runs: Runs) -> None:
    out, proc = runs.out, runs.start(warmup=60)
    assert netns.our_namespaces()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert len(err.strip().splitlines()) == 1 and "SIGTERM" in err, err
    assert netns.our_namespaces() == [] and not account_exists()
    assert lab_processes(str(out)) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted by SIGTERM"
    assert not (out / "labelled-clean.csv.gz").exists()


def test_lab_down_during_a_run_makes_the_run_fail(runs: Runs) -> None:
    out, proc = runs.out, runs.start(warmup=40)
    down = netsentry("lab", "down")
    assert down.returncode == 0, down.stderr
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert len(err.strip().splitlines()) == 1 and "vanished" in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"].startswith("failed") and "vanished" in manifest["status"]
    assert not (out / "labelled-clean.csv.gz").exists()
    assert lab_processes(str(out)) == []
