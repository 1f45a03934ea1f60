"""Stage select: RFE ranking, the feature-count curve, the tolerance rule, the stage outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from flows.schema import LABEL_COLUMN, feature_columns
from pipeline.balance import in_fold_sampler
from pipeline.forest import cv_score, forest, stratified_cap
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
    root = make_project(tmp_path / "proj", ["select.estimator.n_estimators=8", "select.tolerance=0.01"])
    out = run_stage(root, "pipeline.select")
    features = json.loads((root / "data/select/features.json").read_text())
    metrics = json.loads((root / "metrics/select.json").read_text())
    curve = pd.read_csv(root / "plots/select_curve.csv")
    assert list(curve.columns) == ["n_features", "score", "std"] and list(curve.n_features) == list(
        range(1, 9)
    )
    # the count is the tolerance rule applied to the written curve, not a forced number
    k = metrics["n_features"]
    assert k == choose_count(curve, 0.01) and metrics["n_candidates"] == 8
    assert metrics["best_score"] == pytest.approx(curve.score.max(), abs=1e-6)
    assert features["selected"] == [r["feature"] for r in features["ranking"]][:k]
    assert [r["rank"] for r in features["ranking"]] == list(range(1, 9))
    # the fixture's class signal is in its first three features: they lead the ranking
    assert {r["feature"] for r in features["ranking"][:3]} == set(feature_columns(False)[:3])
    assert (root / "plots/select_curve.png").stat().st_size > 1000
    assert f"select: {k} of 8 features" in out


def test_ranking_uses_real_rows_only_not_the_synthetic_ones() -> None:
    """Synthetic rows in which a noise feature gives the class away must not steer the ranking."""
    real = synthetic_frame(n_per_class=120, n_features=8, informative=3, seed=3)
    noise = feature_columns(False)[7]
    fake = real.sample(n=2000, replace=True, random_state=0).reset_index(drop=True)
    codes = fake[LABEL_COLUMN].astype("category").cat.codes.to_numpy()
    fake[noise] = codes * 100.0  # the noise feature separates the classes perfectly, but only here
    balanced = pd.concat([real, fake], ignore_index=True)
    leaky = select(balanced, CFG, seed=42)  # ranking on the balanced rows: the leak
    assert leaky["ranking"][0] == noise and leaky["metrics"]["ranked_on"] == "balanced rows"
    honest = select(balanced, CFG, seed=42, real=real, balance_cfg={"method": "none"})
    assert noise not in honest["ranking"][:3] and set(honest["ranking"][:3]) == set(
        feature_columns(False)[:3]
    )
    assert honest["metrics"]["ranked_on"] == "real training rows (class-weighted)"
    assert honest["metrics"]["rows_used"] == 400  # the real rows, capped; no synthetic row


def test_validation_folds_hold_only_real_rows_and_training_folds_are_oversampled() -> None:
    df = synthetic_frame(n_per_class=60, n_features=4, informative=2, seed=1)
    df = df[df[LABEL_COLUMN] != "Bot"].iloc[:150].reset_index(drop=True)  # imbalanced classes
    x = df[feature_columns(False)[:4]].to_numpy()
    y = df[LABEL_COLUMN].to_numpy()
    real_rows = {tuple(r) for r in x}
    seen: list[tuple[int, int, bool]] = []

    def scorer(model, x_val, y_val) -> float:  # noqa: ANN001 (sklearn's scorer signature)
        # a bootstrap tree's root weighs as many rows as the forest was fitted on
        trained_on = int(model.named_steps["forest"].estimators_[0].tree_.weighted_n_node_samples[0])
        seen.append((len(x_val), trained_on, all(tuple(r) in real_rows for r in x_val)))
        return float((model.predict(x_val) == y_val).mean())

    sampler = in_fold_sampler({"method": "smote", "target_count": 200, "k_neighbors": 3}, seed=0)
    cv_score(forest(5, 4, 0, 1), x, y, 3, scorer, 0, sampler)
    assert len(seen) == 3 and all(real for _, _, real in seen)  # every validation row is a real row
    assert sum(n for n, _, _ in seen) == len(x)  # and together they are exactly the real rows
    assert all(trained > len(x) - n for n, trained, _ in seen)  # training folds grew by SMOTE
