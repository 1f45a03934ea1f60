"""The benchmark's inputs: the study and tuned forests trained on the shared engelen sample, and
meter-format CSV rows made from the same sample.

Features are ranked once by a forest's impurity importance on every candidate feature (a cheap
stand-in for the pipeline's RFE: the benchmark measures speed, which depends on the number of
features, depth and trees, not on which features they are).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flows.meter_csv import arrow_schema
from flows.schema import COLUMN_KINDS, FLOW_COLUMNS, feature_columns
from pipeline.forest import forest
from pipeline.group import group_labels
from pipeline.layouts import read_flow_folder
from pipeline.model import fit_inference_model
from pipeline.onnx_forest import forest_to_onnx
from pipeline.params import load_params
from serve.model_source import LoadedModel
from serve.runtime import OnnxForest, Predictor


@dataclass
class Spec:
    """One benchmarked model: a name, how many of the ranked features, depth, trees."""

    name: str
    n_features: int
    max_depth: int
    n_estimators: int


SPECS = (Spec("study", 10, 8, 14), Spec("tuned", 18, 12, 30))


def load_sample(folder: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The sample's flows (every canonical column, meter dtypes) and their group labels."""
    frame, _ = read_flow_folder(folder, progress=False)
    labels = group_labels(frame["Label"], load_params()["labels"]["mapping"]).astype(str).to_numpy()
    return meter_typed(frame), labels


def meter_typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical columns in the dtypes the meter's CSV reader gives (int kinds int64)."""
    out = {}
    for column in FLOW_COLUMNS:
        kind = COLUMN_KINDS[column]
        values = frame[column]
        if kind == "int":
            raw = np.nan_to_num(values.to_numpy(dtype=np.float64, na_value=np.nan), nan=0, posinf=0, neginf=0)
            out[column] = raw.astype(np.int64)
        elif kind == "float":
            out[column] = values.to_numpy(dtype=np.float64)
        else:
            out[column] = values.astype(str).to_numpy(dtype=object)
    return pd.DataFrame(out)


def ranked_features(frame: pd.DataFrame, labels: np.ndarray, seed: int = 0) -> list[str]:
    """Candidate features (no Destination Port) by a forest's importance, most important first."""
    candidates = feature_columns(False)
    x = np.nan_to_num(frame[candidates].to_numpy(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    importance = forest(30, 12, seed, n_jobs=1).fit(x, labels).feature_importances_
    return [candidates[i] for i in np.argsort(-importance, kind="stable")]


def train(spec: Spec, frame: pd.DataFrame, labels: np.ndarray, ranked: list[str], seed: int = 0):
    """The pipeline's self-contained model (select, ±inf -> NaN, median imputer, forest) for ``spec``."""
    features = ranked[: spec.n_features]
    finite = frame[features].replace([np.inf, -np.inf], np.nan)
    medians = {f: float(finite[f].median()) for f in features}
    clf = forest(spec.n_estimators, spec.max_depth, seed, n_jobs=1)
    return fit_inference_model(frame, labels, features, medians, clf), features


def loaded(model, name: str, features: list[str], runtime: str, onnx_dir: Path) -> LoadedModel:
    """The model as the sensor holds it, on the ``sklearn`` or ``onnx`` runtime, one thread."""
    predictor = Predictor(model, features, threads=1)
    if runtime == "onnx":
        path = onnx_dir / f"{name}.onnx"
        path.write_bytes(forest_to_onnx(model.steps[-1][1], len(features)))
        predictor.forest = OnnxForest(path, len(predictor.classes), threads=1)
    return LoadedModel(
        name=name,
        version="1",
        uri=f"bench:{name}",
        profile="engelen",
        features=features,
        classes=list(predictor.classes),
        runtime=runtime,
        from_cache=False,
        predictor=predictor,
    )


def meter_csv_batches(frame: pd.DataFrame, rows: int, batch: int) -> list[bytes]:
    """``rows`` meter-format CSV rows (no header; the sample repeated) cut into blocks of ``batch``."""
    reps = -(-rows // len(frame))
    table = pa.Table.from_pandas(
        pd.concat([frame] * reps, ignore_index=True).head(rows), preserve_index=False
    )
    table = table.cast(arrow_schema())
    batches = []
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for start in range(0, rows, batch):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table.slice(start, batch), sink, write_options=options)
        batches.append(sink.getvalue().to_pybytes())
    return batches
