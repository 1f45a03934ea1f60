"""Stage ``split``: hold out the test set before anything is fitted.

Strategies (``split.strategy``, ``conf/split/``):

* ``stratified``: the study's seeded random hold-out with class proportions kept.  Near-duplicate
  flows of one attack session land on both sides, so its scores are optimistic.
* ``conversation``: every flow of one (unordered) address pair lands on one side
  (scikit-learn's StratifiedGroupKFold; the fold whose size is nearest ``test_size`` is the test
  set).  The honest figure: the model never saw the test conversations.  A class whose flows all
  belong to one conversation can only be on one side; the metrics list such classes.
* ``by_day``: whole source files whose name contains one of ``split.test_files`` are the test set
  (the original day files).

Every later statistic (medians, correlations, SMOTE, RFE, sweep) sees the training rows only.
Writes ``data/split/{train,test}.parquet`` and ``metrics/split.json``.
Usage: ``python -m pipeline.split`` (reads params.yaml).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from flows.schema import LABEL_COLUMN, SOURCE_COLUMN
from pipeline import tracking
from pipeline.io import read_parquet, require_inputs, write_json, write_parquet
from pipeline.stage import log_metrics, stage_cli

INPUT = "data/group/flows.parquet"
TRAIN_OUT = "data/split/train.parquet"
TEST_OUT = "data/split/test.parquet"
METRICS_OUT = "metrics/split.json"
STRATEGIES = ("stratified", "conversation", "by_day")


class SplitError(ValueError):
    """The configured split cannot be made on this data (the message says why)."""


def conversation_ids(flows: pd.DataFrame) -> np.ndarray:
    """One integer per unordered (address, address) pair: both directions are one conversation."""
    for col in ("Source IP", "Destination IP"):
        if col not in flows.columns or flows[col].isna().any():
            raise SplitError(
                f"split.strategy=conversation needs {col!r} on every flow; the MachineLearningCVE "
                "layout has no addresses (use split=stratified or split=by_day)"
            )
    a, b = flows["Source IP"].astype(str).to_numpy(), flows["Destination IP"].astype(str).to_numpy()
    low, high = np.where(a <= b, a, b), np.where(a <= b, b, a)
    return pd.factorize(pd.Series(low) + "|" + pd.Series(high))[0]


def split_stratified(y: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """Boolean test mask of a seeded stratified random hold-out."""
    idx = np.arange(len(y))
    counts = pd.Series(y).value_counts()
    # a class with a single row cannot be stratified: it stays in training (reported)
    stratify = np.where(pd.Series(y).map(counts).to_numpy() > 1, y, "__rare__")
    _, test_idx = train_test_split(idx, test_size=test_size, random_state=seed, stratify=stratify)
    mask = np.zeros(len(y), dtype=bool)
    mask[test_idx] = True
    return mask


def split_conversation(y: np.ndarray, groups: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """Boolean test mask: whole conversations, classes spread as evenly as the groups allow."""
    n_splits = max(2, int(round(1 / test_size)))
    if len(np.unique(groups)) < n_splits:
        raise SplitError(f"only {len(np.unique(groups))} conversations: cannot hold out whole ones")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    best, best_gap = None, np.inf
    for _, test_idx in folds.split(np.zeros(len(y)), y, groups):
        gap = abs(len(test_idx) / len(y) - test_size)
        if gap < best_gap:
            best, best_gap = test_idx, gap
    mask = np.zeros(len(y), dtype=bool)
    mask[best] = True
    return mask


def split_by_day(sources: pd.Series, test_files: list[str]) -> np.ndarray:
    """Boolean test mask: rows whose source file name contains one of ``test_files``."""
    if not test_files:
        raise SplitError("split.strategy=by_day needs split.test_files (substrings of file names)")
    names = sources.astype(str)
    mask = np.zeros(len(names), dtype=bool)
    for part in test_files:
        mask |= names.str.contains(str(part), regex=False).to_numpy()
    if not mask.any() or mask.all():
        files = sorted(names.unique())
        side = "no" if not mask.any() else "every"
        raise SplitError(f"split.test_files={test_files} matches {side} input file: {files}")
    return mask


def split_mask(flows: pd.DataFrame, cfg: dict[str, Any], seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Boolean test mask by ``cfg['strategy']`` and a report (sizes, classes per side)."""
    strategy = cfg.get("strategy")
    if strategy not in STRATEGIES:
        raise SplitError(f"split.strategy={strategy!r} is not one of {list(STRATEGIES)}")
    test_size = float(cfg.get("test_size", 0.3))
    if strategy != "by_day" and not 0 < test_size < 1:
        raise SplitError(f"split.test_size={test_size} must be between 0 and 1")
    y = flows[LABEL_COLUMN].astype(str).to_numpy()
    report: dict[str, Any] = {"strategy": strategy}
    if strategy == "stratified":
        test = split_stratified(y, test_size, seed)
    elif strategy == "conversation":
        groups = conversation_ids(flows)
        test = split_conversation(y, groups, test_size, seed)
        report["conversations"] = {
            "train": int(len(np.unique(groups[~test]))),
            "test": int(len(np.unique(groups[test]))),
        }
        report["conversations_on_both_sides"] = int(len(np.intersect1d(groups[~test], groups[test])))
    else:
        test = split_by_day(flows[SOURCE_COLUMN], list(cfg.get("test_files") or []))
        report["test_files"] = sorted(flows.loc[test, SOURCE_COLUMN].astype(str).unique())
    train_counts = pd.Series(y[~test]).value_counts()
    test_counts = pd.Series(y[test]).value_counts()
    classes = sorted(set(y))
    report.update(
        {
            "train_rows": int((~test).sum()),
            "test_rows": int(test.sum()),
            "test_fraction": float(test.sum()) / max(1, len(flows)),
            "classes": {
                c: {"train": int(train_counts.get(c, 0)), "test": int(test_counts.get(c, 0))} for c in classes
            },
            "classes_missing_from_test": [c for c in classes if test_counts.get(c, 0) == 0],
            "classes_missing_from_train": [c for c in classes if train_counts.get(c, 0) == 0],
        }
    )
    return test, report


def split_flows(
    flows: pd.DataFrame, cfg: dict[str, Any], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Split by ``cfg['strategy']``; return train, test and the report of :func:`split_mask`."""
    test, report = split_mask(flows, cfg, seed)
    return flows.loc[~test].reset_index(drop=True), flows.loc[test].reset_index(drop=True), report


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage."""
    params = stage_cli("split", __doc__, argv)
    require_inputs("split", [INPUT])
    with tracking.stage_run("split", params, ["split", "seed"]):
        flows = read_parquet(INPUT)
        try:
            test, report = split_mask(flows, params["split"], int(params["seed"]))
        except SplitError as err:
            raise SystemExit(f"split: {err}") from None
        # one side at a time: the full set plus one side in memory, not three copies
        for mask, out in ((~test, TRAIN_OUT), (test, TEST_OUT)):
            write_parquet(flows.loc[mask].reset_index(drop=True), out)
        write_json(report, METRICS_OUT)
        log_metrics({k: report[k] for k in ("train_rows", "test_rows", "test_fraction")})
    print(f"split ({report['strategy']}): {report['train_rows']:,} train / {report['test_rows']:,} test rows")
    for side in ("test", "train"):
        if report[f"classes_missing_from_{side}"]:
            print(f"split: WARNING: no {side} rows for {report[f'classes_missing_from_{side}']}")


if __name__ == "__main__":
    main()
