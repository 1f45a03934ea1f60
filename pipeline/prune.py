"""Stage ``prune``: keep the model features, impute with training medians, drop redundant ones.

On the training rows only:

1. candidate features are :func:`flows.schema.feature_columns` (``Destination Port`` only
   when ``features.use_destination_port``); identifiers are never features;
2. the median of every candidate (finite values) is learned and replaces NaN/±inf in train
   *and* test (the rate columns of zero-duration flows); the registered model uses the same
   medians for live flows;
3. features constant on the training rows are dropped;
4. Pearson correlation pruning on the upper triangle: walking the features in schema order, a
   feature whose |r| with an already kept one exceeds ``features.correlation_threshold`` is
   dropped, and the log names the kept feature it duplicates.

Writes ``data/prune/{train,test}.parquet`` (kept features + ``Label``),
``data/prune/medians.json`` and ``metrics/prune.json``.
Usage: ``python -m pipeline.prune`` (reads params.yaml).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flows.schema import LABEL_COLUMN, feature_columns
from pipeline import tracking
from pipeline.io import parquet_columns, read_parquet, require_inputs, write_json, write_parquet
from pipeline.stage import log_metrics, stage_cli

TRAIN_IN = "data/split/train.parquet"
TEST_IN = "data/split/test.parquet"
TRAIN_OUT = "data/prune/train.parquet"
TEST_OUT = "data/prune/test.parquet"
MEDIANS_OUT = "data/prune/medians.json"
METRICS_OUT = "metrics/prune.json"


def training_medians(train: pd.DataFrame, features: list[str]) -> dict[str, float]:
    """Median of each feature over its finite training values (0.0 if it has none)."""
    medians = {}
    for f in features:
        values = train[f].to_numpy(dtype="float64", na_value=np.nan)
        finite = values[np.isfinite(values)]
        medians[f] = float(np.median(finite)) if len(finite) else 0.0
    return medians


def impute(df: pd.DataFrame, medians: dict[str, float]) -> pd.DataFrame:
    """Replace NaN/±inf in the feature columns by the given medians, in place (column by column,
    so no second copy of a large frame); returns ``df``."""
    for f, median in medians.items():
        values = df[f].to_numpy(dtype="float64", na_value=np.nan)
        df[f] = np.where(np.isfinite(values), values, median)
    return df


def correlation_matrix(x: pd.DataFrame, chunk_rows: int = 200_000) -> np.ndarray:
    """Pearson correlation of the columns of ``x``, accumulated over row chunks.

    Two passes (means, then centred cross-products) keep it exact enough for thresholding while
    never holding more than one chunk as a dense array: millions of rows fit in little memory.
    """
    n, k = x.shape
    means = np.array([x[c].mean() for c in x.columns])
    cross = np.zeros((k, k))
    for start in range(0, n, chunk_rows):
        block = x.iloc[start : start + chunk_rows].to_numpy(dtype="float64") - means
        cross += block.T @ block
    std = np.sqrt(np.diag(cross))
    with np.errstate(divide="ignore", invalid="ignore"):
        return cross / np.outer(std, std)


def correlated_features(x: pd.DataFrame, threshold: float) -> list[dict[str, Any]]:
    """Greedy upper-triangle pruning: features to drop, each with the kept feature it tracks and r."""
    corr = correlation_matrix(x)
    kept: list[int] = []
    dropped = []
    for j in range(x.shape[1]):
        partners = [(abs(corr[i, j]), i) for i in kept if abs(corr[i, j]) > threshold]
        if partners:
            r, i = max(partners)
            dropped.append({"feature": x.columns[j], "because_of": x.columns[i], "abs_r": round(float(r), 6)})
        else:
            kept.append(j)
    return dropped


def fit_prune(train: pd.DataFrame, cfg: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, float], dict]:
    """Learn on the training rows (imputed in place): pruned train, medians, report."""
    use_port = bool(cfg.get("use_destination_port", False))
    threshold = float(cfg.get("correlation_threshold", 0.8))
    candidates = [c for c in feature_columns(use_port) if c in train.columns]
    medians = training_medians(train, candidates)
    impute(train, medians)
    constant = [c for c in candidates if train[c].nunique() <= 1]
    varying = [c for c in candidates if c not in constant]
    dropped = correlated_features(train[varying], threshold)
    gone = {d["feature"] for d in dropped}
    kept = [c for c in varying if c not in gone]
    report = {
        "use_destination_port": use_port,
        "correlation_threshold": threshold,
        "n_candidates": len(candidates),
        "n_constant_on_train": len(constant),
        "n_correlated": len(dropped),
        "n_features": len(kept),
        "constant_on_train": constant,
        "correlated": dropped,
        "features": kept,
    }
    return train[[*kept, LABEL_COLUMN]], medians, report


def apply_prune(test: pd.DataFrame, medians: dict[str, float], kept: list[str]) -> pd.DataFrame:
    """The held-out rows with the kept features, imputed with the training medians."""
    out = test[[*kept, LABEL_COLUMN]].copy()
    return impute(out, {f: medians[f] for f in kept})


def prune(
    train: pd.DataFrame, test: pd.DataFrame, cfg: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Apply the pruning steps; return pruned train/test and ``{"medians", "report"}``."""
    out_train, medians, report = fit_prune(train, cfg)
    out_test = apply_prune(test, medians, report["features"])
    return out_train, out_test, {"medians": medians, "report": report}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage."""
    params = stage_cli("prune", __doc__, argv)
    require_inputs("prune", [TRAIN_IN, TEST_IN])
    with tracking.stage_run("prune", params, ["features"]):
        # only the candidate features and the label: identifiers are never features
        present = set(parquet_columns(TRAIN_IN))
        use_port = bool(params["features"].get("use_destination_port", False))
        columns = [c for c in feature_columns(use_port) if c in present] + [LABEL_COLUMN]
        # train first, then test with the kept columns only: one side in memory at a time
        train, medians, report = fit_prune(read_parquet(TRAIN_IN, columns), params["features"])
        write_parquet(train, TRAIN_OUT)
        del train
        kept = report["features"]
        write_parquet(apply_prune(read_parquet(TEST_IN, [*kept, LABEL_COLUMN]), medians, kept), TEST_OUT)
        write_json(medians, MEDIANS_OUT)
        write_json(report, METRICS_OUT)
        log_metrics({k: v for k, v in report.items() if k.startswith("n_")})
    print(
        f"prune: {report['n_features']} of {report['n_candidates']} features kept "
        f"({report['n_constant_on_train']} constant on train, {report['n_correlated']} with |r| > "
        f"{report['correlation_threshold']})"
    )
    for d in report["correlated"]:
        print(f"  dropped {d['feature']!r}: |r| = {d['abs_r']:.3f} with {d['because_of']!r}")


if __name__ == "__main__":
    main()
