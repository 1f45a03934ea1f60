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
from collections.abc import Iterator
from typing import Any

import mlflow

from pipeline.io import PROJECT_ROOT, project_path


def tracking_uri(mlflow_params: dict[str, Any]) -> str:
    """Return the tracking URI to use: the environment's, else the params' made absolute."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    uri = mlflow_params.get("tracking_uri", "sqlite:///mlflow.db")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(PROJECT_ROOT / uri[len("sqlite:///") :])
    return uri


def setup(mlflow_params: dict[str, Any]) -> str:
    """Point MLflow at the tracking store and experiment; return the experiment id."""
    mlflow.set_tracking_uri(tracking_uri(mlflow_params))
    name = mlflow_params.get("experiment", "netsentry")
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        mlflow.set_experiment(name)
        return exp.experiment_id
    artifact_location = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        artifact_location = project_path(mlflow_params.get("artifact_location", "mlartifacts")).as_uri()
    exp_id = mlflow.create_experiment(name, artifact_location=artifact_location)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


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
        mlflow.set_tags({"stage": stage, "params_fingerprint": params_fingerprint(params)})
        # MLflow caps a param value at 6000 characters; long mappings are logged as a JSON artifact.
        short = {k: v for k, v in logged.items() if len(str(v)) < 500}
        if short:
            mlflow.log_params(short)
        yield run
