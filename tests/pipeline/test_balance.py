"""SMOTE up to a capped target count (no blow-up of the big classes) and balanced class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.schema import LABEL_COLUMN
from pipeline.balance import class_weights, in_fold_sampler, oversample

FEATS = ["Flow Duration", "Total Fwd Packets", "Flow Bytes/s"]


def frame(counts: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i, (label, n) in enumerate(counts.items()):
        part = pd.DataFrame(rng.normal(loc=10 * i, size=(n, len(FEATS))), columns=FEATS)
        part[LABEL_COLUMN] = label
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_classes_below_target_reach_it_larger_ones_are_untouched() -> None:
    df = frame({"BENIGN": 3000, "DoS": 700, "Bot": 40, "Heartbleed": 3, "Infiltration": 1})
    cfg = {"method": "smote", "target_count": 500, "k_neighbors": 5}
    out, report = oversample(df, cfg, seed=42)
    counts = out[LABEL_COLUMN].value_counts().to_dict()
    assert counts == {"BENIGN": 3000, "DoS": 700, "Bot": 500, "Heartbleed": 500, "Infiltration": 500}
    assert report["rows_after"] == len(out) == 3000 + 700 + 3 * 500
    assert report["classes"]["Bot"] == {"before": 40, "after": 500, "synthetic": 460, "how": "smote k=5"}
    assert report["classes"]["Heartbleed"]["how"] == "smote k=2"  # 3 rows: two neighbours each
    assert report["classes"]["Infiltration"]["how"] == "repeated (single row)"
    assert report["classes"]["BENIGN"]["how"] == "unchanged"
    # originals first, unchanged; synthetic rows interpolate within their class's range
    pd.testing.assert_frame_equal(out.iloc[: len(df)], df, check_dtype=False)
    for label in ("Bot", "Heartbleed"):
        real, synth = df[df[LABEL_COLUMN] == label][FEATS], out.iloc[len(df) :]
        synth = synth[synth[LABEL_COLUMN] == label][FEATS]
        assert (synth.min() >= real.min() - 1e-9).all() and (synth.max() <= real.max() + 1e-9).all()
    again, _ = oversample(df, cfg, seed=42)
    pd.testing.assert_frame_equal(again, out)


def test_method_none_and_bad_method() -> None:
    df = frame({"BENIGN": 50, "Bot": 5})
    out, report = oversample(df, {"method": "none", "target_count": 500}, seed=0)
    assert len(out) == 55 and report["classes"]["Bot"]["synthetic"] == 0
    with pytest.raises(SystemExit, match="balance.method='adasyn'"):
        oversample(df, {"method": "adasyn"}, seed=0)


def test_balanced_class_weights() -> None:
    y = pd.Series(["BENIGN"] * 80 + ["Bot"] * 20)
    assert class_weights(y, "balanced") == {"BENIGN": 100 / (2 * 80), "Bot": 100 / (2 * 20)}
    assert class_weights(y, None) == {}


def test_in_fold_sampler_balances_a_training_fold_like_the_stage() -> None:
    df = frame({"BENIGN": 900, "Bot": 30, "Heartbleed": 4})
    cfg = {"method": "smote", "target_count": 200, "k_neighbors": 5}
    x, y = df[FEATS].to_numpy(), df[LABEL_COLUMN].to_numpy()
    x_res, y_res = in_fold_sampler(cfg, seed=3).fit_resample(x, y)
    assert pd.Series(y_res).value_counts().to_dict() == {"BENIGN": 900, "Bot": 200, "Heartbleed": 200}
    stage, _ = oversample(df, cfg, seed=3)
    np.testing.assert_array_equal(x_res, stage[FEATS].to_numpy())  # the same rows as the stage makes
