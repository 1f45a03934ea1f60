"""Stage ``select``: rank features with RFE, score top-k for every k, keep the smallest good k.

Ranks the features of the *real* training rows (``data/prune/train.parquet``, capped to a
stratified ``select.max_rows`` subsample) by recursive feature elimination with a small seeded
Random Forest weighted by class (``balanced``: the rare classes count as much as after SMOTE,
without synthetic rows), then scores the top-k features (k = 1..N) by stratified CV on the same
real rows, oversampling each training fold with the ``balance`` settings so no synthetic row is
ever scored.  (Ranking on the balanced rows, as before, let SMOTE rows made from the validation
folds' rows shape the ranking: an optimistic curve.  ``data/balance/train.parquet`` is read only
for its columns.)  The smallest k whose mean score is
within ``select.tolerance`` of the best wins, unless ``select.n_features`` forces a count.

Writes ``data/select/features.json`` (selected features in rank order + the full ranking),
``metrics/select.json``, ``plots/select_curve.png`` and ``plots/select_curve.csv``.
Usage: ``python -m pipeline.select`` (reads params.yaml).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from sklearn.feature_selection import RFE

from flows.schema import LABEL_COLUMN
from pipeline import tracking
from pipeline.balance import in_fold_sampler
from pipeline.forest import cv_score, feature_names, forest, stratified_cap
from pipeline.io import project_path, read_parquet, require_inputs, save_figure, write_csv, write_json
from pipeline.stage import stage_cli

INPUT = "data/balance/train.parquet"
# the training rows before oversampling: what the curve is cross-validated on
REAL = "data/prune/train.parquet"
FEATURES_OUT = "data/select/features.json"
METRICS_OUT = "metrics/select.json"
CURVE_PNG = "plots/select_curve.png"
CURVE_CSV = "plots/select_curve.csv"


def _estimator(cfg: dict[str, Any], seed: int, class_weight: dict[str, float] | None = None):
    est = cfg.get("estimator") or {}
    return forest(
        est.get("n_estimators", 20), est.get("max_depth", 8), seed, cfg.get("n_jobs", 2), class_weight
    )


def balanced_weights(y: np.ndarray) -> dict[str, float]:
    """``n / (n_classes * count)`` per class: every class weighs as much in total."""
    counts = pd.Series(y).value_counts()
    return {str(c): float(len(y) / (len(counts) * n)) for c, n in counts.items()}


def rank_features(
    x: pd.DataFrame,
    y: np.ndarray,
    cfg: dict[str, Any],
    seed: int,
    class_weight: dict[str, float] | None = None,
) -> list[str]:
    """Return all features of ``x`` ordered best first by RFE (ties keep column order)."""
    rfe = RFE(_estimator(cfg, seed, class_weight), n_features_to_select=1, step=int(cfg.get("step", 1)))
    rfe.fit(x.to_numpy(), y)
    order = np.argsort(rfe.ranking_, kind="stable")
    return [x.columns[i] for i in order]


def score_curve(
    x: pd.DataFrame, y: np.ndarray, ranking: list[str], cfg: dict[str, Any], seed: int, sampler: Any = None
) -> pd.DataFrame:
    """CV score of the top-k ranked features for k = 1..N: columns n_features, score, std."""
    rows = []
    for k in range(1, len(ranking) + 1):
        mean, std = cv_score(
            _estimator(cfg, seed),
            x[ranking[:k]].to_numpy(),
            y,
            cfg["cv_folds"],
            cfg["scoring"],
            seed,
            sampler,
        )
        rows.append({"n_features": k, "score": mean, "std": std})
    return pd.DataFrame(rows)


def choose_count(curve: pd.DataFrame, tolerance: float, forced: int | None = None) -> int:
    """The smallest k whose score is within ``tolerance`` of the best, or ``forced`` if given."""
    n = len(curve)
    if forced is not None:
        if not 1 <= int(forced) <= n:
            raise SystemExit(f"select.n_features={forced} is out of range: there are {n} features")
        return int(forced)
    best = curve["score"].max()
    good = curve[curve["score"] >= best - float(tolerance)]
    return int(good["n_features"].min())


def plot_curve(curve: pd.DataFrame, chosen: int, scoring: str, path: str) -> None:
    """Save the score-vs-feature-count curve with the chosen count marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(curve["n_features"], curve["score"], yerr=curve["std"], marker="o", ms=3, capsize=2)
    ax.axvline(chosen, color="tab:red", ls="--", label=f"chosen: {chosen}")
    ax.set_xlabel("number of features (top-k by RFE rank)")
    ax.set_ylabel(f"CV {scoring}")
    ax.set_title("Feature selection curve")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
    plt.close(fig)


def select(
    df: pd.DataFrame,
    cfg: dict[str, Any],
    seed: int,
    real: pd.DataFrame | None = None,
    balance_cfg: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rank features by RFE, then score the top-k curve; returns features, ranking, curve, metrics.

    With ``real`` (the training rows before oversampling) both the ranking (class-weighted) and
    the curve use those rows only, the curve with the balance step inside each training fold
    when ``balance_cfg`` is given; ``df`` (the balanced rows) then only fixes the feature columns.
    Without ``real`` everything uses ``df``.
    """
    folds = int(cfg["cv_folds"])
    source = df if real is None else real[[*feature_names(df), LABEL_COLUMN]]
    data = stratified_cap(source, cfg.get("max_rows"), seed, min_per_class=folds)
    x = data[feature_names(data)]
    y = data[LABEL_COLUMN].astype(str).to_numpy()
    ranking = rank_features(x, y, cfg, seed, balanced_weights(y) if real is not None else None)
    sampler = in_fold_sampler(balance_cfg, seed) if real is not None and balance_cfg else None
    curve = score_curve(x, y, ranking, cfg, seed, sampler)
    k = choose_count(curve, cfg["tolerance"], cfg.get("n_features"))
    row = curve.loc[curve["n_features"] == k].iloc[0]
    metrics = {
        "n_features": k,
        "n_candidates": len(ranking),
        "rows_used": len(data),
        "ranked_on": "balanced rows" if real is None else "real training rows (class-weighted)",
        "score": float(row["score"]),
        "best_score": float(curve["score"].max()),
        "best_n_features": int(curve.loc[curve["score"].idxmax(), "n_features"]),
    }
    return {"selected": ranking[:k], "ranking": ranking, "curve": curve, "metrics": metrics}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage."""
    params = stage_cli("select", __doc__, argv)
    cfg, seed = params["select"], int(params["seed"])
    require_inputs("select", [INPUT, REAL])
    with tracking.stage_run("select", params, ["select", "balance", "seed"]):
        result = select(read_parquet(INPUT), cfg, seed, read_parquet(REAL), params["balance"])
        curve = result["curve"]
        write_json(
            {
                "selected": result["selected"],
                "ranking": [{"feature": f, "rank": i + 1} for i, f in enumerate(result["ranking"])],
            },
            FEATURES_OUT,
        )
        write_json(result["metrics"], METRICS_OUT)
        write_csv(curve.round(6), CURVE_CSV)
        plot_curve(curve, result["metrics"]["n_features"], cfg["scoring"], CURVE_PNG)
        numbers = {k: float(v) for k, v in result["metrics"].items() if not isinstance(v, str)}
        mlflow.log_metrics(numbers)
        mlflow.set_tag("ranked_on", result["metrics"]["ranked_on"])
        for rec in curve.itertuples():
            mlflow.log_metric("curve_score", float(rec.score), step=int(rec.n_features))
        mlflow.set_tag("features", ",".join(result["selected"]))
        for path in (FEATURES_OUT, CURVE_PNG, CURVE_CSV):
            mlflow.log_artifact(str(project_path(path)))
    m = result["metrics"]
    print(
        f"select: {m['n_features']} of {len(result['ranking'])} features "
        f"(CV {cfg['scoring']} {m['score']:.4f}, best {m['best_score']:.4f}): "
        + ", ".join(result["selected"])
    )


if __name__ == "__main__":
    main()
