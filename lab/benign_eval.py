"""False positives on real benign traffic: what the registered model says about ordinary flows it never saw.

The lab's own held-out benign flows are a closed world (a few scripted users of a few services); a
sensor is judged by what it says about everyday traffic. For each benign *set* this meters every
capture in the model's flow profile (``capture/flowmeter``), runs all flows through the sensor's own
``netsentry classify`` (a subprocess: the lab never imports the sensor) and reports the share of flows
called an attack, per set, per capture and per predicted group.

Sets:
- capture folders named in ``lab/benign_captures.yaml`` (default: the shared protocol captures under
  ``$NETSENTRY_SHARED_DATA``), minus the captures that manifest lists as attacks or broken traffic, each
  with its reason, and minus the captures the model version was trained on (its ``trained_captures``
  tag: a site baseline), listed in the report. A folder that is absent is reported as skipped.
- flow sets: the ``BENIGN`` rows of labelled flow files, per meter profile (the manifest's
  ``flow_sets``: the lab catalogue's held-out run), and of any ``--flows NAME=CSV``.
- ``lab-heldout``: the benign figure of ``lab_eval`` (``metrics/lab_eval.json``), shown beside them.

Output: a table on stdout, ``metrics/benign_eval.json`` (per set and its worst captures),
``metrics/benign_eval.csv`` (one row per capture), ``plots/benign_eval.png``, and the figures as MLflow
metrics on a run and as tags (``benign_fp_<set>``) on the model version. DVC stage ``benign_eval``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from flows.meter_csv import read_meter_csv
from flows.novelty import UNKNOWN
from flows.schema import FLOW_COLUMNS, LABEL_COLUMN
from lab.evaluate import NOT_ATTACK, EvalError, resolve_version, run_classify
from lab.labels import BENIGN, PROJECT_ROOT, SCENARIO_COLUMN, MeterError, meter, shared_data_dir

MANIFEST = PROJECT_ROOT / "lab" / "benign_captures.yaml"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
TRAINED_TAG = "trained_captures"
WORST = 10  # captures listed per set in the JSON report


@dataclass
class BenignSet:
    """One benign source: its flows (canonical columns) and the capture or activity each came from."""

    name: str
    flows: pd.DataFrame | None = None
    origin: list[str] = field(default_factory=list)
    skipped: str = ""  # why the set was not judged
    excluded: dict[str, str] = field(default_factory=dict)  # capture -> kind (attack, broken, trained)
    unreadable: dict[str, str] = field(default_factory=dict)  # capture -> the meter's reason


def load_flow_sets(path: Path = MANIFEST) -> dict[str, str]:
    """The manifest's flow sets: name -> path pattern (``{profile}`` for the meter profile)."""
    data = yaml.safe_load(path.read_text())
    sets = (data or {}).get("flow_sets") or {}
    if not isinstance(sets, dict) or not all(isinstance(v, dict) and isinstance(v.get("path"), str)
                                             for v in sets.values()):
        raise EvalError(f"{path}: each of `flow_sets` needs a `path`")
    return {name: spec["path"] for name, spec in sets.items()}


def load_manifest(path: Path = MANIFEST) -> dict[str, dict[str, Any]]:
    """The capture sets of the manifest, each with its folder and excluded captures (kind, why)."""
    data = yaml.safe_load(path.read_text())
    sets = data.get("sets") if isinstance(data, dict) else None
    if not isinstance(sets, dict) or not sets:
        raise EvalError(f"{path}: no `sets` mapping")
    for name, spec in sets.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("folder"), str):
            raise EvalError(f"{path}: set {name!r} needs a `folder`")
        for capture, why in (spec.get("excluded") or {}).items():
            if not isinstance(why, dict) or why.get("kind") not in ("attack", "broken") or not why.get("why"):
                raise EvalError(f"{path}: {name}/{capture}: needs `kind` (attack|broken) and `why`")
    return sets


def benign_captures(
    folder: Path, spec: dict[str, Any], trained: set[str]
) -> tuple[list[Path], dict[str, str]]:
    """The captures under ``folder`` that count as benign, and those left out (name -> why)."""
    skip_dirs = set(spec.get("skip_folders") or [])
    excluded = {name: why["kind"] for name, why in (spec.get("excluded") or {}).items()}
    keep, left_out = [], {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or not p.name.lower().endswith(CAPTURE_SUFFIXES):
            continue
        if skip_dirs & set(p.relative_to(folder).parts[:-1]):
            continue
        if p.name in excluded:
            left_out[p.name] = excluded[p.name]
        elif p.name in trained:
            left_out[p.name] = "trained"
        else:
            keep.append(p)
    return keep, left_out


def meter_set(name: str, captures: list[Path], profile: str, work: Path) -> BenignSet:
    """Meter every capture; a capture the meter cannot read is listed with its reason, never dropped."""
    out = BenignSet(name)
    frames = []
    for i, capture in enumerate(captures):
        csv = work / f"{name}-{i}.csv"
        try:
            status = meter(capture, profile, csv, accept=(0, 3))
        except MeterError as err:
            out.unreadable[capture.name] = str(err).splitlines()[-1][-200:]
            continue
        flows = read_meter_csv(csv)
        if status == 3:
            out.unreadable[capture.name] = f"damaged after {len(flows)} flows (metered up to the damage)"
        frames.append(flows)
        out.origin += [capture.name] * len(flows)
    out.flows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(FLOW_COLUMNS))
    return out


def flows_set(name: str, csv: Path) -> BenignSet:
    """The ``BENIGN`` rows of a labelled flow CSV; the origin is its ``Scenario`` column (else the file)."""
    try:
        rows = pd.read_csv(csv, low_memory=False)
    except (OSError, ValueError) as err:
        raise EvalError(f"cannot read {csv}: {err}") from err
    if LABEL_COLUMN not in rows.columns:
        raise EvalError(f"{csv}: no {LABEL_COLUMN} column")
    rows = rows[rows[LABEL_COLUMN].astype(str) == BENIGN].reset_index(drop=True)
    missing = [c for c in FLOW_COLUMNS if c not in rows.columns]
    if missing:
        raise EvalError(f"{csv}: {len(missing)} flow column(s) missing, e.g. {missing[0]!r}")
    origin = rows[SCENARIO_COLUMN].astype(str).tolist() if SCENARIO_COLUMN in rows else [csv.name] * len(rows)
    return BenignSet(name, rows[list(FLOW_COLUMNS)], origin)


def judge(bset: BenignSet, model: str, work: Path) -> pd.Series:
    """The model's predicted group for every flow of the set, in order."""
    flows_csv = work / f"{bset.name}-flows.csv"
    assert bset.flows is not None
    bset.flows.to_csv(flows_csv, index=False)
    verdicts = run_classify(
        flows_csv, model, work / f"{bset.name}-verdicts.csv", "serve.alerts.sinks.eve.enabled=false"
    )
    if len(verdicts) != len(bset.flows):
        raise EvalError(f"{bset.name}: {len(bset.flows)} flows in, {len(verdicts)} verdicts out")
    same = verdicts["Flow ID"].astype(str).to_numpy() == bset.flows["Flow ID"].astype(str).to_numpy()
    if not same.all():
        raise EvalError(f"{bset.name}: verdicts out of order at row {int((~same).argmax())}")
    return verdicts["predicted"].astype(str)


def score_set(bset: BenignSet, predicted: pd.Series) -> tuple[dict[str, Any], pd.DataFrame]:
    """The set's figures and its per-capture table (flows, flagged, share, most flagged group)."""
    rows = pd.DataFrame({"capture": bset.origin, "predicted": predicted.to_numpy()})
    rows["flagged"] = ~rows["predicted"].isin(NOT_ATTACK)
    per = rows.groupby("capture").agg(flows=("flagged", "size"), flagged=("flagged", "sum")).reset_index()
    per["share"] = per["flagged"] / per["flows"]
    top = rows[rows["flagged"]].groupby("capture")["predicted"].agg(lambda s: s.value_counts().index[0])
    per["top_group"] = per["capture"].map(top.astype(object)).astype(object).fillna("")
    per.insert(0, "set", bset.name)
    per = per.sort_values(["flagged", "share"], ascending=[False, False]).reset_index(drop=True)
    flagged = int(rows["flagged"].sum())
    report = {
        "flows": int(len(rows)),
        "flagged": flagged,
        "false_positive_rate": flagged / len(rows) if len(rows) else None,
        "unjudged": int((rows["predicted"] == "UNJUDGED").sum()),
        "unknown": int((rows["predicted"] == UNKNOWN).sum()),  # the novelty guard's, not an attack call
        "sources": int(len(per)),
        "sources_with_a_false_positive": int((per["flagged"] > 0).sum()),
        "flagged_as": {
            str(k): int(v) for k, v in rows.loc[rows["flagged"], "predicted"].value_counts().items()
        },
        "worst": per.head(WORST)[["capture", "flows", "flagged", "share", "top_group"]].to_dict("records"),
        "excluded": dict(sorted(bset.excluded.items())),
        "unreadable": dict(sorted(bset.unreadable.items())),
    }
    return report, per


def model_profile_and_trained(model: str) -> tuple[str, set[str]]:
    """The model version's ``flow_profile`` and the captures it was trained on (``trained_captures`` tag)."""
    import mlflow

    name, version = resolve_version(model)
    if not version:
        raise EvalError(
            f"{model}: not a registered model version (models:/NAME/VERSION or models:/NAME@ALIAS)"
        )
    tags = mlflow.MlflowClient().get_model_version(name, version).tags
    profile = tags.get("flow_profile")
    if not profile:
        raise EvalError(f"{model}: the version has no flow_profile tag")
    trained = {c for c in json.loads(tags.get(TRAINED_TAG, "[]"))}
    return profile, trained


def collect_sets(
    manifest: dict[str, dict[str, Any]],
    shared: Path,
    flow_csvs: dict[str, Path],
    profile: str,
    trained: set[str],
    work: Path,
) -> list[BenignSet]:
    """Meter the capture sets (skipping absent folders, with the reason) and read the flow sets."""
    out = []
    for name, spec in manifest.items():
        folder = shared / spec["folder"]
        if not folder.is_dir():
            out.append(BenignSet(name, skipped=f"{folder} absent (set NETSENTRY_SHARED_DATA)"))
            continue
        captures, left_out = benign_captures(folder, spec, trained)
        print(
            f"benign_eval: {name}: metering {len(captures)} captures ({len(left_out)} left out)",
            file=sys.stderr,
        )
        bset = meter_set(name, captures, profile, work)
        bset.excluded = left_out
        out.append(bset)
    for name, csv in flow_csvs.items():
        if not csv.exists():
            out.append(BenignSet(name, skipped=f"{csv} absent"))
            continue
        out.append(flows_set(name, csv))
    return out


def lab_heldout(path: Path) -> dict[str, Any] | None:
    """The lab's held-out benign figure from ``lab_eval``'s report, if it ran."""
    if not path.exists():
        return None
    benign = json.loads(path.read_text()).get("benign") or {}
    return {
        "flows": benign.get("flows"),
        "false_positive_rate": benign.get("false_positive_rate"),
        "flagged_as": benign.get("flagged_as", {}),
        "from": str(path),
    }


def plot(per_capture: pd.DataFrame, report: dict[str, Any], path: Path) -> None:
    """Bars: each set's false-positive rate, then the 25 captures with the most flows called an attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = {
        k: v["false_positive_rate"]
        for k, v in report["sets"].items()
        if v.get("false_positive_rate") is not None
    }
    worst = per_capture[per_capture["flagged"] > 0].sort_values("flagged", ascending=False).head(25)
    labels = [f"set: {k}" for k in sets] + [
        f"{c} ({n})" for c, n in zip(worst["capture"], worst["flows"], strict=True)
    ]
    values = list(sets.values()) + worst["share"].tolist()
    fig, ax = plt.subplots(figsize=(10, 0.3 * len(labels) + 1.5))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=["tab:red"] * len(sets) + ["tab:orange"] * len(worst))
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    ax.axvline(0.01, color="grey", linestyle=":")
    ax.set_xlabel("share of benign flows called an attack (dotted: 1%)")
    ax.set_title(f"benign false positives: {report['model']} (v{report['model_version']})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def log_to_mlflow(report: dict[str, Any], files: list[Path]) -> None:
    """The figures as metrics of a run tagged with the model version, and as tags on that version."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment("netsentry-benign-eval")
    metrics = {
        f"benign_fp_{name.replace('-', '_')}": s["false_positive_rate"]
        for name, s in report["sets"].items()
        if s.get("false_positive_rate") is not None
    }
    with mlflow.start_run(run_name="benign-eval"):
        mlflow.set_tags(
            {
                "model_uri": report["model"],
                "model_name": report["model_name"],
                "model_version": str(report["model_version"]),
            }
        )
        mlflow.log_metrics(metrics)
        for f in files:
            mlflow.log_artifact(str(f))
    try:
        client = mlflow.MlflowClient()
        for key, value in metrics.items():
            client.set_model_version_tag(report["model_name"], report["model_version"], key, f"{value:.4f}")
    except MlflowException as err:
        print(f"benign_eval: could not tag the model version: {err.message.splitlines()[0]}", file=sys.stderr)


def evaluate(
    model: str,
    out: Path,
    plot_path: Path,
    flow_csvs: dict[str, Path],
    manifest_path: Path = MANIFEST,
    shared: Path | None = None,
    lab_report: Path | None = None,
    mlflow_log: bool = True,
) -> dict[str, Any]:
    """Judge every benign set; write the JSON report, the per-capture CSV and the plot; return the report."""
    manifest = load_manifest(manifest_path)
    profile, trained = model_profile_and_trained(model)
    patterns = load_flow_sets(manifest_path)
    committed = {n: PROJECT_ROOT / p.format(profile=profile) for n, p in patterns.items()}
    flow_csvs = {**committed, **flow_csvs}
    name, version = resolve_version(model)
    report: dict[str, Any] = {
        "model": model,
        "model_name": name,
        "model_version": version,
        "flow_profile": profile,
        "sets": {},
    }
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for bset in collect_sets(
            manifest, shared or shared_data_dir(), flow_csvs, profile, trained, Path(tmp)
        ):
            if bset.skipped:
                report["sets"][bset.name] = {"skipped": bset.skipped}
                continue
            if bset.flows is None or bset.flows.empty:
                report["sets"][bset.name] = {"skipped": "no flows", "unreadable": bset.unreadable}
                continue
            figures, per = score_set(bset, judge(bset, model, Path(tmp)))
            report["sets"][bset.name] = figures
            tables.append(per)
    held = lab_heldout(lab_report) if lab_report else None
    if held:
        report["sets"]["lab-heldout"] = held
    per_capture = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=["set", "capture", "flows", "flagged", "share", "top_group"])
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    csv = out.with_suffix(".csv")
    per_capture.to_csv(csv, index=False, float_format="%.4f")
    plot(per_capture, report, plot_path)
    print_table(report)
    if mlflow_log:
        log_to_mlflow(report, [out, csv, plot_path])
    return report


def print_table(report: dict[str, Any]) -> None:
    """One line per set: flows, attack calls, their share, UNKNOWN verdicts, sources with an attack call;
    then each set's worst captures."""
    print(
        f"benign false positives of {report['model']} "
        f"(v{report['model_version']}, profile {report['flow_profile']})"
    )
    print(f"{'set':<22}{'flows':>8}{'attack':>8}{'share':>9}{'unknown':>9}  sources with an attack call")
    for name, s in report["sets"].items():
        if "skipped" in s:
            print(f"{name:<22}  skipped: {s['skipped']}")
            continue
        rate = s["false_positive_rate"]
        flagged = s.get("flagged", round((rate or 0) * (s["flows"] or 0)))
        with_one = f"{s['sources_with_a_false_positive']}/{s['sources']}" if "sources" in s else "-"
        unknown = s.get("unknown", "-")
        print(f"{name:<22}{s['flows']:>8}{flagged:>8}{rate:>9.2%}{unknown:>9}  {with_one}")
    for name, s in report["sets"].items():
        worst = [w for w in s.get("worst", []) if w["flagged"]][:5]
        if worst:
            print(
                f"  {name} worst: " + ", ".join(f"{w['capture']} {w['flagged']}/{w['flows']}" for w in worst)
            )


def parse_flow_sets(values: list[str]) -> dict[str, Path]:
    """``NAME=CSV`` arguments."""
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise EvalError(f"--flows takes NAME=CSV, not {v!r}")
        out[name] = Path(path)
    return out


def cli(argv: list[str] | None = None) -> int:
    """``python -m lab.benign_eval`` (the DVC stage): the model from data/train/model.json by default."""
    import os

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model URI (default: the version data/train/model.json records)")
    p.add_argument(
        "--model-from", default="data/train/model.json", help="train's record of what it registered"
    )
    p.add_argument(
        "--flows",
        action="append",
        default=[],
        metavar="NAME=CSV",
        help="also judge the BENIGN rows of a labelled flow CSV (repeatable)",
    )
    p.add_argument("--manifest", type=Path, default=MANIFEST, help="capture sets and their exclusions")
    p.add_argument(
        "--lab-report",
        type=Path,
        default=Path("metrics/lab_eval.json"),
        help="lab_eval's report, for the lab's held-out benign figure",
    )
    p.add_argument("--out", type=Path, default=Path("metrics/benign_eval.json"))
    p.add_argument("--plot", type=Path, default=Path("plots/benign_eval.png"))
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    args = p.parse_args(argv)
    model = args.model
    if not model:
        if not Path(args.model_from).exists():
            print(f"benign_eval: {args.model_from} missing: train first (dvc repro train)", file=sys.stderr)
            return 2
        info = json.loads(Path(args.model_from).read_text())
        model = f"models:/{info['registered_model']}/{info['version']}"
        if info.get("tracking_uri"):
            os.environ.setdefault("MLFLOW_TRACKING_URI", info["tracking_uri"])
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}")
    try:
        evaluate(
            model,
            args.out,
            args.plot,
            parse_flow_sets(args.flows),
            args.manifest,
            lab_report=args.lab_report,
            mlflow_log=not args.no_mlflow,
        )
    except (EvalError, MeterError) as err:
        print(f"benign_eval: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
