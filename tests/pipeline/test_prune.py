"""Correlation pruning (upper triangle, |r| > threshold), constant columns, medians, port switch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flows.schema import LABEL_COLUMN
from pipeline.prune import correlated_features, correlation_matrix, prune

A, B, C, D = "Flow Duration", "Fwd IAT Total", "Total Fwd Packets", "Flow Bytes/s"


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    return pd.DataFrame(
        {
            "Destination Port": rng.integers(1, 1024, n).astype(float),
            A: a,
            B: 2 * a + rng.normal(scale=0.05, size=n),  # |r| ~ 0.999 with A
            C: rng.normal(size=n),  # independent
            D: 0.7 * a + rng.normal(scale=0.7, size=n),  # |r| ~ 0.7 with A
            "Bwd URG Flags": np.zeros(n),  # constant
            LABEL_COLUMN: ["BENIGN", "DoS"] * (n // 2),
        }
    )


def test_later_feature_of_a_correlated_pair_is_dropped_and_named() -> None:
    df = frame()
    dropped = correlated_features(df[[A, B, C, D]], threshold=0.8)
    assert [d["feature"] for d in dropped] == [B]
    assert dropped[0]["because_of"] == A and dropped[0]["abs_r"] > 0.99
    # at a threshold below |r(A, D)| D goes too; above 0.9999 nothing does
    assert [d["feature"] for d in correlated_features(df[[A, B, C, D]], threshold=0.5)] == [B, D]
    assert correlated_features(df[[A, B, C, D]], threshold=0.9999) == []


def test_prune_keeps_schema_order_drops_constant_and_port_by_default() -> None:
    train, test = frame(seed=1), frame(seed=2)
    train.loc[0, D] = np.inf
    test.loc[[0, 1], D] = [np.nan, -np.inf]
    median = float(np.median(train[D].to_numpy()[1:]))  # the finite training values
    p_train, p_test, extra = prune(train, test, {"use_destination_port": False, "correlation_threshold": 0.8})
    report = extra["report"]
    assert report["features"] == [A, C, D] and list(p_train.columns) == [A, C, D, LABEL_COLUMN]
    assert list(p_test.columns) == list(p_train.columns)
    assert report["constant_on_train"] == ["Bwd URG Flags"]
    assert extra["medians"][D] == median
    assert p_train.loc[0, D] == median and p_test.loc[0, D] == median and p_test.loc[1, D] == median
    with_port = prune(train, test, {"use_destination_port": True, "correlation_threshold": 0.8})[2]["report"]
    assert with_port["features"] == ["Destination Port", A, C, D]


def test_chunked_correlation_equals_numpy() -> None:
    df = frame(n=1000, seed=3)[[A, B, C, D]] * [1e6, 1.0, 1e-3, 7.0] + [5e9, 0.0, 1.0, -3.0]
    np.testing.assert_allclose(
        correlation_matrix(df, chunk_rows=97), np.corrcoef(df.to_numpy(), rowvar=False), rtol=1e-9, atol=1e-12
    )
