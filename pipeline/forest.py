"""Shared by select/sweep/train: the seeded Random Forest, stratified capping, CV scoring, plots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # stages run headless

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import StratifiedKFold, cross_val_score

from flows.schema import LABEL_COLUMN

#: the class every labels mapping sends normal traffic to
BENIGN = "BENIGN"
#: ``select.scoring`` / ``sweep.scoring`` name of the IDS score (:func:`f1_macro_minus_benign_fp`)
IDS_SCORING = "f1_macro_minus_benign_fp"


def forest(
    n_estimators: int,
    max_depth: int | None,
    seed: int,
    n_jobs: int = 2,
    class_weight: Mapping[str, float] | None = None,
) -> RandomForestClassifier:
    """A seeded RandomForestClassifier (the one model family the pipeline uses)."""
    return RandomForestClassifier(
        n_estimators=int(n_estimators),
        max_depth=None if max_depth is None else int(max_depth),
        random_state=int(seed),
        n_jobs=int(n_jobs),
        class_weight=dict(class_weight) if class_weight else None,
    )


def feature_names(df: pd.DataFrame) -> list[str]:
    """The feature columns of a pruned/balanced frame: every column but the label, in order."""
    if LABEL_COLUMN not in df.columns:
        raise SystemExit(f"input has no {LABEL_COLUMN!r} column; columns: {list(df.columns)[:10]}...")
    return [c for c in df.columns if c != LABEL_COLUMN]


def stratified_cap(df: pd.DataFrame, max_rows: int | None, seed: int, min_per_class: int = 3) -> pd.DataFrame:
    """Return at most ``max_rows`` rows keeping class proportions (seeded).

    Every class keeps at least ``min(min_per_class, its size)`` rows so CV folds still see it.
    """
    if not max_rows or len(df) <= max_rows:
        return df.reset_index(drop=True)
    frac = max_rows / len(df)
    parts = []
    for i, (_, group) in enumerate(df.groupby(LABEL_COLUMN, sort=True, observed=True)):
        n = min(len(group), max(min_per_class, int(round(len(group) * frac))))
        parts.append(group.sample(n=n, random_state=seed + i))
    return pd.concat(parts).sort_index().reset_index(drop=True)


def benign_fp_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of the BENIGN rows predicted as any attack (0 when there are none)."""
    benign = np.asarray(y_true) == BENIGN
    return float((np.asarray(y_pred)[benign] != BENIGN).mean()) if benign.any() else 0.0


def f1_macro_minus_benign_fp(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 minus the benign false-positive rate.

    Why: BENIGN is one class of seven or more in macro-F1, so a point of benign false positives
    moves macro-F1 by about 0.001: a plateau tolerance of 0.005 on macro-F1 lets select/sweep buy
    a smaller model with several points more false alarms, the figure an IDS is judged on
    (issue 8's budget: 1 %).  Here a point of false positives costs 0.01, so the same tolerance
    trades at most half a point.
    """
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0)) - benign_fp_rate(y_true, y_pred)


def scorer(scoring: str) -> Any:
    """What ``cross_val_score`` takes for a config ``scoring`` name: the IDS score or sklearn's name."""
    return make_scorer(f1_macro_minus_benign_fp) if scoring == IDS_SCORING else scoring


def cv_score(
    model: RandomForestClassifier,
    x: np.ndarray,
    y: np.ndarray,
    folds: int,
    scoring: str,
    seed: int,
    sampler: Any = None,
) -> tuple[float, float]:
    """Mean and standard deviation of a stratified, shuffled, seeded k-fold CV score.

    With an imblearn ``sampler`` each training fold is resampled before fitting; the validation
    fold keeps its real rows only.
    """
    if sampler is not None:
        model = ImbPipeline([("balance", sampler), ("forest", model)])
    cv = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=int(seed))
    scores = cross_val_score(model, x, y, cv=cv, scoring=scorer(scoring), n_jobs=1)
    return float(np.mean(scores)), float(np.std(scores))


def class_weights_for(
    y: np.ndarray | pd.Series, weights: Mapping[str, Any] | None
) -> dict[str, float] | None:
    """Restrict ``{group: weight}`` to the classes present in ``y`` (None stays None)."""
    if not weights:
        return None
    present = set(pd.unique(np.asarray(y)))
    missing = present - set(weights)
    if missing:
        raise SystemExit(f"class_weights.json has no weight for class(es): {sorted(missing)}")
    return {k: float(v) for k, v in weights.items() if k in present}
