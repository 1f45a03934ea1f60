"""The held-out test set: made before any fitting, and nothing fitted later sees its rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flows.schema import LABEL_COLUMN, SOURCE_COLUMN
from pipeline.clean import clean_flows
from pipeline.group import group_flows
from pipeline.io import PROJECT_ROOT
from pipeline.layouts import read_flow_folder
from pipeline.params import compose_params
from pipeline.prune import prune
from pipeline.split import SplitError, session_ids, split_flows

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
    """Medians and correlations are fitted on the training side only."""
    train, test, _ = split_flows(grouped, {"strategy": "stratified", "test_size": 0.3}, seed=42)
    # make the test side extreme: a leak would move the medians and break the correlations
    test = test.copy()
    test["Flow IAT Mean"] = 1e12
    test["Flow Bytes/s"] = np.inf
    test["Fwd IAT Total"] = -test["Flow Duration"] * 1e6
    cfg = {"use_destination_port": False, "correlation_threshold": 0.8}
    # the medians, computed here independently: training rows only, ±inf as missing
    finite_train = train["Flow IAT Mean"].replace([np.inf, -np.inf], np.nan)
    both = pd.concat([train["Flow IAT Mean"], test["Flow IAT Mean"]])
    rate_median = float(train["Flow Bytes/s"].replace([np.inf, -np.inf], np.nan).median())
    _, p_test, extra = prune(train, test, cfg)
    assert extra["medians"]["Flow IAT Mean"] == pytest.approx(float(finite_train.median()))
    assert extra["medians"]["Flow IAT Mean"] != pytest.approx(float(both.median()))  # a leak would show
    # the test rows' inf rate is replaced by the *training* median
    assert (p_test["Flow Bytes/s"] == rate_median).all()
    # on train Fwd IAT Total tracks Flow Duration, so it goes, whatever the test side says
    dropped = {d["feature"]: d["because_of"] for d in extra["report"]["correlated"]}
    assert dropped["Fwd IAT Total"] == "Flow Duration"


def test_no_stage_after_split_but_train_reads_the_test_rows() -> None:
    """SMOTE, selection and the sweep are fitted on training rows: no such stage depends on the test set."""
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("balance", "select", "sweep"):
        deps = stages[name]["deps"]
        assert not [d for d in deps if "test" in str(d)], name
        assert any(str(d).startswith(("data/prune/train", "data/balance/train")) for d in deps), name
    assert "data/prune/test.parquet" in stages["train"]["deps"]


def flows_of(rows: list[tuple[str, str, float, str]], duration_us: float = 1e6) -> pd.DataFrame:
    """Flows (source, destination, start second, label) with canonical columns the split reads."""
    base = pd.Timestamp("2017-07-07 10:00:00")
    return pd.DataFrame(
        {
            "Source IP": [r[0] for r in rows],
            "Destination IP": [r[1] for r in rows],
            "Timestamp": [str(base + pd.Timedelta(seconds=r[2])) for r in rows],
            "Flow Duration": duration_us,
            "Flow Bytes/s": np.arange(len(rows), dtype="float64"),
            LABEL_COLUMN: [r[3] for r in rows],
        }
    )


def test_session_ids_cut_a_pair_where_it_is_idle_longer_than_the_gap() -> None:
    rows = [
        ("a", "b", 0, "X"),
        ("b", "a", 5, "X"),
        ("a", "b", 12, "X"),  # one session: each starts < 10 s after the last one ended
        ("a", "b", 45, "X"),  # 32 s after the last flow ended: a new session
        ("a", "c", 1, "X"),  # another pair: its own session even when interleaved
        ("a", "b", 46, "X"),
    ]
    ids = session_ids(flows_of(rows), idle_gap_s=10)
    assert ids[0] == ids[1] == ids[2] and ids[3] == ids[5] and len({ids[0], ids[3], ids[4]}) == 3
    # a long flow keeps its session open: the next flow starts 4 s after it ended
    long = flows_of([("a", "b", 0, "X"), ("a", "b", 40, "X")], duration_us=36e6)
    assert len(set(session_ids(long, idle_gap_s=10))) == 1
    assert len(set(session_ids(long, idle_gap_s=3))) == 2


def _sessions_flows() -> pd.DataFrame:
    """Three classes: A in 6 sessions of 10 flows, B in 3 sessions of 10, C in one session of 10."""
    rows = []
    for label, pair, n_sessions in (
        ("A", ("10.0.0.1", "10.0.0.2"), 6),
        ("B", ("10.0.0.3", "10.0.0.4"), 3),
        ("C", ("10.0.0.5", "10.0.0.6"), 1),
    ):
        for s in range(n_sessions):
            rows += [(pair[i % 2], pair[1 - i % 2], s * 3600 + i, label) for i in range(10)]
    return flows_of(rows)


def test_session_split_keeps_sessions_whole_and_every_multi_session_class_on_both_sides() -> None:
    flows = _sessions_flows()
    cfg = {"strategy": "session", "test_size": 0.3, "idle_gap_s": 60}
    train, test, report = split_flows(flows, cfg, seed=3)
    sessions = session_ids(flows, 60)
    test_mask = flows["Flow Bytes/s"].isin(test["Flow Bytes/s"]).to_numpy()
    assert not set(sessions[test_mask]) & set(sessions[~test_mask])  # no session on both sides
    assert report["sessions_per_stratum"] == {
        "A": {"sessions_train": 4, "sessions_test": 2},
        "B": {"sessions_train": 2, "sessions_test": 1},
        "C": {"sessions_train": 1, "sessions_test": 0},
    }
    assert report["classes"] == {
        "A": {"train": 40, "test": 20},
        "B": {"train": 20, "test": 10},
        "C": {"train": 10, "test": 0},
    }
    assert report["strata_with_one_session"] == ["C"] and report["sessions"] == {"train": 7, "test": 3}
    other, _, _ = split_flows(flows, cfg, seed=4)
    again, _, _ = split_flows(flows, cfg, seed=3)
    assert again.equals(train) and not other.equals(train)


def test_session_split_on_the_sample_tests_every_class_with_more_than_one_session(
    grouped: pd.DataFrame,
) -> None:
    cfg = compose_params(["split=session"])["split"]
    train, test, report = split_flows(grouped, cfg, 42)
    assert report["sessions_stratified_by"] == "Attack"
    # one continuous run each: all in training
    assert report["strata_with_one_session"] == ["DDoS", "DoS Slowloris", "Heartbleed", "Web Attack - XSS"]
    for attack, n in report["sessions_per_stratum"].items():
        assert n["sessions_train"] >= 1 and (n["sessions_test"] >= 1) == (
            n["sessions_train"] + n["sessions_test"] > 1
        )
        assert (test["Attack"].astype(str) == attack).any() == (n["sessions_test"] >= 1), attack
    for cls, n in report["classes"].items():
        assert (n["test"] > 0) == (cls not in ("DDoS", "Heartbleed")), cls
        assert n["train"] > 0, cls
    # no session on both sides
    sessions = session_ids(grouped, cfg["idle_gap_s"])
    on_test = np.isin(keys_array(grouped), keys_array(test))
    assert not set(sessions[on_test]) & set(sessions[~on_test])
    # the conversation split, for contrast, holds out only a few classes
    _, _, by_pair = split_flows(grouped, {"strategy": "conversation", "test_size": 0.3}, 42)
    assert len(by_pair["classes_missing_from_test"]) >= 5


def keys_array(df: pd.DataFrame) -> np.ndarray:
    """One string per flow (Flow ID, Timestamp, Source Port): identifies rows across frames."""
    return df[KEY].astype(str).agg("|".join, axis=1).to_numpy()


@pytest.mark.parametrize("strategy", ["stratified", "conversation", "session"])
@pytest.mark.parametrize("n_single", [1, 2])
def test_single_row_classes_stay_in_training_and_are_reported(strategy: str, n_single: int) -> None:
    flows = _sessions_flows()
    singles = flows_of([("10.0.9.9", f"10.0.8.{i}", 7200 * (i + 1), f"R{i}") for i in range(n_single)])
    flows = pd.concat([flows, singles], ignore_index=True)
    train, test, report = split_flows(flows, {"strategy": strategy, "test_size": 0.3, "idle_gap_s": 60}, 0)
    rare = {f"R{i}" for i in range(n_single)}
    assert report["kept_in_training"] == {r: 1 for r in rare}
    assert rare <= set(train[LABEL_COLUMN]) and not rare & set(test[LABEL_COLUMN])
    assert len(train) + len(test) == len(flows)


def test_no_split_possible_is_a_one_line_error(cicids_fixtures: Path, tmp_path: Path) -> None:
    header = (cicids_fixtures / "trafficlabelling-friday-ddos-head.csv").read_bytes().split(b"\n", 1)[0]
    (tmp_path / "header-only.csv").write_bytes(header + b"\n")
    flows, _ = read_flow_folder(tmp_path, progress=False)
    clean, _ = clean_flows(flows)
    grouped_, _ = group_flows(clean, compose_params()["labels"]["mapping"])
    for strategy in ("stratified", "conversation", "session"):
        with pytest.raises(SplitError, match=r"^no split possible: 0 flow\(s\) left after cleaning"):
            split_flows(grouped_, {"strategy": strategy, "test_size": 0.3}, 0)
    # duplicates only: one row survives cleaning
    row = (cicids_fixtures / "trafficlabelling-friday-ddos-head.csv").read_bytes().split(b"\n")[1]
    (tmp_path / "header-only.csv").write_bytes(header + b"\n" + row + b"\n" + row + b"\n")
    flows, _ = read_flow_folder(tmp_path, progress=False)
    clean, _ = clean_flows(flows)
    with pytest.raises(SplitError, match=r"^no split possible: 1 flow\(s\)"):
        split_flows(clean, {"strategy": "stratified", "test_size": 0.3}, 0)
    # two classes of one row each: nothing left to split once they stay in training
    two = flows_of([("a", "b", 0, "X"), ("a", "b", 1, "Y")])
    with pytest.raises(SplitError, match="every class has a single row"):
        split_flows(two, {"strategy": "stratified", "test_size": 0.3}, 0)
