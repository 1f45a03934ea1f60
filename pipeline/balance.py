"""Stage ``balance``: SMOTE the rare classes up to a target count, and weigh classes in the model.

``balance.target_count`` caps what SMOTE creates: a class with fewer training rows is
oversampled up to that count, a larger class is left as it is (never down-sampled).  So the
full 2.8M-row set grows by at most ``target_count`` rows per class instead of the 8x a
"balance everything to the majority" strategy gives.  A class with fewer rows than
``balance.k_neighbors + 1`` is interpolated between its own few neighbours; a class with a single
row can only be repeated (random oversampling; reported).  ``balance.method: none`` skips SMOTE.

Class weights (``balance.class_weight``: ``balanced`` or null) are computed on the balanced rows
and used by the forest in ``sweep`` and ``train``.

Writes ``data/balance/train.parquet``, ``data/balance/class_weights.json`` and
``metrics/balance.json``.  Usage: ``python -m pipeline.balance`` (reads params.yaml).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from imblearn import FunctionSampler
from imblearn.over_sampling import SMOTE, RandomOverSampler
from sklearn.utils.class_weight import compute_class_weight

from flows.schema import LABEL_COLUMN
from pipeline import tracking
from pipeline.forest import feature_names
from pipeline.io import read_parquet, require_inputs, write_json, write_parquet
from pipeline.stage import log_metrics, stage_cli

INPUT = "data/prune/train.parquet"
OUTPUT = "data/balance/train.parquet"
WEIGHTS_OUT = "data/balance/class_weights.json"
METRICS_OUT = "metrics/balance.json"
METHODS = ("smote", "none")


def smote_targets(counts: pd.Series, target_count: int) -> dict[str, int]:
    """Classes below ``target_count`` rows and the count each is raised to."""
    return {str(c): int(target_count) for c, n in counts.items() if n < target_count}


def _synthesise(
    x: np.ndarray, y: np.ndarray, targets: dict[str, int], k: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """New rows for the ``targets`` classes, all sharing neighbour count ``k`` (0: repeat rows)."""
    rows = np.isin(y, list(targets))
    # imblearn wants two classes; SMOTE interpolates within a class only, so one row of another
    # class changes nothing but lets the call proceed on the small subset
    other = np.flatnonzero(~rows)[:1]
    take = np.concatenate([np.flatnonzero(rows), other])
    sampler = (
        SMOTE(sampling_strategy=targets, k_neighbors=k, random_state=seed)
        if k > 0
        else RandomOverSampler(sampling_strategy=targets, random_state=seed)
    )
    x_res, y_res = sampler.fit_resample(x[take], y[take])
    # imblearn returns the input rows first, then the new ones
    return x_res[len(take) :], y_res[len(take) :]


def oversample_arrays(
    x: np.ndarray, y: np.ndarray, cfg: dict[str, Any], seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Rows ``x``/labels ``y`` with synthetic rows appended (originals first, unchanged), and how
    each class was raised.  Also the in-fold sampler of ``select``/``sweep`` cross-validation."""
    method = cfg.get("method", "smote")
    if method not in METHODS:
        raise SystemExit(f"balance.method={method!r} is not one of {list(METHODS)}")
    counts = pd.Series(y).value_counts()
    targets = smote_targets(counts, int(cfg.get("target_count", 0))) if method == "smote" else {}
    if len(counts) < 2:
        targets = {}
    k = int(cfg.get("k_neighbors", 5))
    new_x, new_y, how = [x], [y], {}
    by_k: dict[int, dict[str, int]] = {}
    for c, target in targets.items():
        k_eff = min(k, int(counts[c]) - 1)
        by_k.setdefault(k_eff, {})[c] = target
        how[c] = f"smote k={k_eff}" if k_eff > 0 else "repeated (single row)"
    for k_eff, group in sorted(by_k.items()):
        gx, gy = _synthesise(x, y, group, k_eff, seed)
        new_x.append(gx)
        new_y.append(gy)
    return np.vstack(new_x), np.concatenate(new_y), how


def in_fold_sampler(cfg: dict[str, Any], seed: int) -> FunctionSampler:
    """The balance step as an imblearn sampler, so CV oversamples each training fold only and
    scores on real rows (synthetic rows in a validation fold would flatter the rare classes)."""

    def resample(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x_res, y_res, _ = oversample_arrays(np.asarray(x, dtype="float64"), np.asarray(y), cfg, seed)
        return x_res, y_res

    return FunctionSampler(func=resample, validate=False)


def oversample(df: pd.DataFrame, cfg: dict[str, Any], seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return the training frame with synthetic rows appended, and the per-class counts."""
    feats = feature_names(df)
    y = df[LABEL_COLUMN].astype(str).to_numpy()
    x_res, y_res, how = oversample_arrays(df[feats].to_numpy(dtype="float64"), y, cfg, seed)
    out = pd.DataFrame(x_res, columns=feats)
    out[LABEL_COLUMN] = y_res
    counts, after = pd.Series(y).value_counts(), out[LABEL_COLUMN].value_counts()
    report = {
        "method": cfg.get("method", "smote"),
        "rows_before": len(df),
        "rows_after": len(out),
        "classes": {
            str(c): {
                "before": int(counts[c]),
                "after": int(after[c]),
                "synthetic": int(after[c] - counts[c]),
                "how": how.get(str(c), "unchanged"),
            }
            for c in sorted(counts.index)
        },
    }
    return out, report


def class_weights(y: pd.Series, mode: str | None) -> dict[str, float]:
    """``balanced`` weights (n_rows / (n_classes * class_rows)), or {} for none."""
    if not mode:
        return {}
    if mode != "balanced":
        raise SystemExit(f"balance.class_weight={mode!r} must be 'balanced' or null")
    classes = np.array(sorted(y.astype(str).unique()))
    weights = compute_class_weight("balanced", classes=classes, y=y.astype(str).to_numpy())
    return {str(c): float(w) for c, w in zip(classes, weights, strict=True)}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage."""
    params = stage_cli("balance", __doc__, argv)
    cfg, seed = params["balance"], int(params["seed"])
    require_inputs("balance", [INPUT])
    with tracking.stage_run("balance", params, ["balance", "seed"]):
        out, report = oversample(read_parquet(INPUT), cfg, seed)
        weights = class_weights(out[LABEL_COLUMN], cfg.get("class_weight"))
        report["class_weights"] = weights
        write_parquet(out, OUTPUT)
        write_json(weights, WEIGHTS_OUT)
        write_json(report, METRICS_OUT)
        log_metrics({"rows_before": report["rows_before"], "rows_after": report["rows_after"]})
    print(
        f"balance ({report['method']}): {report['rows_before']:,} -> {report['rows_after']:,} training rows"
    )
    for c, info in report["classes"].items():
        if info["synthetic"]:
            print(f"  {c}: {info['before']:,} -> {info['after']:,} ({info['how']})")


if __name__ == "__main__":
    main()
