"""Small inputs for the select/sweep/train tests, built in tmp_path (no dependency on the data stages).

``synthetic_split`` makes a labelled frame whose first ``informative`` canonical features carry
the class signal and the rest are noise, so feature selection has a known right answer.
``make_project`` lays out a throwaway project (a copy of ``pipeline/`` and ``conf/``, a composed
``params.yaml`` and the data-stage outputs the model stages read) for running stages as
subprocesses, exactly as DVC runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from flows.schema import LABEL_COLUMN, feature_columns
from pipeline.io import PROJECT_ROOT

CLASSES = ("BENIGN", "Bot", "DoS", "PortScan")


def synthetic_frame(
    n_per_class: int = 150, n_features: int = 8, informative: int = 3, seed: int = 0
) -> pd.DataFrame:
    """Gaussian blobs: class c shifts the informative features; columns are canonical names."""
    rng = np.random.default_rng(seed)
    feats = feature_columns(False)[:n_features]
    centres = rng.normal(scale=3.0, size=(len(CLASSES), informative))
    parts = []
    for c, label in enumerate(CLASSES):
        x = rng.normal(size=(n_per_class, n_features))
        x[:, :informative] += centres[c]
        part = pd.DataFrame(x, columns=feats)
        part[LABEL_COLUMN] = label
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def write_data_stage_outputs(root: Path, n_per_class: int = 150, n_features: int = 8, seed: int = 0) -> None:
    """Write what prune/balance would: train/test parquet, medians.json, class_weights.json."""
    full = synthetic_frame(n_per_class + max(n_per_class // 3, 10), n_features, seed=seed)
    is_test = (full.groupby(LABEL_COLUMN).cumcount() % 4) == 0  # every 4th row of each class
    train, test = full[~is_test].reset_index(drop=True), full[is_test].reset_index(drop=True)
    feats = [c for c in train.columns if c != LABEL_COLUMN]
    for sub in ("prune", "balance"):
        (root / "data" / sub).mkdir(parents=True, exist_ok=True)
    train.to_parquet(root / "data/prune/train.parquet", index=False)
    test.to_parquet(root / "data/prune/test.parquet", index=False)
    train.to_parquet(root / "data/balance/train.parquet", index=False)
    # every candidate feature has a median, pruned ones too (as prune writes it)
    medians = {f: float(train[f].median()) if f in feats else 0.0 for f in feature_columns(False)}
    (root / "data/prune/medians.json").write_text(json.dumps(medians))
    (root / "data/balance/class_weights.json").write_text(json.dumps({c: 1.0 for c in CLASSES}))


def make_project(root: Path, overrides: list[str], n_per_class: int = 150) -> Path:
    """Copy ``pipeline/`` + ``conf/`` into ``root``, compose params.yaml, write the inputs."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pipeline", "conf"):
        shutil.copytree(PROJECT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    run_stage(root, "pipeline.params", *overrides)
    write_data_stage_outputs(root, n_per_class=n_per_class)
    return root


def stage_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a stage subprocess: no inherited tracking URI unless given."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(extra or {})
    return env


def run_stage(root: Path, module: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``python -m module`` with cwd = root (the copy shadows the installed package)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=root,
        env=env or stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{module} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# Runs in a fresh interpreter where importing the project package is impossible.
LOAD_SCRIPT = """
import json, sys
sys.modules["pipeline"] = None  # `import pipeline` now raises: the model must not need it
import mlflow, mlflow.sklearn, numpy as np, pandas as pd
uri, test_path, feature = sys.argv[1:4]
mlflow.set_tracking_uri(uri)
model = mlflow.sklearn.load_model("models:/netsentry@champion")
test = pd.read_parquet(test_path)
test["Flow ID"] = "extra column"
pred = model.predict(test)
acc = float((pred == test["Label"].to_numpy()).mean())
# +inf / -inf / NaN in a selected feature behave exactly like the training median
probe = test.head(3).copy()
probe[feature] = [np.inf, -np.inf, np.nan]
at_median = test.head(3).copy()
at_median[feature] = float(model.named_steps["prep"].named_steps["impute"].statistics_[0])
# (allclose: a multi-threaded forest sums tree votes in any order)
same = bool(np.allclose(model.predict_proba(probe), model.predict_proba(at_median)))
v = mlflow.MlflowClient().get_model_version_by_alias("netsentry", "champion")
print(json.dumps({"accuracy": acc, "same": same, "version": v.version, "tags": v.tags,
                  "classes": list(model.classes_)}))
"""


def load_in_fresh_process(uri: str, test_path: Path, feature: str, cwd: Path) -> dict:
    """Load models:/netsentry@champion in a new interpreter that cannot import ``pipeline``."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, uri, str(test_path), feature],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
