"""The inference runtime: preprocessing in numpy and the forest in scikit-learn or onnxruntime.

The registered model is the pipeline's self-contained scikit-learn Pipeline: select features by
name, ±inf -> NaN, NaN -> training median, then the forest.  On the hot path the sensor does the
first three steps itself on one numpy matrix (the same arithmetic, without pandas' per-step
validation), clips to the float32 range the trees compare in (1e308 would become inf in float32 and
sklearn refuses inf), and hands the matrix to the forest: scikit-learn's, or an ONNX conversion that
travels with the registered model.  A model of another shape goes through its own ``transform``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from flows.novelty import UNKNOWN, NoveltyGuard
from serve.model_error import ModelError
from serve.verdict import UNJUDGED

_F32_MAX = float(np.finfo(np.float32).max)


class Forest(Protocol):
    """What the runtimes share: class probabilities for a float32 feature matrix."""

    name: str

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities, one row per row of ``x`` and one column per class."""
        ...


class SklearnForest:
    """The forest as scikit-learn fitted it, predicting on ``threads`` threads."""

    name = "sklearn"

    def __init__(self, classifier: Any, threads: int = 1) -> None:
        self.classifier = classifier
        if hasattr(classifier, "n_jobs"):
            classifier.n_jobs = threads  # trained with the pipeline's n_jobs; a sensor shares its cores

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's ``predict_proba``."""
        return self.classifier.predict_proba(x)


class OnnxForest:
    """The forest converted by skl2onnx (``zipmap`` off), run by onnxruntime on ``threads`` threads."""

    name = "onnx"

    def __init__(self, path: Path, n_classes: int, threads: int = 1) -> None:
        try:
            import onnxruntime as ort  # only a sensor that uses the ONNX runtime pays for the import
        except ImportError as exc:
            raise ModelError("onnxruntime is not installed; use the sklearn runtime") from exc

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"cannot load the ONNX forest {path.name}: {str(exc).splitlines()[0]}") from exc
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        if "probabilities" not in outputs:
            raise ModelError(f"the ONNX forest {path.name} has no 'probabilities' output (zipmap on?)")
        self.n_classes = n_classes

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """onnxruntime's probabilities, rounded to 6 decimals.

        The converted trees sum in float32: 0.7 comes out as 0.69999999, which would miss an alert
        threshold of 0.7 that scikit-learn's float64 meets; 6 decimals undo that and keep the order.
        """
        (proba,) = self.session.run(["probabilities"], {self.input_name: x})
        if proba.shape[1] != self.n_classes:
            raise ModelError(f"the ONNX forest gives {proba.shape[1]} classes, the model {self.n_classes}")
        return np.round(proba.astype(np.float64), 6)


def model_parts(model: Any) -> tuple[Any, Any]:
    """Split a fitted Pipeline into (preprocessing, classifier); :class:`ModelError` if it is not one."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2:
        raise ModelError(f"the model is a {type(model).__name__}, not a preprocessing + classifier Pipeline")
    classifier = steps[-1][1]
    if not hasattr(classifier, "predict_proba") or not hasattr(classifier, "classes_"):
        raise ModelError(f"the model's last step ({type(classifier).__name__}) gives no class probabilities")
    return model[:-1], classifier


def _simple_prep(prep: Any) -> tuple[list[str], np.ndarray] | None:
    """(features, medians) when ``prep`` is the pipeline's select -> ±inf->NaN -> median imputer (-> clip)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    # the preprocessing is a Pipeline nested as the outer Pipeline's first step
    inner = prep.steps[0][1] if len(prep.steps) == 1 and isinstance(prep.steps[0][1], Pipeline) else prep
    parts = [s for _, s in inner.steps]
    # an optional last step clips to the float32 range, as Predictor.matrix does anyway
    if len(parts) == 4 and isinstance(parts[3], FunctionTransformer) and parts[3].func is np.clip:
        parts = parts[:3]
    if len(parts) != 3:
        return None
    select, to_nan, impute = parts
    if not (
        isinstance(select, ColumnTransformer)
        and isinstance(to_nan, FunctionTransformer)
        and to_nan.func is np.nan_to_num
        and isinstance(impute, SimpleImputer)
    ):
        return None
    # the specification (a fitted ColumnTransformer wraps "passthrough" in a FunctionTransformer)
    transformers = select.transformers
    if len(transformers) != 1 or transformers[0][1] != "passthrough" or select.remainder != "drop":
        return None
    features = [str(c) for c in transformers[0][2]]
    medians = np.asarray(impute.statistics_, dtype=np.float64)
    if len(medians) != len(features) or not np.isfinite(medians).all():
        return None
    return features, medians


class Predictor:
    """Rows of meter flows -> (labels, probabilities), with unjudgeable rows flagged."""

    def __init__(
        self, model: Any, features: list[str], forest: Forest | None = None, threads: int = 1
    ) -> None:
        prep, classifier = model_parts(model)
        self.classes = np.asarray([str(c) for c in classifier.classes_], dtype=object)
        #: what a code of :meth:`predict_codes` means: the classes, then UNJUDGED, then UNKNOWN
        self.labels = np.append(self.classes, np.asarray([UNJUDGED, UNKNOWN], dtype=object))
        #: the model's novelty guard, if it has one: an attack call unlike that group's training
        #: flows becomes UNKNOWN (flows/novelty.py)
        self.guard: NoveltyGuard | None = None
        simple = _simple_prep(prep)
        #: True: the numpy preprocessing of :meth:`matrix`; False: the model's own ``transform``
        self.fast = simple is not None
        self.prep = prep
        if simple:
            model_features, self.medians = simple
            if model_features != list(features):
                raise ModelError(
                    f"the model reads {len(model_features)} columns but its `features` tag lists "
                    f"{len(features)} others ({sorted(set(model_features) ^ set(features))[:3]})"
                )
        self.features = list(features)
        self.forest: Forest = forest or SklearnForest(classifier, threads)

    def matrix(self, flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The float32 feature matrix the forest reads, and which rows have no finite feature at all."""
        raw = np.empty((len(flows), len(self.features)), dtype=np.float64)
        for j, column in enumerate(self.features):  # column by column: no intermediate DataFrame
            raw[:, j] = flows[column].to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(raw)
        unjudged = ~finite.any(axis=1)
        if self.fast:
            if not finite.all():
                np.copyto(raw, np.broadcast_to(self.medians, raw.shape), where=~finite)
        else:
            raw = np.asarray(self.prep.transform(flows), dtype=np.float64)
        np.clip(raw, -_F32_MAX, _F32_MAX, out=raw)
        return raw.astype(np.float32), unjudged

    def predict_codes(self, flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(index into :attr:`labels` per row, probability of that label as float64).

        Unjudgeable rows get the index of :data:`UNJUDGED` and probability NaN; with a novelty guard,
        an attack call unlike the training flows of its group gets the index of :data:`UNKNOWN`.
        """
        if len(flows) == 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64)
        x, unjudged = self.matrix(flows)
        proba = self.forest.predict_proba(x)
        codes = proba.argmax(axis=1)
        probability = proba[np.arange(len(codes)), codes].astype(np.float64)
        if self.guard is not None:  # the probability stays the one of the group first called
            codes[self.guard.novel(x, self.classes[codes].astype(str))] = len(self.classes) + 1
        if unjudged.any():
            codes[unjudged] = len(self.classes)
            probability[unjudged] = np.nan
        return codes, probability

    def predict(self, flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(labels as an object array of str, probability of that label as float64) per row."""
        codes, probability = self.predict_codes(flows)
        return self.labels[codes], probability
