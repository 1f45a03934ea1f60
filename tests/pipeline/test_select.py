"""Stage select: RFE ranking, the feature-count curve, the tolerance rule, the stage outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from flows.schema import LABEL_COLUMN, feature_columns
from pipeline.forest import stratified_cap
from pipeline.select import choose_count, select
from tests.pipeline.model_fixtures import make_project, run_stage, synthetic_frame

CFG = {
    "scoring": "f1_macro",
    "cv_folds": 3,
    "tolerance": 0.01,
    "max_rows": 400,
    "n_features": None,
    "step": 1,
    "estimator": {"n_estimators": 10, "max_depth": 6},
    "n_jobs": 1,
}


def test_choose_count_takes_smallest_within_tolerance() -> None:
    curve = pd.DataFrame({"n_features": [1, 2, 3, 4], "score": [0.5, 0.894, 0.899, 0.90]})
    assert choose_count(curve, 0.01) == 2
    assert choose_count(curve, 0.005) == 3
    assert choose_count(curve, 0.0) == 4
    assert choose_count(curve, 0.01, forced=1) == 1


def test_choose_count_rejects_forced_count_out_of_range() -> None:
    curve = pd.DataFrame({"n_features": [1, 2], "score": [0.5, 0.6]})
    with pytest.raises(SystemExit, match="out of range"):
        choose_count(curve, 0.01, forced=3)


def test_stratified_cap_keeps_proportions_and_small_classes() -> None:
    df = pd.DataFrame({"x": range(1003), LABEL_COLUMN: ["a"] * 800 + ["b"] * 200 + ["c"] * 3})
    capped = stratified_cap(df, 100, seed=1, min_per_class=3)
    counts = capped[LABEL_COLUMN].value_counts().to_dict()
    assert counts == {"a": 80, "b": 20, "c": 3}
    assert capped.equals(stratified_cap(df, 100, seed=1, min_per_class=3))  # seeded
    assert len(stratified_cap(df, 5000, seed=1)) == 1003


def test_select_ranks_informative_features_first() -> None:
    df = synthetic_frame(n_per_class=120, n_features=8, informative=3, seed=3)
    result = select(df, CFG, seed=42)
    informative = set(feature_columns(False)[:3])
    assert set(result["ranking"][:3]) == informative
    assert len(result["ranking"]) == 8
    assert list(result["curve"]["n_features"]) == list(range(1, 9))
    assert 1 <= result["metrics"]["n_features"] <= 3
    assert set(result["selected"]) <= informative
    # the curve is real CV: one informative feature scores well below all three
    curve = result["curve"].set_index("n_features")["score"]
    assert curve[3] > curve[1] + 0.05


def test_select_stage_writes_outputs(tmp_path) -> None:
    root = make_project(tmp_path / "proj", ["select.n_features=5", "select.estimator.n_estimators=8"])
    out = run_stage(root, "pipeline.select")
    features = json.loads((root / "data/select/features.json").read_text())
    assert len(features["selected"]) == 5
    assert features["selected"] == [r["feature"] for r in features["ranking"]][:5]
    assert [r["rank"] for r in features["ranking"]] == list(range(1, 9))
    metrics = json.loads((root / "metrics/select.json").read_text())
    assert metrics["n_features"] == 5 and metrics["n_candidates"] == 8
    curve = pd.read_csv(root / "plots/select_curve.csv")
    assert list(curve.columns) == ["n_features", "score", "std"] and len(curve) == 8
    assert (root / "plots/select_curve.png").stat().st_size > 1000
    assert "select: 5 of 8 features" in out
