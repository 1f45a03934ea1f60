"""Build the self-contained inference model that is registered in MLflow.

The registered model is a plain scikit-learn :class:`~sklearn.pipeline.Pipeline` made only of
scikit-learn steps and one numpy function, so a sensor loads it with MLflow + scikit-learn and
never imports ``pipeline/``:

1. ``select``  a ColumnTransformer picking the selected features *by name* (extra columns are
   dropped, a missing one raises ``ValueError: columns are missing: {...}``);
2. ``inf``     ``numpy.nan_to_num`` turning +inf/-inf into NaN (a FunctionTransformer);
3. ``impute``  a SimpleImputer whose statistics are the *training* medians;
4. ``clip``    ``numpy.clip`` to the float32 range the trees compare in (a finite 1e308 would
   become inf in float32 and make scikit-learn refuse the whole batch);
5. ``clf``     the fitted RandomForest (its ``classes_`` are the group labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

#: Types outside skops' default trust list that the model holds; given to MLflow's skops
#: serialiser so the model loads without ``UntrustedTypesFoundException``.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.clip",
    "numpy.dtype",
    "numpy.nan_to_num",
    "sklearn.tree._tree.Tree",
)

#: Largest float32: the trees compare features as float32.
FLOAT32_MAX: float = float(np.finfo(np.float32).max)


def build_preprocessor(features: Sequence[str], medians: Mapping[str, float]) -> Pipeline:
    """Return the fitted preprocessing (select by name, ±inf -> NaN, NaN -> training median,
    clip to the float32 range).

    Fitting the imputer on a single row of medians makes its statistics exactly those medians.
    """
    missing = [f for f in features if f not in medians]
    if missing:
        raise ValueError(f"no training median for selected feature(s): {missing}")
    if not features:
        raise ValueError("cannot build a model without features")
    row = pd.DataFrame([{f: float(medians[f]) for f in features}], columns=list(features))
    if not np.isfinite(row.to_numpy()).all():
        raise ValueError("training medians must be finite")
    select = ColumnTransformer(
        [("features", "passthrough", list(features))], remainder="drop", verbose_feature_names_out=False
    )
    to_nan = FunctionTransformer(
        np.nan_to_num,
        kw_args={"nan": np.nan, "posinf": np.nan, "neginf": np.nan},
        feature_names_out="one-to-one",
    )
    clip = FunctionTransformer(
        np.clip, kw_args={"a_min": -FLOAT32_MAX, "a_max": FLOAT32_MAX}, feature_names_out="one-to-one"
    )
    prep = Pipeline(
        [("select", select), ("inf", to_nan), ("impute", SimpleImputer(strategy="median")), ("clip", clip)]
    )
    return prep.fit(row)


def build_inference_model(
    features: Sequence[str], medians: Mapping[str, float], classifier: ClassifierMixin
) -> Pipeline:
    """Wrap a classifier fitted on the preprocessed features into the self-contained pipeline.

    ``classifier`` must have been fitted on ``build_preprocessor(...).transform(train)`` (a numpy
    array in ``features`` order); :func:`fit_inference_model` does both.
    """
    return Pipeline([("prep", build_preprocessor(features, medians)), ("clf", classifier)])


def fit_inference_model(
    train: pd.DataFrame,
    labels: Sequence[str] | pd.Series,
    features: Sequence[str],
    medians: Mapping[str, float],
    classifier: ClassifierMixin,
) -> Pipeline:
    """Fit ``classifier`` on ``train`` through the preprocessor and return the full pipeline."""
    prep = build_preprocessor(features, medians)
    classifier.fit(prep.transform(train), np.asarray(labels))
    return Pipeline([("prep", prep), ("clf", classifier)])


def untrusted_types(model: Pipeline) -> list[str]:
    """Types in ``model`` that skops would refuse to load; must be within :data:`TRUSTED_TYPES`."""
    return sorted(sio.get_untrusted_types(data=sio.dumps(model)))
