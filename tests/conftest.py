"""Shared fixtures: where the shared data lives, and skipping with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.io import PROJECT_ROOT, shared_data_dir

ROOT = PROJECT_ROOT


def _folder(path: Path, hint: str = "") -> Path:
    """``path`` if it is a folder, else skip the test saying what is missing."""
    if not path.is_dir():
        pytest.skip(f"{path} not found{hint}")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``$NETSENTRY_SHARED_DATA`` or ``../shared/data``), or skip."""
    return _folder(shared_data_dir(), " (set NETSENTRY_SHARED_DATA)")


@pytest.fixture(scope="session")
def engelen_sample(shared_data: Path) -> Path:
    """The corrected CICIDS2017 sample folder (43k rows, 16 labels)."""
    return _folder(shared_data / "cicids2017" / "engelen-sample")


@pytest.fixture(scope="session")
def pcaps(shared_data: Path) -> Path:
    """The shared packet captures folder."""
    return _folder(shared_data / "pcaps")


@pytest.fixture(scope="session")
def cicids_fixtures(shared_data: Path) -> Path:
    """Heads of the original CICIDS2017 CSVs (MachineLearningCVE and TrafficLabelling layouts)."""
    return _folder(shared_data / "cicids2017" / "fixtures")
