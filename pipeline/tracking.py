"""MLflow set-up shared by every stage: one tracking URI, one experiment, one run per stage.

``MLFLOW_TRACKING_URI`` in the environment wins (a real tracking server); otherwise the
embedded default from params (SQLite + artifact folder in the project) is made absolute,
so DVC's temporary experiment copies still log to the project's store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec, Schema

from flows.schema import COLUMN_KINDS
from pipeline.io import PROJECT_ROOT
from pipeline.onnx_forest import ONNX_FILE, ONNX_TAG, forest_to_onnx


def store_root(project_root: Path = PROJECT_ROOT) -> Path:
    """The folder the embedded store lives in: the project, or for a queued DVC experiment (which
    runs in a temporary copy under ``<project>/.dvc/tmp/exps/``) the project it was queued from."""
    parts = project_root.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return project_root


def tracking_uri(mlflow_params: dict[str, Any]) -> str:
    """Return the tracking URI to use: the environment's, else the params' made absolute."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    uri = mlflow_params.get("tracking_uri", "sqlite:///mlflow.db")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(store_root() / uri[len("sqlite:///") :])
    return uri


#: experiment tag read by MLflow 3's UI to choose the experiment's default view
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"


def setup(mlflow_params: dict[str, Any]) -> str:
    """Point MLflow at the tracking store and experiment; return the experiment id."""
    uri = tracking_uri(mlflow_params)
    mlflow.set_tracking_uri(uri)
    name = mlflow_params.get("experiment", "netsentry")
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        mlflow.set_experiment(name)
        if exp.tags.get(EXPERIMENT_KIND_TAG) != TRAINING_KIND:
            MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
        return exp.experiment_id
    artifact_location = None
    if uri.startswith("sqlite:"):  # embedded store: artifacts beside it; a server picks its own
        location = Path(mlflow_params.get("artifact_location") or "mlartifacts")
        artifact_location = (location if location.is_absolute() else store_root() / location).as_uri()
    # the kind makes MLflow 3's UI open the experiment on its training runs, not the GenAI view
    exp_id = mlflow.create_experiment(
        name, artifact_location=artifact_location, tags={EXPERIMENT_KIND_TAG: TRAINING_KIND}
    )
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def group_tags(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Tags shared by every stage run of one ``dvc exp run`` (DVC names the experiment in the
    environment of its stages), so the UI can group the runs by experiment."""
    env = os.environ if env is None else env
    tags = {}
    if env.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = env["DVC_EXP_NAME"]
    if env.get("DVC_EXP_BASELINE_REV"):
        tags["dvc_baseline"] = env["DVC_EXP_BASELINE_REV"][:7]
    return tags


def params_fingerprint(params: dict[str, Any]) -> str:
    """A short stable hash of the full params, tagged on every stage run to tie them together."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any], sections: list[str]) -> Iterator[mlflow.ActiveRun]:
    """Open an MLflow run for one DVC stage, logging the params ``sections`` it reads."""
    setup(params.get("mlflow", {}))
    logged: dict[str, Any] = {}
    for section in sections:
        _flatten(section, params.get(section), logged)
    with mlflow.start_run(run_name=stage) as run:
        mlflow.set_tags({"stage": stage, "params_fingerprint": params_fingerprint(params), **group_tags()})
        # MLflow caps a param value at 6000 characters; long mappings are logged as a JSON artifact.
        short = {k: v for k, v in logged.items() if len(str(v)) < 500}
        if short:
            mlflow.log_params(short)
        yield run


def file_fingerprint(paths: list[Path]) -> str:
    """A short hash over files' names and contents (sorted), e.g. the input CSVs of a dataset."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


#: MLflow column type of each flow-schema kind: what the meter writes (int64 / float64 columns).
_SIGNATURE_TYPES: dict[str, str] = {"int": "long", "float": "double", "str": "string"}


def meter_typed(example: pd.DataFrame) -> pd.DataFrame:
    """``example`` with each column in the dtype the meter's CSV reader gives it (int kinds int64).

    Training frames hold every statistic as float64; the input example must match the signature.
    """
    out = example.copy()
    for column in out.columns:
        if COLUMN_KINDS.get(column) == "int":
            values = np.nan_to_num(out[column].to_numpy(dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            out[column] = np.round(values).astype(np.int64)
    return out


def meter_signature(example: pd.DataFrame, predictions: Any) -> ModelSignature:
    """A signature whose inputs are typed as the meter writes them (``flows.schema``: int -> long,
    float -> double), so ``pyfunc`` and ``mlflow models serve`` accept the meter's own rows."""
    inputs = Schema([ColSpec(_SIGNATURE_TYPES[COLUMN_KINDS.get(c, "float")], c) for c in example.columns])
    return ModelSignature(inputs=inputs, outputs=infer_signature(example, predictions).outputs)


def log_and_register(
    model: Any,
    example: pd.DataFrame,
    tags: dict[str, str],
    mlflow_params: dict[str, Any],
    trusted_types: list[str],
    extra_files: dict[str, Path] | None = None,
) -> dict[str, str]:
    """Log a scikit-learn model in the active run, register it and point the alias at it.

    ``tags`` go on the run, the logged model and the new model version.  The model's folder also
    holds its forest converted to ONNX (``extra_files/forest.onnx``, tag ``onnx_forest``) and each
    of ``extra_files`` (tag -> file: ``extra_files/<name>``, e.g. the novelty guard); the
    signature types the inputs as the meter writes them.  Returns the run id, model URI,
    registered name, version and alias (what ``data/train/model.json`` records).
    """
    name = mlflow_params.get("registered_model", "netsentry")
    alias = mlflow_params.get("alias", "champion")
    example = meter_typed(example)
    with tempfile.TemporaryDirectory(prefix="netsentry-onnx-") as tmp:
        # the forest converted to ONNX travels inside the model's folder (extra_files/), tagged,
        # so a sensor can run it with onnxruntime (serve/ chose it by measurement: bench/serve)
        onnx_path = Path(tmp) / ONNX_FILE
        n_features = np.asarray(model[:-1].transform(example)).shape[1]
        onnx_path.write_bytes(forest_to_onnx(model.steps[-1][1], n_features))
        tags = {**tags, ONNX_TAG: f"extra_files/{ONNX_FILE}"}
        tags |= {tag: f"extra_files/{path.name}" for tag, path in (extra_files or {}).items()}
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=meter_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=name,
            skops_trusted_types=trusted_types,
            # the model needs scikit-learn + skops (+ their numpy); skips MLflow's inference, which
            # loads the model in a subprocess (4 s per model)
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            extra_files=[str(onnx_path), *(str(p) for p in (extra_files or {}).values())],
            tags=tags,
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, alias, version)
    mlflow.set_tags(tags)
    run = mlflow.active_run()
    return {
        "run_id": run.info.run_id if run else "",
        "model_uri": info.model_uri,
        "registered_model": name,
        "version": version,
        "alias": alias,
        "alias_uri": f"models:/{name}@{alias}",
    }
