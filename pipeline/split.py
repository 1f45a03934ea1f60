"""Stage ``split``: hold out the test set before anything is fitted.

Strategies (``split.strategy``, ``conf/split/``):

* ``stratified``: the study's seeded random hold-out with class proportions kept.  Near-duplicate
  flows of one attack session land on both sides, so its scores are optimistic.
* ``conversation``: every flow of one (unordered) address pair lands on one side
  (scikit-learn's StratifiedGroupKFold; the fold whose size is nearest ``test_size`` is the test
  set).  The honest figure: the model never saw the test conversations.  A class whose flows all
  belong to one conversation can only be on one side; the metrics list such classes.
* ``session``: an address pair's flows are cut into sessions wherever the pair is idle longer than
  ``split.idle_gap_s``; whole sessions go to one side, and every original attack label (the
  ``Attack`` column of ``group``) with more than one session has sessions on both sides (about
  ``test_size`` of its rows held out), so every group made of such attacks is tested.  Grouping
  by pair alone puts every CICIDS2017 attack (one attacker, one victim) on one side; sessions test
  on unseen attack runs.  The metrics give the counts per attack and per class.
* ``by_day``: whole source files whose name contains one of ``split.test_files`` are the test set
  (the original day files, or day folders: names are relative to the input folder).

A class with a single row cannot be on both sides: it stays in training (all strategies but
``by_day``, which moves whole files), listed in the metrics as ``kept_in_training``.  Where no
split is possible (no rows, or too few for the strategy) the stage stops with one line.

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
from pipeline.group import ATTACK_COLUMN
from pipeline.io import read_parquet, require_inputs, write_json, write_parquet
from pipeline.stage import log_metrics, stage_cli

INPUT = "data/group/flows.parquet"
TRAIN_OUT = "data/split/train.parquet"
TEST_OUT = "data/split/test.parquet"
METRICS_OUT = "metrics/split.json"
STRATEGIES = ("stratified", "conversation", "session", "by_day")
#: the default idle gap of split=session when the config sets none (seconds)
DEFAULT_IDLE_GAP_S = 5.0


class SplitError(ValueError):
    """The configured split cannot be made on this data (the message says why)."""


def conversation_ids(flows: pd.DataFrame, strategy: str = "conversation") -> np.ndarray:
    """One integer per unordered (address, address) pair: both directions are one conversation."""
    for col in ("Source IP", "Destination IP"):
        if col not in flows.columns or flows[col].isna().any():
            raise SplitError(
                f"split.strategy={strategy} needs {col!r} on every flow; the MachineLearningCVE "
                "layout has no addresses (use split=stratified or split=by_day)"
            )
    a, b = flows["Source IP"].astype(str).to_numpy(), flows["Destination IP"].astype(str).to_numpy()
    low, high = np.where(a <= b, a, b), np.where(a <= b, b, a)
    return pd.factorize(pd.Series(low) + "|" + pd.Series(high))[0]


def session_ids(flows: pd.DataFrame, idle_gap_s: float) -> np.ndarray:
    """One integer per session: an address pair's flows until the pair is idle > ``idle_gap_s``.

    A flow starts a new session when it starts more than the gap after every earlier flow of its
    pair has ended (``Timestamp`` + ``Flow Duration`` in microseconds).
    """
    pairs = conversation_ids(flows, "session")
    if "Timestamp" not in flows.columns:
        raise SplitError("split.strategy=session needs the Timestamp column (use split=stratified)")
    start = pd.to_datetime(flows["Timestamp"], format="mixed", errors="coerce")
    if start.isna().any():
        bad = flows["Timestamp"][start.isna()].astype(str).unique()[:3].tolist()
        raise SplitError(
            f"split.strategy=session: {int(start.isna().sum())} flows without a readable Timestamp "
            f"(e.g. {bad})"
        )
    t0 = start.to_numpy(dtype="datetime64[ns]").astype("int64")
    duration = (
        np.nan_to_num(flows["Flow Duration"].to_numpy(dtype="float64"), nan=0.0)
        if ("Flow Duration" in flows.columns)
        else np.zeros(len(flows))
    )
    end = t0 + np.clip(duration, 0, None).astype("int64") * 1000
    order = np.lexsort((t0, pairs))
    frame = pd.DataFrame({"pair": pairs[order], "start": t0[order], "end": end[order]})
    seen_end = frame.groupby("pair")["end"].cummax().groupby(frame["pair"]).shift()
    new = seen_end.isna().to_numpy() | (frame["start"].to_numpy() > seen_end.to_numpy() + idle_gap_s * 1e9)
    ids = np.empty(len(flows), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def split_sessions(
    strata: np.ndarray, sessions: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Boolean test mask of whole sessions, stratum by stratum, and the sessions per stratum and side.

    ``strata`` is one value per row (the original attack label, or the class).  Each session
    belongs to its most frequent stratum; a stratum with two or more sessions gets a seeded random
    choice of them, as near ``test_size`` of its rows as whole sessions allow, on the test side,
    and at least one session on each side.  A stratum with one session stays in training.
    """
    table = pd.DataFrame({"session": sessions, "label": strata})
    sizes = table.groupby(["session", "label"]).size()
    owner = sizes.groupby(level=0).idxmax().map(lambda key: key[1])  # session -> its main class
    rows = table.groupby("session").size()
    rng = np.random.default_rng(seed)
    test_sessions: list[int] = []
    per_class: dict[str, dict[str, int]] = {}
    for label in sorted(owner.unique()):
        mine = owner.index[owner.to_numpy() == label].to_numpy()
        chosen: list[int] = []
        if len(mine) > 1:
            # in a seeded random order, take a session whenever it brings the held-out rows
            # nearer the target; at least one session each side
            target, taken = test_size * rows.loc[mine].sum(), 0
            for s in rng.permutation(mine):
                if abs(taken + rows[s] - target) < abs(taken - target) and len(chosen) < len(mine) - 1:
                    chosen.append(int(s))
                    taken += rows[s]
            if not chosen:  # one huge session: the one nearest the target goes
                chosen = [int((rows.loc[mine] - target).abs().idxmin())]
        test_sessions += chosen
        per_class[str(label)] = {"sessions_train": len(mine) - len(chosen), "sessions_test": len(chosen)}
    return np.isin(sessions, test_sessions), per_class


def split_stratified(y: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """Boolean test mask of a seeded stratified random hold-out (every class has two rows or more)."""
    idx = np.arange(len(y))
    try:
        _, test_idx = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    except ValueError as err:  # e.g. fewer test rows than classes
        raise SplitError(f"no stratified split of {len(y)} rows possible: {err}") from None
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


def single_row_classes(y: np.ndarray) -> dict[str, int]:
    """The classes with exactly one row: no split can put them on both sides."""
    counts = pd.Series(y).value_counts()
    return {str(c): int(n) for c, n in counts[counts < 2].sort_index().items()}


def split_mask(flows: pd.DataFrame, cfg: dict[str, Any], seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Boolean test mask by ``cfg['strategy']`` and a report (sizes, classes per side)."""
    strategy = cfg.get("strategy")
    if strategy not in STRATEGIES:
        raise SplitError(f"split.strategy={strategy!r} is not one of {list(STRATEGIES)}")
    test_size = float(cfg.get("test_size", 0.3))
    if strategy != "by_day" and not 0 < test_size < 1:
        raise SplitError(f"split.test_size={test_size} must be between 0 and 1")
    if len(flows) < 2:
        raise SplitError(
            f"no split possible: {len(flows)} flow(s) left after cleaning (header-only or "
            "duplicate-only input? see metrics/clean.json)"
        )
    y = flows[LABEL_COLUMN].astype(str).to_numpy()
    report: dict[str, Any] = {"strategy": strategy}
    if strategy == "by_day":
        test = split_by_day(flows[SOURCE_COLUMN], list(cfg.get("test_files") or []))
        report["test_files"] = sorted(flows.loc[test, SOURCE_COLUMN].astype(str).unique())
    else:
        # single-row classes stay in training; the strategy splits the other rows
        rare = single_row_classes(y)
        report["kept_in_training"] = rare
        rest = ~np.isin(y, list(rare))
        if rest.sum() < 2:
            raise SplitError(f"no split possible: every class has a single row ({rare})")
        test = np.zeros(len(y), dtype=bool)
        test[rest] = _split_rest(flows.loc[rest], y[rest], strategy, cfg, test_size, seed, report)
    if not test.any():
        raise SplitError(f"no split possible: split.strategy={strategy} left the test side empty")
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


def _split_rest(
    flows: pd.DataFrame,
    y: np.ndarray,
    strategy: str,
    cfg: dict[str, Any],
    test_size: float,
    seed: int,
    report: dict[str, Any],
) -> np.ndarray:
    """Test mask of the stratified/conversation/session strategies; adds their counts to ``report``."""
    if strategy == "stratified":
        return split_stratified(y, test_size, seed)
    if strategy == "conversation":
        groups = conversation_ids(flows)
        test = split_conversation(y, groups, test_size, seed)
        report["conversations"] = {
            "train": int(len(np.unique(groups[~test]))),
            "test": int(len(np.unique(groups[test]))),
        }
        report["conversations_on_both_sides"] = int(len(np.intersect1d(groups[~test], groups[test])))
        return test
    gap = float(cfg.get("idle_gap_s") or DEFAULT_IDLE_GAP_S)
    sessions = session_ids(flows, gap)
    # by original attack (tool) where the data keeps it: a group of several tools (Brute Force:
    # FTP and SSH) is tested on unseen sessions of each tool, not on a tool never trained on
    by = ATTACK_COLUMN if ATTACK_COLUMN in flows.columns else LABEL_COLUMN
    test, per_stratum = split_sessions(flows[by].astype(str).to_numpy(), sessions, test_size, seed)
    report["idle_gap_s"] = gap
    report["sessions_stratified_by"] = by
    report["sessions"] = {
        "train": int(len(np.unique(sessions[~test]))),
        "test": int(len(np.unique(sessions[test]))),
    }
    report["sessions_per_stratum"] = per_stratum
    report["strata_with_one_session"] = sorted(c for c, n in per_stratum.items() if n["sessions_test"] == 0)
    return test


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
