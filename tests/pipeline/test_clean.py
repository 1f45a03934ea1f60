"""Cleaning counts every row it drops and leaves the rate columns for the training median."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.schema import FEATURE_COLUMNS, LABEL_COLUMN, RATE_COLUMNS
from pipeline.clean import clean_flows, read_input
from pipeline.layouts import LayoutError


def frame(rows: int = 6) -> pd.DataFrame:
    """Canonical features with distinct varying values, one constant column, and labels."""
    df = pd.DataFrame({c: np.arange(rows, dtype="float64") * (i + 1) for i, c in enumerate(FEATURE_COLUMNS)})
    df["Bwd URG Flags"] = 0.0
    df[LABEL_COLUMN] = ["BENIGN", "DoS Hulk"] * (rows // 2)
    return df


def test_each_drop_reason_is_counted() -> None:
    df = frame(10)
    df.loc[0, LABEL_COLUMN] = None  # blank trailing row of the originals
    df.loc[1, "Flow Duration"] = np.nan  # unusable
    df.loc[2, "Fwd IAT Max"] = np.inf  # unusable
    df.loc[3, RATE_COLUMNS[0]] = np.inf  # rate: kept, to impute later
    df.loc[4, RATE_COLUMNS[1]] = np.nan  # rate: kept, to impute later
    df.loc[9] = df.loc[7]  # a duplicate of row 7
    out, report = clean_flows(df)
    assert report["rows_in"] == 10 and report["rows_out"] == 6 and len(out) == 6
    assert report["dropped"] == {"no_label": 1, "unusable_values": 2, "duplicates": 1}
    assert report["unusable_by_column"] == {"Flow Duration": 1, "Fwd IAT Max": 1}
    assert report["rate_values_to_impute"] == {RATE_COLUMNS[0]: 1, RATE_COLUMNS[1]: 1}
    assert report["constant_columns_dropped"] == ["Bwd URG Flags"] and "Bwd URG Flags" not in out
    # ±inf in rate columns became NaN (replaced by the training median in prune), row kept
    assert out[RATE_COLUMNS[0]].isna().sum() == 1 and out[RATE_COLUMNS[1]].isna().sum() == 1
    assert not np.isinf(out[list(RATE_COLUMNS)].to_numpy()).any()
    assert report["labels"] == {"BENIGN": 3, "DoS Hulk": 3}


def test_duplicates_ignore_identifiers_but_not_labels() -> None:
    df = frame(4)
    df["Flow ID"] = ["a", "b", "c", "d"]
    df.loc[1, FEATURE_COLUMNS] = df.loc[0, FEATURE_COLUMNS]  # same flow, other label: kept
    df.loc[3, FEATURE_COLUMNS] = df.loc[1, FEATURE_COLUMNS]
    df.loc[3, LABEL_COLUMN] = df.loc[1, LABEL_COLUMN]  # same flow, same label, other Flow ID: dropped
    out, report = clean_flows(df)
    assert report["dropped"]["duplicates"] == 1
    assert out["Flow ID"].tolist() == ["a", "b", "c"]


def test_input_lists_files_read_and_ignored_and_its_one_profile(
    cicids_fixtures: Path, tmp_path: Path
) -> None:
    name = "trafficlabelling-friday-ddos-head.csv"
    (tmp_path / "Friday").mkdir()
    (tmp_path / "Friday" / f"{name}.gz").write_bytes(gzip.compress((cicids_fixtures / name).read_bytes()))
    (tmp_path / "README.md").write_text("about the data")
    flows, inputs = read_input(tmp_path, "cic2017")
    assert len(flows) == 299
    assert inputs == {
        "files": {
            f"Friday/{name}.gz": {"layout": "trafficlabelling", "flow_profile": "cic2017", "rows": 299}
        },
        "ignored_files": ["README.md"],
        "flow_profile": "cic2017",
    }
    with pytest.raises(
        LayoutError,
        match="data.flow_profile is 'engelen' but every input file is of the "
        "'cic2017' profile; set data.flow_profile=cic2017",
    ):
        read_input(tmp_path, "engelen")


@pytest.mark.parametrize("expected", [None, "engelen", "cic2017"])
def test_a_mix_of_profiles_is_refused_whatever_the_setting(
    cicids_fixtures: Path, engelen_sample: Path, tmp_path: Path, expected: str | None
) -> None:
    shutil.copy(cicids_fixtures / "trafficlabelling-friday-ddos-head.csv", tmp_path / "tl.csv")
    shutil.copy(engelen_sample / "Web_Attack_-_SQL_Injection_13.csv", tmp_path / "corrected.csv")
    with pytest.raises(LayoutError) as err:
        read_input(tmp_path, expected)
    assert str(err.value).startswith(
        "the input mixes meter profiles (cic2017: tl.csv (trafficlabelling); "
        "engelen: corrected.csv (engelen)); one model serves one profile"
    )


def test_values_beyond_float32_are_missing_counted_and_leave_no_overflow() -> None:
    df = frame(10)
    df.loc[1, "Flow Duration"] = 1e308  # an ordinary feature: the row is unusable
    df.loc[2, RATE_COLUMNS[0]] = -1e300  # a rate: imputed later like inf
    df.loc[3, "Fwd IAT Max"] = 3e38  # still inside float32: kept as is
    out, report = clean_flows(df)
    assert report["beyond_float32_range"] == {"Flow Duration": 1, RATE_COLUMNS[0]: 1}
    assert report["dropped"]["unusable_values"] == 1 and report["unusable_by_column"] == {"Flow Duration": 1}
    assert report["rate_values_to_impute"][RATE_COLUMNS[0]] == 1 and out[RATE_COLUMNS[0]].isna().sum() == 1
    assert (out["Fwd IAT Max"] == 3e38).sum() == 1
    feats = [c for c in FEATURE_COLUMNS if c in out.columns]
    with np.errstate(over="raise"):
        as32 = out[feats].to_numpy(dtype="float64")
        as32 = as32[np.isfinite(as32)].astype("float32")  # the select/train cast: no overflow
    assert np.isfinite(as32).all()
