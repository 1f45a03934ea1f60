"""The self-contained inference model and the train stage that registers it (local SQLite store)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from mlflow.tracking import MlflowClient

from flows.schema import LABEL_COLUMN, feature_columns
from pipeline.forest import forest
from pipeline.model import TRUSTED_TYPES, build_preprocessor, fit_inference_model, untrusted_types
from pipeline.tracking import file_fingerprint, store_root
from pipeline.train import TEST, TRAIN, dataset_fingerprint
from tests.pipeline.model_fixtures import (
    load_in_fresh_process,
    make_project,
    run_stage,
    stage_env,
    synthetic_frame,
)

FEATURES = feature_columns(False)[:3]
MEDIANS = {f: float(i + 1) for i, f in enumerate(feature_columns(False))}


def test_preprocessor_selects_by_name_and_imputes_inf_and_nan_with_training_medians() -> None:
    prep = build_preprocessor(FEATURES, MEDIANS)
    frame = pd.DataFrame(
        {
            "Flow ID": ["a", "b", "c"],  # extra columns are ignored
            FEATURES[2]: [np.nan, 7.0, -np.inf],
            FEATURES[0]: [np.inf, 5.0, 0.5],  # column order does not matter
            FEATURES[1]: [-np.inf, np.nan, 2.5],
            "Destination Port": [80, 443, 22],
        }
    )
    out = prep.transform(frame)
    np.testing.assert_array_equal(out, [[1.0, 2.0, 3.0], [5.0, 2.0, 7.0], [0.5, 2.5, 3.0]])


def test_preprocessor_names_a_missing_selected_column() -> None:
    prep = build_preprocessor(FEATURES, MEDIANS)
    frame = pd.DataFrame({FEATURES[0]: [1.0], FEATURES[1]: [2.0]})
    with pytest.raises(ValueError, match=f"columns are missing.*{FEATURES[2]}"):
        prep.transform(frame)


def test_preprocessor_requires_a_median_for_every_feature() -> None:
    with pytest.raises(ValueError, match="no training median"):
        build_preprocessor(FEATURES + ["nope"], MEDIANS)


def test_model_predicts_groups_and_serialises_with_the_trusted_types_only() -> None:
    df = synthetic_frame(n_per_class=60, n_features=5, seed=2)
    model = fit_inference_model(df, df[LABEL_COLUMN], FEATURES, MEDIANS, forest(5, 4, seed=0, n_jobs=1))
    assert list(model.classes_) == sorted(df[LABEL_COLUMN].unique())
    proba = model.predict_proba(df)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(df) == df[LABEL_COLUMN]).mean() > 0.8
    assert set(untrusted_types(model)) <= set(TRUSTED_TYPES)
    loaded = sio.loads(sio.dumps(model), trusted=list(TRUSTED_TYPES))
    np.testing.assert_array_equal(loaded.predict_proba(df), proba)


def test_a_value_beyond_float32_does_not_break_the_batch_it_is_in() -> None:
    df = synthetic_frame(n_per_class=60, n_features=5, seed=3)
    model = fit_inference_model(df, df[LABEL_COLUMN], FEATURES, MEDIANS, forest(5, 4, seed=0, n_jobs=1))
    batch = df.head(4).copy()
    before = model.predict(batch)
    batch.loc[batch.index[0], FEATURES[0]] = 1e308
    batch.loc[batch.index[1], FEATURES[1]] = -1e308
    after = model.predict(batch)  # sklearn refused the whole batch before the clip step
    assert len(after) == 4
    assert list(after[2:]) == list(before[2:])  # the untouched rows are judged as before
    clipped = model.named_steps["prep"].transform(batch)
    assert clipped[0, 0] == np.float32(np.finfo(np.float32).max)
    assert clipped[1, 1] == -np.float32(np.finfo(np.float32).max)


def test_train_stage_registers_a_self_contained_model(tmp_path) -> None:
    root = make_project(
        tmp_path / "proj",
        [
            "select.n_features=3",
            "select.estimator.n_estimators=5",
            "sweep.enabled=false",
            "model.max_depth=6",
            "model.n_estimators=10",
            "data.flow_profile=null",
            f"data.input_dir={tmp_path / 'no-such-folder'}",
        ],
    )
    # what clean found in the input files: the tag must say this, not echo the config
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics/clean.json").write_text(json.dumps({"flow_profile": "clean"}))
    for stage in ("pipeline.select", "pipeline.sweep", "pipeline.train"):
        run_stage(root, stage)
    metrics = json.loads((root / "metrics/train.json").read_text())
    assert (metrics["max_depth"], metrics["n_estimators"], metrics["n_features"]) == (6, 10, 3)
    assert metrics["f1_macro"] > 0.6
    assert set(metrics["per_class"]) == {"BENIGN", "Bot", "DoS", "PortScan"}
    assert sum(m["support"] for m in metrics["per_class"].values()) == metrics["test_rows"]
    assert (root / "plots/confusion.png").stat().st_size > 1000
    info = json.loads((root / "data/train/model.json").read_text())
    assert info["version"] == "1" and info["alias_uri"] == "models:/netsentry@champion"

    selected = json.loads((root / "data/select/features.json").read_text())["selected"]
    uri = f"sqlite:///{root / 'mlflow.db'}"
    loaded = load_in_fresh_process(uri, root / "data/prune/test.parquet", selected[0], tmp_path)
    assert loaded["accuracy"] == pytest.approx(metrics["accuracy"])
    assert loaded["same"] is True
    assert loaded["classes"] == ["BENIGN", "Bot", "DoS", "PortScan"]
    tags = loaded["tags"]
    assert tags["features"] == ",".join(selected)
    assert tags["flow_profile"] == "clean"
    # no input folder, no cleaned flows here: the hash is of the training and test sets, and says so
    assert tags["dataset_fingerprint"] == file_fingerprint([root / TRAIN, root / TEST])
    assert tags["dataset_fingerprint_of"].startswith("training and test sets")
    assert len(tags["params_fingerprint"]) == 12

    # what the MLflow UI shows: the training view, the data each run saw, a described version
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("netsentry")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    version = client.get_model_version("netsentry", "1")
    run = client.get_run(version.run_id)
    inputs = {d.tags[0].value: d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "test"}
    assert json.loads(inputs["test"].profile)["num_rows"] == metrics["test_rows"]
    assert f"macro-F1 {metrics['f1_macro']:.4f}" in version.description
    assert "meter profile **clean**" in version.description and "| Bot |" in version.description

    # retraining with the same seed, as one DVC experiment: identical metrics, a new version, the
    # alias follows it, and the run carries the experiment's name for grouping
    first = (root / "metrics/train.json").read_text()
    run_stage(
        root,
        "pipeline.train",
        env=stage_env({"DVC_EXP_NAME": "brisk-yawl", "DVC_EXP_BASELINE_REV": "abc1234def"}),
    )
    assert (root / "metrics/train.json").read_text() == first
    rerun = client.get_run(client.get_model_version("netsentry", "2").run_id)
    assert rerun.data.tags["dvc_experiment"] == "brisk-yawl" and rerun.data.tags["dvc_baseline"] == "abc1234"
    assert (
        str(load_in_fresh_process(uri, root / "data/prune/test.parquet", selected[0], tmp_path)["version"])
        == "2"
    )


def test_train_stage_says_what_is_missing(tmp_path) -> None:
    root = make_project(tmp_path / "proj", [])
    proc = subprocess.run([sys.executable, "-m", "pipeline.train"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "missing input(s)" in proc.stderr and "data/select/features.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_store_root_of_a_queued_experiment_copy_is_the_project(tmp_path) -> None:
    assert store_root(tmp_path / "proj") == tmp_path / "proj"
    assert store_root(tmp_path / "proj/.dvc/tmp/exps/tmpab12cd") == tmp_path / "proj"
    assert store_root(tmp_path / "proj/.dvc/tmp/exps/run/x1/y") == tmp_path / "proj"


def test_dataset_fingerprint_hashes_the_input_files_nested_and_gzip_too(tmp_path) -> None:
    data = tmp_path / "data"
    (data / "Friday").mkdir(parents=True)
    (data / "a.csv").write_text("x\n")
    (data / "Friday" / "b.csv.gz").write_bytes(b"\x1f\x8b not really")
    (data / "notes.txt").write_text("not hashed")
    fingerprint, of = dataset_fingerprint({"data": {"input_dir": str(data)}})
    assert fingerprint == file_fingerprint([data / "a.csv", data / "Friday" / "b.csv.gz"])
    assert of == "input files: 2 flow files of data.input_dir"
