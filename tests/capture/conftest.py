"""Fixtures for the flow meter tests: the built binaries (made on demand) and the ground-truth data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.io import PROJECT_ROOT

CAPTURE_DIR = PROJECT_ROOT / "capture"


def _make(target: str, binary: Path) -> Path:
    """Build `target` in capture/ (make is incremental) and return the binary, or skip if make is absent."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    proc = subprocess.run(["make", "-s", "-C", str(CAPTURE_DIR), target], capture_output=True, text=True)
    assert proc.returncode == 0, f"make {target} failed:\n{proc.stdout}\n{proc.stderr}"
    assert binary.is_file(), f"make {target} did not produce {binary}"
    return binary


@pytest.fixture(scope="session")
def meter_bin() -> Path:
    """capture/flowmeter, the optimised build."""
    return _make("flowmeter", CAPTURE_DIR / "flowmeter")


@pytest.fixture(scope="session")
def meter_asan_bin() -> Path:
    """capture/build/flowmeter-asan: AddressSanitizer + UBSan, aborting on the first error."""
    return _make("asan", CAPTURE_DIR / "build" / "flowmeter-asan")
