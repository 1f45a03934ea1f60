"""Show what ``dvc repro`` produced and classify a capture with the registered model.

Prints the metrics summary (``metrics/*.json``), where the MLflow runs are, loads
``models:/<registered_model>@<alias>`` from the registry and, if the flow meter
(``capture/flowmeter``) is built, meters a CICIDS2017 capture in the model's ``flow_profile``,
classifies every flow and prints a verdict table.  This is what ``make run`` ends with.

Usage: ``python -m pipeline.demo [--pcap FILE] [--meter FILE] [--rows N]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from flows.schema import IDENTIFIER_COLUMNS
from pipeline import tracking
from pipeline.io import PROJECT_ROOT, project_path, read_json, shared_data_dir
from pipeline.params import load_params

DEFAULT_PCAP = Path("pcaps") / "cicids2017" / "WebattackSQLinj.pcap"
DEFAULT_METER = PROJECT_ROOT / "capture" / "flowmeter"


def print_metrics() -> None:
    """Print the select/sweep/train metrics written by the stages (or say they are missing)."""
    path = project_path("metrics/train.json")
    if not path.exists():
        print("no metrics/train.json yet: run `make repro` (or `dvc repro`) first")
        return
    m = read_json(path)
    sel = read_json("metrics/select.json") if project_path("metrics/select.json").exists() else {}
    print(
        f"== model: {m['n_features']} features, max_depth={m['max_depth']}, n_estimators={m['n_estimators']}"
        + (f" (select CV {sel['score']:.4f})" if sel else "")
    )
    print(f"   test set: {m['test_rows']} flows, accuracy {m['accuracy']:.4f}, macro-F1 {m['f1_macro']:.4f}")
    per = pd.DataFrame(m["per_class"]).T[["precision", "recall", "f1", "support"]]
    per["support"] = per["support"].astype(int)
    print(per.to_string(float_format=lambda v: f"{v:.4f}"))


def print_runs(uri: str) -> None:
    """Say where the MLflow runs are and how to browse them."""
    print(f"\n== MLflow runs: {uri}")
    if uri.startswith("sqlite:///"):
        print(f"   browse: .venv/bin/mlflow ui --backend-store-uri {uri}   # then http://127.0.0.1:5000")


def load_champion(mlflow_params: dict[str, Any]) -> tuple[Any, dict[str, str]] | None:
    """Load the aliased registered model and its version tags, or print why not."""
    import mlflow
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    name = mlflow_params.get("registered_model", "netsentry")
    alias = mlflow_params.get("alias", "champion")
    uri = f"models:/{name}@{alias}"
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias(name, alias)
        model = mlflow.sklearn.load_model(uri)
    except MlflowException as exc:
        print(
            f"cannot load {uri}: {exc.message.splitlines()[0]}\n   run `make repro` to train and register it"
        )
        return None
    print(f"\n== loaded {uri} (version {version.version}); tags: {dict(sorted(version.tags.items()))}")
    return model, dict(version.tags)


def meter_flows(meter: Path, pcap: Path, profile: str) -> pd.DataFrame | None:
    """Run the flow meter on a capture and return its flows, or print why not."""
    if not meter.exists():
        print(f"\nflow meter not built ({meter} missing): `make meter`, then run the demo again")
        return None
    if not pcap.exists():
        print(f"\ncapture not found: {pcap} (set NETSENTRY_SHARED_DATA or pass --pcap)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flows.csv"
        cmd = [str(meter), "-r", str(pcap), "--profile", profile, "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            print(f"\nflow meter failed ({' '.join(cmd)}):\n{proc.stderr.strip()}")
            return None
        return pd.read_csv(out)


def print_verdicts(model: Any, flows: pd.DataFrame, pcap: Path, rows: int) -> None:
    """Classify the flows and print group counts and a few example rows."""
    try:
        verdicts = model.predict(flows)
        confidence = model.predict_proba(flows).max(axis=1)
    except ValueError as exc:
        print(f"\nthe meter's flows do not fit the model: {exc}")
        return
    print(f"\n== {len(flows)} flows in {pcap.name}, classified:")
    print(pd.Series(verdicts).value_counts().rename_axis("verdict").to_frame("flows").to_string())
    show = flows[[c for c in IDENTIFIER_COLUMNS if c in flows.columns and c != "Flow ID"]].copy()
    show["verdict"] = verdicts
    show["confidence"] = confidence.round(3)
    attacks = show[show["verdict"] != "BENIGN"]
    print(f"\n== first {rows} flows not classified BENIGN ({len(attacks)} in all):")
    print((attacks if len(attacks) else show).head(rows).to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    """Entry point: summary, runs, champion model, verdicts on a capture."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pcap", type=Path, help=f"capture to classify (default: <shared data>/{DEFAULT_PCAP})"
    )
    parser.add_argument("--meter", type=Path, default=DEFAULT_METER, help="flow meter binary")
    parser.add_argument("--rows", type=int, default=10, help="example rows to print (default 10)")
    args = parser.parse_args(argv)
    params = load_params()
    print_metrics()
    mlflow_params = params.get("mlflow", {})
    import mlflow

    uri = tracking.tracking_uri(mlflow_params)
    mlflow.set_tracking_uri(uri)
    print_runs(uri)
    loaded = load_champion(mlflow_params)
    if loaded is None:
        return 1
    model, tags = loaded
    profile = tags.get("flow_profile") or params.get("data", {}).get("flow_profile", "engelen")
    pcap = args.pcap or shared_data_dir() / DEFAULT_PCAP
    flows = meter_flows(args.meter, pcap, profile)
    if flows is not None:
        print_verdicts(model, flows, pcap, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
