"""Stage sweep: the plateau rule, the grid, nested MLflow runs, the disabled switch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from flows.schema import feature_columns
from pipeline.forest import IDS_SCORING, benign_fp_rate, f1_macro_minus_benign_fp
from pipeline.sweep import choose_point, score_grid
from tests.pipeline.model_fixtures import make_project, run_stage, synthetic_frame


def test_choose_point_prefers_shallow_then_few_trees_on_the_plateau() -> None:
    grid = pd.DataFrame(
        [
            (d, t, s)
            for d, t, s in [
                (2, 4, 0.70),
                (2, 14, 0.72),
                (8, 4, 0.93),
                (8, 14, 0.955),
                (8, 30, 0.956),
                (12, 4, 0.94),
                (12, 14, 0.958),
                (12, 30, 0.96),
            ]
        ],
        columns=["max_depth", "n_estimators", "score"],
    )
    assert choose_point(grid, 0.005) == {
        "max_depth": 8,
        "n_estimators": 14,
        "score": 0.955,
        "best_score": 0.96,
    }
    assert choose_point(grid, 0.0)["max_depth"] == 12 and choose_point(grid, 0.0)["n_estimators"] == 30
    assert choose_point(grid, 0.05)["n_estimators"] == 4  # depth 8, 4 trees is within 0.05


def test_ids_score_charges_benign_false_positives_in_full() -> None:
    # BENIGN + 6 attack groups, 100 rows each; two benign rows called PortScan
    classes = ["BENIGN", "Bot", "Brute Force", "DDoS", "DoS", "PortScan", "Web Attack"]
    y_true = np.repeat(classes, 100)
    y_pred = y_true.copy()
    y_pred[:2] = "PortScan"
    assert benign_fp_rate(y_true, y_pred) == pytest.approx(0.02)
    # macro-F1 barely moves (less than the plateau tolerance 0.005) ...
    assert f1_macro_minus_benign_fp(y_true, y_true) == pytest.approx(1.0)
    f1 = (2 * 0.98 / 1.98 + 2 * (100 / 102) / (1 + 100 / 102) + 5) / 7
    assert 1 - f1 < 0.005
    # ... the IDS score drops by the whole 2 points of false alarms on top
    assert f1_macro_minus_benign_fp(y_true, y_pred) == pytest.approx(f1 - 0.02)
    assert benign_fp_rate(y_true[200:], y_pred[200:]) == 0.0  # no benign rows: no false alarms


def test_score_grid_takes_the_ids_score_by_name() -> None:
    df = synthetic_frame(n_per_class=100, n_features=6, seed=5)
    cfg = {"max_depth": [1, 6], "n_estimators": [5], "cv_folds": 3, "scoring": IDS_SCORING, "max_rows": None}
    grid = score_grid(df, feature_columns(False)[:3], cfg, seed=0)
    f1 = score_grid(df, feature_columns(False)[:3], {**cfg, "scoring": "f1_macro"}, seed=0)
    # never above macro-F1; a forest of stumps calls benign rows attacks, and pays for them
    assert (grid["score"] <= f1["score"] + 1e-12).all()
    assert grid["score"].iloc[0] < f1["score"].iloc[0] - 0.01
    assert grid["score"].iloc[1] > grid["score"].iloc[0]


def test_score_grid_scores_every_point() -> None:
    df = synthetic_frame(n_per_class=100, n_features=6, seed=5)
    cfg = {
        "max_depth": [4, 1],
        "n_estimators": [5, 2],
        "cv_folds": 3,
        "scoring": "accuracy",
        "max_rows": None,
        "n_jobs": 1,
    }
    grid = score_grid(df, feature_columns(False)[:3], cfg, seed=0)
    assert list(zip(grid.max_depth, grid.n_estimators, strict=True)) == [(1, 2), (1, 5), (4, 2), (4, 5)]
    assert grid["score"].between(0, 1).all()
    # depth-1 stumps cannot separate 4 classes as well as depth 4
    assert grid.loc[grid.max_depth == 4, "score"].max() > grid.loc[grid.max_depth == 1, "score"].max()


def test_sweep_stage_logs_nested_runs_and_writes_best(tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        [
            "select.n_features=3",
            "select.estimator.n_estimators=5",
            "sweep.max_depth=[2,6]",
            "sweep.n_estimators=[3,9]",
        ],
    )
    run_stage(root, "pipeline.select")
    run_stage(root, "pipeline.sweep")
    best = json.loads((root / "data/sweep/best.json").read_text())
    grid = pd.read_csv(root / "plots/sweep_grid.csv")
    assert sorted(zip(grid.max_depth, grid.n_estimators, strict=True)) == [(2, 3), (2, 9), (6, 3), (6, 9)]
    metrics = json.loads((root / "metrics/sweep.json").read_text())
    assert metrics["enabled"] is True and metrics["points"] == 4 and metrics["fixed_by_model"] == {}
    # the plateau rule, recomputed here from the written grid: the first (depth, trees) in order
    # whose score is within the tolerance of the grid's best
    top = grid["score"].max()
    ordered = grid.sort_values(["max_depth", "n_estimators"])
    first = ordered[ordered["score"] >= top - 0.005].iloc[0]
    assert best == {"max_depth": int(first.max_depth), "n_estimators": int(first.n_estimators)}
    # (the CSV holds 6 decimals)
    assert metrics["best_score"] == pytest.approx(top, abs=1e-6)
    assert metrics["score"] == pytest.approx(first.score, abs=1e-6)
    for name in ("sweep_depth.png", "sweep_trees.png"):
        assert (root / "plots" / name).stat().st_size > 1000

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("netsentry")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("stage") == "sweep"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    logged = {
        (int(r.data.params["max_depth"]), int(r.data.params["n_estimators"])): r.data.metrics["cv_score"]
        for r in children
    }
    written = {(int(r.max_depth), int(r.n_estimators)): float(r.score) for r in grid.itertuples()}
    assert logged.keys() == written.keys()  # every point's nested run holds the grid file's score
    assert all(logged[k] == pytest.approx(written[k], abs=1e-6) for k in logged)


def test_sweep_disabled_passes_model_params_through(tmp_path) -> None:
    root = make_project(
        tmp_path / "proj", ["sweep.enabled=false", "model.max_depth=5", "model.n_estimators=7"]
    )
    run_stage(root, "pipeline.sweep")  # no select output needed: nothing is scored
    assert json.loads((root / "data/sweep/best.json").read_text()) == {"max_depth": 5, "n_estimators": 7}
    assert json.loads((root / "metrics/sweep.json").read_text())["enabled"] is False


def test_a_model_value_fixes_its_axis_of_the_sweep(tmp_path) -> None:
    """``dvc exp run -S model.max_depth=6`` must train depth 6, the sweep picking only the trees."""
    root = make_project(
        tmp_path / "proj",
        ["select.n_features=3", "sweep.max_depth=[2,4]", "sweep.n_estimators=[3,9]", "model.max_depth=6"],
    )
    run_stage(root, "pipeline.select")
    run_stage(root, "pipeline.sweep")
    grid = pd.read_csv(root / "plots/sweep_grid.csv")
    assert sorted(zip(grid.max_depth, grid.n_estimators, strict=True)) == [(6, 3), (6, 9)]
    best = json.loads((root / "data/sweep/best.json").read_text())
    assert best["max_depth"] == 6 and best["n_estimators"] in (3, 9)
    assert json.loads((root / "metrics/sweep.json").read_text())["fixed_by_model"] == {"max_depth": 6}
