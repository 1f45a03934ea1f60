"""Live evaluation: replay the recorded lab captures through ``netsentry classify`` and score per scenario.

For every evaluation run stored in the dataset (``data/lab/eval/<run>.pcap.gz`` + ``<run>.json``), the
capture goes through the sensor's own command (``netsentry classify FILE -o verdicts.csv --model URI``,
a subprocess: the lab never imports the sensor), which meters it in the model's flow profile.  Each
verdict row is labelled from the run's manifest (:func:`lab.labels.label_flows`), and per scenario we
report the share of flows flagged as the scenario's group and as any attack, and for benign flows the
false-positive rate.  Output: a table on stdout, a JSON report, a CSV beside it, a bar plot, and the
figures logged to MLflow in a run tagged with the model name and version (and as tags on that
model version).  DVC stage ``lab_eval`` runs this so ``dvc metrics show`` has the live figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from flows.novelty import UNKNOWN
from lab import pcap
from lab.labels import BENIGN, PROJECT_ROOT, SCENARIO_COLUMN, label_flows

#: verdicts that are not an attack call: the novelty guard's UNKNOWN is its own low-severity event
NOT_ATTACK = (BENIGN, "UNJUDGED", UNKNOWN)


class EvalError(RuntimeError):
    """Evaluation cannot run (no captures, classify failed)."""


def eval_runs(data: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The evaluation captures of the dataset and their manifests."""
    folder = data / "eval"
    runs = sorted(folder.glob("*.pcap.gz")) if folder.is_dir() else []
    if not runs:
        raise EvalError(
            f"no evaluation captures in {folder} (build them with `netsentry lab dataset --eval RUN`)"
        )
    return [
        (p, json.loads(p.with_name(p.name.removesuffix(".pcap.gz") + ".json").read_text())["manifest"])
        for p in runs
    ]


def run_classify(flows_or_capture: Path, model: str, out_csv: Path, *overrides: str) -> pd.DataFrame:
    """Run ``netsentry classify`` (a subprocess: the lab never imports the sensor); return its verdicts."""
    cmd = [sys.executable, "-m", "netsentry.cli", "classify", str(flows_or_capture), "-o", str(out_csv)]
    cmd += ["--model", model, *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT)
    if proc.returncode != 0:
        raise EvalError(f"netsentry classify failed on {flows_or_capture.name}: {proc.stderr.strip()[-500:]}")
    return pd.read_csv(out_csv, low_memory=False)


def classify(capture: Path, model: str, out_csv: Path) -> pd.DataFrame:
    """Run ``netsentry classify`` on a (gzip) capture; return its verdict rows."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / capture.name.removesuffix(".gz")
        linktype, packets = pcap.read(capture)
        pcap.write(plain, linktype, packets)
        return run_classify(plain, model, out_csv)


def score(labelled: pd.DataFrame) -> dict[str, Any]:
    """Per-scenario detection (right group, any attack) and the benign false-positive rate."""
    pred = labelled["predicted"].astype(str)
    flagged = ~pred.isin(NOT_ATTACK)
    out: dict[str, Any] = {"scenarios": {}}
    for name, idx in labelled.groupby(SCENARIO_COLUMN).groups.items():
        rows = labelled.loc[idx]
        group = rows["Label"].iloc[0]
        if group == BENIGN:
            continue
        out["scenarios"][name] = {
            "group": group,
            "tool": rows["Tool"].iloc[0],
            "flows": len(rows),
            "detected_group": float((pred[idx] == group).mean()),
            "detected_any": float(flagged[idx].mean()),
            "unjudged": int((pred[idx] == "UNJUDGED").sum()),
        }
    benign = labelled["Label"] == BENIGN
    out["benign"] = {
        "flows": int(benign.sum()),
        "false_positive_rate": float((pred[benign] != BENIGN).mean()) if benign.any() else None,
        "flagged_as": {str(k): int(v) for k, v in pred[benign & (pred != BENIGN)].value_counts().items()},
    }
    groups = {}
    attacks = labelled[~benign]
    for group, idx in attacks.groupby("Label").groups.items():
        groups[group] = {
            "flows": len(idx),
            "detected_group": float((pred[idx] == group).mean()),
            "detected_any": float(flagged[idx].mean()),
        }
    out["groups"] = groups
    return out


def table(report: dict[str, Any]) -> pd.DataFrame:
    """The per-scenario table (one row per scenario, plus the benign row)."""
    rows = [{"scenario": k, **v} for k, v in report["scenarios"].items()]
    df = pd.DataFrame(rows).sort_values(["group", "scenario"])
    b = report["benign"]
    benign_row = {
        "scenario": "benign (false-positive rate)",
        "group": BENIGN,
        "tool": "benign",
        "flows": b["flows"],
        "detected_group": None,
        "detected_any": b["false_positive_rate"],
    }
    return pd.concat([df, pd.DataFrame([benign_row])], ignore_index=True)


def plot(df: pd.DataFrame, path: Path, title: str) -> None:
    """Bar plot of the right-group and any-attack detection per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = df[df["group"] != BENIGN]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(attacks) + 1.5))
    y = range(len(attacks))
    ax.barh([i + 0.2 for i in y], attacks["detected_any"], height=0.4, label="flagged as any attack")
    ax.barh([i - 0.2 for i in y], attacks["detected_group"], height=0.4, label="flagged as its group")
    ax.set_yticks(list(y), [f"{s} ({g})" for s, g in zip(attacks["scenario"], attacks["group"], strict=True)])
    ax.set_xlim(0, 1)
    ax.axvline(0.9, color="grey", linestyle=":")
    ax.set_title(title)
    ax.legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def log_to_mlflow(report: dict[str, Any], files: list[Path]) -> None:
    """Log the figures in an MLflow run tagged with the model version, and tag the version itself."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("netsentry-lab-eval")
    metrics = {
        f"lab_{g.replace(' ', '_')}_detected_group": v["detected_group"] for g, v in report["groups"].items()
    }
    metrics |= {
        f"lab_{g.replace(' ', '_')}_detected_any": v["detected_any"] for g, v in report["groups"].items()
    }
    metrics["lab_benign_fp_rate"] = report["benign"]["false_positive_rate"] or 0.0
    with mlflow.start_run(run_name="lab-eval"):
        mlflow.set_tags(
            {
                "model_uri": report["model"],
                "model_name": report.get("model_name", ""),
                "model_version": str(report.get("model_version", "")),
            }
        )
        mlflow.log_metrics(metrics)
        for f in files:
            mlflow.log_artifact(str(f))
    if report.get("model_version"):
        client = mlflow.MlflowClient()
        try:
            for key in ("lab_benign_fp_rate",):
                client.set_model_version_tag(
                    report["model_name"], report["model_version"], key, f"{metrics[key]:.4f}"
                )
            for g, v in report["groups"].items():
                client.set_model_version_tag(
                    report["model_name"],
                    report["model_version"],
                    f"lab_{g.replace(' ', '_')}_detected",
                    f"{v['detected_group']:.4f}",
                )
        except MlflowException as err:
            print(
                f"lab eval: could not tag the model version: {err.message.splitlines()[0]}", file=sys.stderr
            )


def resolve_version(model: str) -> tuple[str, str]:
    """(registered name, version) of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``; blanks otherwise."""
    if not model.startswith("models:/"):
        return "", ""
    ref = model.removeprefix("models:/")
    if "@" in ref:
        import mlflow

        name, alias = ref.split("@", 1)
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
        try:
            return name, mlflow.MlflowClient(tracking_uri=uri).get_model_version_by_alias(name, alias).version
        except Exception:  # the classify step reports a missing model with its own clear message
            return name, ""
    name, _, version = ref.partition("/")
    return name, version


def evaluate(model: str, data: Path, out: Path, plot_path: Path, mlflow_log: bool = True) -> dict[str, Any]:
    """Replay every evaluation capture, score, write the table/JSON/CSV/plot; return the report."""
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for capture, manifest in eval_runs(data):
            verdicts = classify(capture, model, Path(tmp) / "verdicts.csv")
            labelled, _ = label_flows(verdicts, manifest, columns=list(verdicts.columns))
            frames.append(labelled)
    labelled = pd.concat(frames, ignore_index=True)
    name, version = resolve_version(model)
    report = {"model": model, "model_name": name, "model_version": version, **score(labelled)}
    df = table(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    csv = out.with_suffix(".csv")
    df.to_csv(csv, index=False, float_format="%.4f")
    plot(df, plot_path, f"lab live evaluation: {model} (v{version})")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if mlflow_log:
        log_to_mlflow(report, [out, csv, plot_path])
    return report


def main(args: argparse.Namespace) -> int:
    """Handler of ``netsentry lab eval`` (and of ``python -m lab.evaluate``)."""
    model = args.model
    if getattr(args, "model_from", None):  # what `train` registered: that exact version, in its store
        info = json.loads(Path(args.model_from).read_text())
        model = f"models:/{info['registered_model']}/{info['version']}"
        if info.get("tracking_uri"):
            os.environ.setdefault("MLFLOW_TRACKING_URI", info["tracking_uri"])
    try:
        evaluate(model, Path(args.data), Path(args.out), Path(args.plot), not args.no_mlflow)
    except EvalError as err:
        print(f"netsentry lab eval: {err}", file=sys.stderr)
        return 1
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``python -m lab.evaluate`` (the DVC stage): the model from data/train/model.json by default."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model URI (default: the one data/train/model.json records)")
    p.add_argument("--model-from", default="data/train/model.json")
    p.add_argument("--data", default="data/lab")
    p.add_argument("--out", default="metrics/lab_eval.json")
    p.add_argument("--plot", default="plots/lab_eval.png")
    p.add_argument("--no-mlflow", action="store_true")
    args = p.parse_args(argv)
    if args.model:
        args.model_from = None
    elif not Path(args.model_from).exists():
        print(f"lab.evaluate: {args.model_from} missing: train first (dvc repro train)", file=sys.stderr)
        return 1
    return main(args)


if __name__ == "__main__":
    sys.exit(cli())
