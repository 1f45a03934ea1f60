"""Stage ``sweep``: CV over a ``max_depth x n_estimators`` grid, pick where the score plateaus.

Cross-validates on the real training rows (``data/prune/train.parquet``, capped to a stratified
``sweep.max_rows`` subsample) with the ``balance`` step inside each training fold, the class
weights of ``data/balance/class_weights.json`` and the selected features
(``data/select/features.json``).
Each grid point is a nested MLflow run under the sweep stage run.  The chosen point is the
smallest depth, then the fewest trees, whose mean CV score is within ``sweep.tolerance`` of the
best.  ``model.max_depth`` / ``model.n_estimators`` set (not null) fix that axis: the grid then
varies only the other one (``dvc exp run -S model.max_depth=12`` trains depth 12).  With
``sweep.enabled: false`` nothing is scored and both model values are passed on as is.

Writes ``data/sweep/best.json``, ``metrics/sweep.json``, ``plots/sweep_depth.png``,
``plots/sweep_trees.png`` and the grid as ``plots/sweep_grid.csv``.
Usage: ``python -m pipeline.sweep`` (reads params.yaml).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from flows.schema import LABEL_COLUMN
from pipeline import tracking
from pipeline.balance import in_fold_sampler
from pipeline.forest import class_weights_for, cv_score, forest, stratified_cap
from pipeline.io import (
    project_path,
    read_json,
    read_parquet,
    require_inputs,
    save_figure,
    write_csv,
    write_json,
)
from pipeline.stage import stage_cli

INPUT = "data/prune/train.parquet"
WEIGHTS = "data/balance/class_weights.json"
FEATURES = "data/select/features.json"
BEST_OUT = "data/sweep/best.json"
METRICS_OUT = "metrics/sweep.json"
GRID_CSV = "plots/sweep_grid.csv"
DEPTH_PNG = "plots/sweep_depth.png"
TREES_PNG = "plots/sweep_trees.png"


def score_grid(
    df: pd.DataFrame,
    features: list[str],
    cfg: dict[str, Any],
    seed: int,
    weights: dict[str, float] | None = None,
    log_runs: bool = False,
    balance_cfg: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """CV-score every (max_depth, n_estimators) point: columns max_depth, n_estimators, score, std.

    With ``log_runs`` each point is logged as a nested MLflow run of the active run; with
    ``balance_cfg`` every training fold is oversampled (the validation fold stays real).
    """
    data = stratified_cap(df, cfg.get("max_rows"), seed, min_per_class=int(cfg["cv_folds"]))
    missing = [f for f in features if f not in data.columns]
    if missing:
        raise SystemExit(f"selected feature(s) missing from the training data: {missing}")
    x = data[features].to_numpy()
    y = data[LABEL_COLUMN].astype(str).to_numpy()
    cw = class_weights_for(y, weights)
    sampler = in_fold_sampler(balance_cfg, seed) if balance_cfg else None
    rows = []
    for depth in sorted(int(d) for d in cfg["max_depth"]):
        for trees in sorted(int(t) for t in cfg["n_estimators"]):
            model = forest(trees, depth, seed, cfg.get("n_jobs", 2), cw)
            mean, std = cv_score(model, x, y, cfg["cv_folds"], cfg["scoring"], seed, sampler)
            rows.append({"max_depth": depth, "n_estimators": trees, "score": mean, "std": std})
            if log_runs:
                with mlflow.start_run(run_name=f"depth={depth} trees={trees}", nested=True):
                    mlflow.set_tag("stage", "sweep-point")
                    mlflow.log_params({"max_depth": depth, "n_estimators": trees})
                    mlflow.log_metrics({"cv_score": mean, "cv_std": std})
    return pd.DataFrame(rows)


def effective_grid(cfg: dict[str, Any], model_cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """The sweep config with each axis the model section fixes reduced to that value, and those values."""
    fixed = {
        axis: int(model_cfg[axis])
        for axis in ("max_depth", "n_estimators")
        if model_cfg.get(axis) is not None
    }
    return {**cfg, **{axis: [value] for axis, value in fixed.items()}}, fixed


def choose_point(grid: pd.DataFrame, tolerance: float) -> dict[str, Any]:
    """The plateau point: smallest depth, then fewest trees, within ``tolerance`` of the best."""
    best = grid["score"].max()
    good = grid[grid["score"] >= best - float(tolerance)].sort_values(["max_depth", "n_estimators"])
    row = good.iloc[0]
    return {
        "max_depth": int(row["max_depth"]),
        "n_estimators": int(row["n_estimators"]),
        "score": float(row["score"]),
        "best_score": float(best),
    }


def _plot(
    xs: pd.Series, ys: pd.Series, std: pd.Series, xlabel: str, title: str, mark: int, path: str
) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(xs, ys, yerr=std, marker="o", capsize=2)
    ax.axvline(mark, color="tab:red", ls="--", label=f"chosen: {mark}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("CV score")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
    plt.close(fig)


def plot_curves(grid: pd.DataFrame, chosen: dict[str, Any]) -> None:
    """Score vs depth at the chosen tree count, and score vs trees at the chosen depth."""
    by_depth = grid[grid["n_estimators"] == chosen["n_estimators"]]
    _plot(
        by_depth["max_depth"],
        by_depth["score"],
        by_depth["std"],
        "max_depth",
        f"score vs depth ({chosen['n_estimators']} trees)",
        chosen["max_depth"],
        DEPTH_PNG,
    )
    by_trees = grid[grid["max_depth"] == chosen["max_depth"]]
    _plot(
        by_trees["n_estimators"],
        by_trees["score"],
        by_trees["std"],
        "n_estimators",
        f"score vs trees (depth {chosen['max_depth']})",
        chosen["n_estimators"],
        TREES_PNG,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage."""
    params = stage_cli("sweep", __doc__, argv)
    cfg, seed, model_cfg = params["sweep"], int(params["seed"]), params["model"]
    if cfg.get("enabled", True):
        require_inputs("sweep", [INPUT, FEATURES])
    with tracking.stage_run("sweep", params, ["sweep", "model", "balance", "seed"]):
        if not cfg.get("enabled", True):
            chosen = {
                "max_depth": int(model_cfg["max_depth"]),
                "n_estimators": int(model_cfg["n_estimators"]),
            }
            grid = pd.DataFrame([{**chosen, "score": float("nan"), "std": float("nan")}])
            metrics = {**chosen, "enabled": False}
            plot_curves(grid, chosen)  # a single unscored point: keeps the declared plot outputs
        else:
            features = read_json(FEATURES)["selected"]
            weights = read_json(WEIGHTS) if project_path(WEIGHTS).exists() else None
            grid_cfg, fixed = effective_grid(cfg, model_cfg)
            grid = score_grid(
                read_parquet(INPUT),
                features,
                grid_cfg,
                seed,
                weights,
                log_runs=True,
                balance_cfg=params["balance"],
            )
            chosen = choose_point(grid, cfg["tolerance"])
            metrics = {**chosen, "enabled": True, "points": len(grid), "fixed_by_model": fixed}
            plot_curves(grid, chosen)
            mlflow.log_metrics({"cv_score": chosen["score"], "best_cv_score": chosen["best_score"]})
            for path in (DEPTH_PNG, TREES_PNG):
                mlflow.log_artifact(str(project_path(path)))
        mlflow.log_params(
            {"chosen_max_depth": chosen["max_depth"], "chosen_n_estimators": chosen["n_estimators"]}
        )
        write_json({"max_depth": chosen["max_depth"], "n_estimators": chosen["n_estimators"]}, BEST_OUT)
        write_json(metrics, METRICS_OUT)
        write_csv(grid.round(6), GRID_CSV)
    how = "swept" if cfg.get("enabled", True) else "from model params (sweep disabled)"
    print(f"sweep: max_depth={chosen['max_depth']} n_estimators={chosen['n_estimators']} ({how})")


if __name__ == "__main__":
    main()
