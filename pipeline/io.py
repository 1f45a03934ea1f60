"""Small I/O helpers shared by the stages: paths, Parquet, JSON metrics, shared-data lookup."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_path(path: str | Path) -> Path:
    """Resolve ``path`` against the project root unless it is absolute."""
    p = Path(path)
    return p if p.is_absolute() else PROJECT_ROOT / p


def shared_data_dir() -> Path:
    """The shared data folder: ``$NETSENTRY_SHARED_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("NETSENTRY_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a stage's Parquet output (only ``columns`` if given)."""
    return pd.read_parquet(project_path(path), columns=columns)


def parquet_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet file, without reading its data."""
    return list(pq.read_schema(project_path(path)).names)


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as Parquet, creating the folder; returns the path written."""
    out = output_path(path)
    df.to_parquet(out, index=False)
    return out


def write_json(data: Any, path: str | Path) -> Path:
    """Write JSON (sorted keys, stable output so DVC sees no change on identical results)."""
    out = output_path(path)
    out.write_text(json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
    return out


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(project_path(path).read_text())


def output_path(path: str | Path) -> Path:
    """Resolve a stage output path against the project and create its folder."""
    out = project_path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure (tight layout, 100 dpi) and close it; returns the path."""
    out = output_path(path)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    fig.clf()
    return out


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a small table (plot data) as CSV, creating the folder."""
    out = output_path(path)
    df.to_csv(out, index=False)
    return out


def require_inputs(stage: str, paths: list[str]) -> None:
    """Stop with a clear message (no traceback) when a stage's input files are missing.

    Lives here, not beside the model code, so a data stage checking its inputs imports no
    scikit-learn or matplotlib.
    """
    missing = [p for p in paths if not project_path(p).exists()]
    if missing:
        raise SystemExit(f"{stage}: missing input(s) {missing}; run the upstream stages (dvc repro) first")
