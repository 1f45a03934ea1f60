"""Stage ``train``: fit the final Random Forest, evaluate it, log and register the model.

Reads the balanced training set (``data/balance/train.parquet``, ``class_weights.json``), the
held-out test set and training medians (``data/prune/``), the selected features
(``data/select/features.json``) and the chosen depth/trees (``data/sweep/best.json``).  Fits the
seeded forest, evaluates it on the test set (accuracy, macro-F1, per-class precision/recall/F1/
support, confusion matrix), logs everything to MLflow, registers the self-contained inference
model (:mod:`pipeline.model`) as ``mlflow.registered_model`` and points ``mlflow.alias`` at it.

Writes ``metrics/train.json``, ``plots/confusion.png`` and ``data/train/model.json``.
Usage: ``python -m pipeline.train`` (reads params.yaml; ``MLFLOW_TRACKING_URI`` wins).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from flows.novelty import GUARD_FILE, GUARD_TAG, NoveltyGuard
from flows.schema import LABEL_COLUMN
from pipeline import lineage, tracking
from pipeline.forest import class_weights_for, forest
from pipeline.io import project_path, read_json, read_parquet, require_inputs, save_figure, write_json
from pipeline.layouts import LayoutError, list_input_files
from pipeline.model import TRUSTED_TYPES, fit_inference_model, untrusted_types
from pipeline.stage import stage_cli

TRAIN = "data/balance/train.parquet"
WEIGHTS = "data/balance/class_weights.json"
TEST = "data/prune/test.parquet"
REAL_TRAIN = "data/prune/train.parquet"  # the training rows before balancing: no synthetic row
MEDIANS = "data/prune/medians.json"
FEATURES = "data/select/features.json"
BEST = "data/sweep/best.json"
CLEAN = "data/clean/flows.parquet"
CLEAN_METRICS = "metrics/clean.json"
METRICS_OUT = "metrics/train.json"
CONFUSION_PNG = "plots/confusion.png"
MODEL_OUT = "data/train/model.json"


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = [lab for lab, n in zip(labels, s, strict=True) if n > 0]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # macro over the classes that occur in the test set (an absent class has no F1)
        "f1_macro": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": labels,
    }


def plot_confusion(cm: list[list[int]], labels: list[str], path: str) -> None:
    """Save the confusion matrix (colour = row-normalised recall, text = counts)."""
    counts = np.asarray(cm)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    color="white" if norm[i, j] > 0.5 else "black",
                    fontsize=8,
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test set)")
    save_figure(fig, path)
    plt.close(fig)


def dataset_fingerprint(params: dict[str, Any]) -> tuple[str, str]:
    """A hash of the data and what was hashed (tagged beside it: the fallbacks are other data).

    The input flow files (``data.input_dir``, ``.csv``/``.csv.gz``, sub-folders too), else the
    cleaned flows, else the training and test sets.
    """
    # relative to the project; a queued DVC experiment's copy resolves it from the real project
    input_dir = tracking.store_root() / params.get("data", {}).get("input_dir", "")
    try:
        files = list_input_files(input_dir)[0]
    except LayoutError:
        files = []
    if files:
        return tracking.file_fingerprint(files), f"input files: {len(files)} flow files of data.input_dir"
    clean = project_path(CLEAN)
    if clean.exists():
        return tracking.file_fingerprint([clean]), f"cleaned flows: {CLEAN} (input folder not readable)"
    return (
        tracking.file_fingerprint([project_path(TRAIN), project_path(TEST)]),
        f"training and test sets: {TRAIN}, {TEST} (no input folder, no cleaned flows)",
    )


def trained_profile(params: dict[str, Any]) -> str:
    """The meter profile of the training data: what clean found in the files, else the config's."""
    found = project_path(CLEAN_METRICS)
    if found.exists():
        profile = read_json(CLEAN_METRICS).get("flow_profile")
        if profile:
            return str(profile)
    return str(params.get("data", {}).get("flow_profile") or "")


def fit_guard(model: Any, coverage: float, seed: int, test_df: pd.DataFrame, path: Path) -> dict[str, Any]:
    """Fit the novelty guard on the real training rows, save it to ``path``; its figures on the test set."""
    real = read_parquet(REAL_TRAIN)
    prep = model[:-1]
    y_real = real[LABEL_COLUMN].astype(str).to_numpy()
    guard = NoveltyGuard.fit(prep.transform(real), y_real, coverage, seed=seed)
    guard.save(path)
    y_test = test_df[LABEL_COLUMN].astype(str).to_numpy()
    novel = guard.novel(prep.transform(test_df), model.predict(test_df))
    per_class = {c: float(novel[y_test == c].mean()) for c in sorted(set(y_test))}
    mlflow.log_metric("novelty_test_unknown_rate", float(novel.mean()))
    print(f"train: novelty guard (coverage {coverage}): {novel.mean():.4f} of test flows UNKNOWN", flush=True)
    return {"coverage": coverage, "radius": guard.radius, "test_unknown_rate": float(novel.mean()),
            "test_unknown_rate_per_class": per_class}


def train(params: dict[str, Any]) -> dict[str, Any]:
    """Fit, evaluate, log and register; returns ``{"metrics": ..., "model": ...}``."""
    seed = int(params["seed"])
    features: list[str] = read_json(FEATURES)["selected"]
    best = read_json(BEST)
    medians = read_json(MEDIANS)
    train_df, test_df = read_parquet(TRAIN), read_parquet(TEST)
    for name, df in (("training", train_df), ("test", test_df)):
        missing = [f for f in features + [LABEL_COLUMN] if f not in df.columns]
        if missing:
            raise SystemExit(f"train: the {name} set lacks column(s) {missing}")
    y_train = train_df[LABEL_COLUMN].astype(str).to_numpy()
    y_test = test_df[LABEL_COLUMN].astype(str).to_numpy()
    weights = class_weights_for(y_train, read_json(WEIGHTS))
    clf = forest(best["n_estimators"], best["max_depth"], seed, params["model"].get("n_jobs", 2), weights)
    model = fit_inference_model(train_df, y_train, features, medians, clf)

    labels = sorted(set(y_train) | set(y_test))
    ev = evaluate(y_test, model.predict(test_df), labels)
    metrics = {
        "accuracy": ev["accuracy"],
        "f1_macro": ev["f1_macro"],
        "per_class": ev["per_class"],
        "n_features": len(features),
        "max_depth": int(best["max_depth"]),
        "n_estimators": int(best["n_estimators"]),
        "train_rows": len(train_df),
        "test_rows": len(test_df),
    }
    write_json(metrics, METRICS_OUT)
    plot_confusion(ev["confusion"], labels, CONFUSION_PNG)

    extra = sorted(set(untrusted_types(model)) - set(TRUSTED_TYPES))
    if extra:
        raise SystemExit(f"train: the model holds types outside model.TRUSTED_TYPES: {extra}")
    fingerprint, fingerprint_of = dataset_fingerprint(params)
    tags = {
        "flow_profile": trained_profile(params),
        "dataset_fingerprint": fingerprint,
        "dataset_fingerprint_of": fingerprint_of,
        "features": ",".join(features),
        "params_fingerprint": tracking.params_fingerprint(params),
    }
    site = read_json(CLEAN_METRICS).get("site") if project_path(CLEAN_METRICS).exists() else None
    if site and site.get("captures"):  # benign_eval never counts these captures for this model
        tags["trained_captures"] = json.dumps(site["captures"])
    mlflow.log_params(
        {"max_depth": best["max_depth"], "n_estimators": best["n_estimators"], "n_features": len(features)}
    )
    mlflow.log_metrics({"accuracy": ev["accuracy"], "f1_macro": ev["f1_macro"]})
    mlflow.log_metrics({f"f1_{lab}": m["f1"] for lab, m in ev["per_class"].items()})
    mlflow.log_dict({"labels": labels, "confusion": ev["confusion"]}, "confusion.json")
    mlflow.log_artifact(str(project_path(CONFUSION_PNG)))
    mlflow.log_artifact(str(project_path(METRICS_OUT)))
    source = str(tracking.store_root() / params.get("data", {}).get("input_dir", ""))
    lineage.log_datasets({"training": train_df, "test": test_df}, source, Path(source).name or "flows")
    example = test_df[features].head(5).reset_index(drop=True)
    coverage = params["model"].get("novelty_coverage")
    with tempfile.TemporaryDirectory(prefix="netsentry-guard-") as tmp:
        extra = {}
        if coverage:
            guard_path = Path(tmp) / GUARD_FILE
            metrics["novelty"] = fit_guard(model, coverage, seed, test_df, guard_path)
            write_json(metrics, METRICS_OUT)
            extra[GUARD_TAG] = guard_path
        info = tracking.log_and_register(
            model, example, tags, params.get("mlflow", {}), list(TRUSTED_TYPES), extra_files=extra
        )
    lineage.describe_version(
        info["registered_model"],
        info["version"],
        lineage.version_description(params, metrics, tags["flow_profile"], fingerprint),
    )
    info["tracking_uri"] = mlflow.get_tracking_uri()
    write_json(info, MODEL_OUT)
    return {"metrics": metrics, "model": info}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage."""
    params = stage_cli("train", __doc__, argv)
    require_inputs("train", [TRAIN, WEIGHTS, TEST, MEDIANS, FEATURES, BEST])
    with tracking.stage_run("train", params, ["model", "mlflow", "data", "seed"]):
        result = train(params)
    m, info = result["metrics"], result["model"]
    print(
        f"train: accuracy {m['accuracy']:.4f}, macro-F1 {m['f1_macro']:.4f} on {m['test_rows']} test flows; "
        f"registered {info['registered_model']} v{info['version']} as @{info['alias']} ({info['model_uri']})"
    )
    per = pd.DataFrame(m["per_class"]).T
    print(per.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
