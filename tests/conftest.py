"""Shared fixtures: where the shared data lives, and skipping with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.io import PROJECT_ROOT, shared_data_dir

ROOT = PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``$NETSENTRY_SHARED_DATA`` or ``../shared/data``), or skip."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set NETSENTRY_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def engelen_sample(shared_data: Path) -> Path:
    """The corrected CICIDS2017 sample folder (43k rows, 16 labels)."""
    path = shared_data / "cicids2017" / "engelen-sample"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def pcaps(shared_data: Path) -> Path:
    """The shared packet captures folder."""
    path = shared_data / "pcaps"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def cicids_fixtures(shared_data: Path) -> Path:
    """Heads of the original CICIDS2017 CSVs (MachineLearningCVE and TrafficLabelling layouts)."""
    path = shared_data / "cicids2017" / "fixtures"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path
