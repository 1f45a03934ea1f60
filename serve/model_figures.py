"""The test figures of a registered model version, read from the run that logged it.

``pipeline.train`` logs ``accuracy``, ``f1_macro`` and ``f1_<group>`` on the run that registers
the model; ``netsentry classify`` prints them under its summary so a user sees how good the
model was on its held-out test set next to what it says about the capture.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def test_figures(tracking_uri: str, name: str, version: str) -> str | None:
    """One line of the version's test metrics, or None (no run, no metrics, store unreachable)."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        run_id = client.get_model_version(name, version).run_id
        metrics = client.get_run(run_id).data.metrics if run_id else {}
    except Exception as exc:  # noqa: BLE001 - a summary extra, never a reason to fail
        from serve.tracking import one_line  # the error may quote the URI: never its password

        log.info("no test figures for %s v%s: %s", name, version, one_line(exc, tracking_uri))
        return None
    if "accuracy" not in metrics:
        return None
    line = f"accuracy {metrics['accuracy']:.4f}"
    if "f1_macro" in metrics:
        line += f", macro-F1 {metrics['f1_macro']:.4f}"
    per_group = sorted((k.removeprefix("f1_"), v) for k, v in metrics.items()
                       if k.startswith("f1_") and k != "f1_macro")
    if per_group:
        line += "; F1 " + ", ".join(f"{g} {v:.3f}" for g, v in per_group)
    return line
