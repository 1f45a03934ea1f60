"""What the MLflow UI shows about a training run: the datasets it saw and the registered version's text.

``mlflow.log_input`` fills the runs table's Dataset column (lineage: which data each run saw);
the registered version gets a description a reader can act on (data, meter profile, split, test
figures) instead of an empty box.
"""

from __future__ import annotations

from typing import Any

import mlflow
import mlflow.data
import pandas as pd
from mlflow.tracking import MlflowClient

from flows.schema import LABEL_COLUMN


def log_datasets(frames: dict[str, pd.DataFrame], source: str, name: str) -> None:
    """Log each frame (``{context: frame}``, e.g. training/test) as an input of the active run."""
    for context, frame in frames.items():
        dataset = mlflow.data.from_pandas(
            frame, source=source, targets=LABEL_COLUMN, name=f"{name} ({context})"
        )
        mlflow.log_input(dataset, context=context)


def version_description(params: dict[str, Any], metrics: dict[str, Any], profile: str, data_hash: str) -> str:
    """Markdown for a registered model version: data, profile, split, test figures per class."""
    split = params.get("split", {})
    lines = [
        f"**Data**: `{params.get('data', {}).get('input_dir', '?')}` (fingerprint `{data_hash}`), "
        f"meter profile **{profile or '?'}**.",
        f"**Split**: {split.get('strategy', '?')}, test size {split.get('test_size', '?')}; "
        f"{metrics['train_rows']:,} training rows (after balancing), {metrics['test_rows']:,} test rows.",
        f"**Model**: Random Forest, depth {metrics['max_depth']}, {metrics['n_estimators']} trees, "
        f"{metrics['n_features']} features.",
        f"**Test**: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['f1_macro']:.4f} "
        "(over the classes with test rows).",
        "",
        "| class | F1 | precision | recall | test rows |",
        "|---|---|---|---|---|",
    ]
    for label, m in sorted(metrics["per_class"].items()):
        if m["support"]:
            lines.append(
                f"| {label} | {m['f1']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} | {m['support']} |"
            )
        else:
            lines.append(f"| {label} | - | - | - | 0 (training only) |")
    return "\n".join(lines)


def describe_version(name: str, version: str, text: str) -> None:
    """Set the description of a registered model version."""
    MlflowClient().update_model_version(name, version, description=text)
