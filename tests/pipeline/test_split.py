"""The held-out test set: made before any fitting, and nothing fitted later sees its rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.schema import LABEL_COLUMN, SOURCE_COLUMN, feature_columns
from pipeline.balance import oversample
from pipeline.clean import clean_flows
from pipeline.group import group_flows
from pipeline.layouts import read_flow_folder
from pipeline.params import compose_params
from pipeline.prune import prune, training_medians
from pipeline.split import SplitError, split_flows

KEY = ["Flow ID", "Timestamp", "Source Port"]


@pytest.fixture(scope="module")
def grouped(engelen_sample: Path) -> pd.DataFrame:
    """The engelen sample after clean + group, as the split stage receives it."""
    flows, _ = read_flow_folder(engelen_sample, progress=False)
    clean, _ = clean_flows(flows)
    out, _ = group_flows(clean, compose_params()["labels"]["mapping"])
    return out


def keys(df: pd.DataFrame) -> set[tuple]:
    return set(map(tuple, df[KEY].astype(str).to_numpy()))


def pairs(df: pd.DataFrame) -> set[frozenset]:
    return {frozenset(p) for p in df[["Source IP", "Destination IP"]].astype(str).to_numpy()}


def test_stratified_split_is_disjoint_seeded_and_keeps_proportions(grouped: pd.DataFrame) -> None:
    train, test, report = split_flows(grouped, {"strategy": "stratified", "test_size": 0.3}, seed=42)
    assert len(train) + len(test) == len(grouped) and not keys(train) & keys(test)
    assert report["test_fraction"] == pytest.approx(0.3, abs=0.001)
    for cls, n in grouped[LABEL_COLUMN].value_counts().items():
        assert report["classes"][cls]["test"] == pytest.approx(0.3 * n, abs=1.01)
    again, _, _ = split_flows(grouped, {"strategy": "stratified", "test_size": 0.3}, seed=42)
    other, _, _ = split_flows(grouped, {"strategy": "stratified", "test_size": 0.3}, seed=7)
    assert keys(again) == keys(train) and keys(other) != keys(train)


def test_conversation_split_keeps_every_address_pair_on_one_side(grouped: pd.DataFrame) -> None:
    train, test, report = split_flows(grouped, {"strategy": "conversation", "test_size": 0.3}, seed=42)
    assert not pairs(train) & pairs(test)
    assert report["conversations_on_both_sides"] == 0
    assert report["conversations"]["test"] == len(pairs(test)) > 0
    assert 0.1 < report["test_fraction"] < 0.5
    # a class living in a single conversation cannot be on both sides: it is reported, not hidden
    single = [c for c, g in grouped.groupby(LABEL_COLUMN, observed=True) if len(pairs(g)) == 1]
    for cls in single:
        assert cls in report["classes_missing_from_test"] + report["classes_missing_from_train"]


def test_by_day_split_holds_out_whole_files(grouped: pd.DataFrame) -> None:
    cfg = {"strategy": "by_day", "test_files": ["DDoS", "Heartbleed"]}
    train, test, report = split_flows(grouped, cfg, seed=42)
    assert report["test_files"] == ["DDoS_5000.csv", "Heartbleed_11.csv"]
    assert set(test[SOURCE_COLUMN].astype(str)) == {"DDoS_5000.csv", "Heartbleed_11.csv"}
    assert not set(train[SOURCE_COLUMN].astype(str)) & set(report["test_files"])
    with pytest.raises(SplitError, match="matches no input file"):
        split_flows(grouped, {"strategy": "by_day", "test_files": ["Monday"]}, seed=42)


def test_conversation_split_needs_addresses() -> None:
    flows = pd.DataFrame({LABEL_COLUMN: ["BENIGN", "DoS"] * 5, "Flow Duration": range(10)})
    with pytest.raises(SplitError, match="MachineLearningCVE layout has no addresses"):
        split_flows(flows, {"strategy": "conversation", "test_size": 0.3}, seed=0)
    with pytest.raises(SplitError, match="not one of"):
        split_flows(flows, {"strategy": "random"}, seed=0)


def test_no_statistic_sees_the_test_rows(grouped: pd.DataFrame) -> None:
    """Medians, correlations and SMOTE are fitted on the training side only."""
    train, test, _ = split_flows(grouped, {"strategy": "stratified", "test_size": 0.3}, seed=42)
    # make the test side extreme: a leak would move the medians and break the correlations
    test = test.copy()
    test["Flow IAT Mean"] = 1e12
    test["Flow Bytes/s"] = np.inf
    test["Fwd IAT Total"] = -test["Flow Duration"] * 1e6
    cfg = {"use_destination_port": False, "correlation_threshold": 0.8}
    candidates = [c for c in feature_columns(False) if c in train.columns]
    expected = training_medians(train, candidates)  # before prune imputes in place
    p_train, p_test, extra = prune(train, test, cfg)
    assert extra["medians"] == expected
    # the test rows' inf rate is replaced by the *training* median
    assert (p_test["Flow Bytes/s"] == extra["medians"]["Flow Bytes/s"]).all()
    # on train Fwd IAT Total tracks Flow Duration, so it goes, whatever the test side says
    dropped = {d["feature"]: d["because_of"] for d in extra["report"]["correlated"]}
    assert dropped["Fwd IAT Total"] == "Flow Duration"
    balanced, _ = oversample(p_train, {"method": "smote", "target_count": 3000, "k_neighbors": 5}, seed=42)
    original = balanced.iloc[: len(p_train)]
    pd.testing.assert_frame_equal(
        original.reset_index(drop=True),
        p_train.reset_index(drop=True),
        check_dtype=False,
        check_categorical=False,
    )
    # synthetic rows interpolate training rows: none reaches the test side's extreme value
    assert balanced["Flow IAT Mean"].max() == p_train["Flow IAT Mean"].max() < 1e12
