"""What every stage's entry point does alike: parse ``--help``, read params, log flat metrics."""

from __future__ import annotations

import argparse
import math
from typing import Any

import mlflow

from pipeline.params import load_params


def stage_cli(stage: str, doc: str | None, argv: list[str] | None) -> dict[str, Any]:
    """Parse the (option-less) command line of ``python -m pipeline.<stage>`` and return params.yaml."""
    argparse.ArgumentParser(
        prog=f"python -m pipeline.{stage}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    return load_params()


def flat_numbers(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite number in a nested dict, keyed ``a.b.c`` (what MLflow metrics can hold)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_numbers(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def log_metrics(metrics: dict[str, Any]) -> None:
    """Log the numbers of a stage's metrics dict to the active MLflow run (names sanitised)."""
    safe = {k.replace("/", "_per_").replace(" ", "_"): v for k, v in flat_numbers(metrics).items()}
    mlflow.log_metrics(safe)
