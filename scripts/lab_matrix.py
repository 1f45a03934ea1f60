"""Issue 8's numbers: CICIDS2017-only vs lab-only vs both, per lab scenario, and leave-one-tool-out.

Every model is the pipeline's model family (``pipeline.forest.forest``, balanced class weights, the
training medians of ``pipeline.prune``, wrapped by ``pipeline.model.fit_inference_model``), trained
on the engelen meter profile so CICIDS2017 and lab features match.  Training rows are cleaned and
de-duplicated like the ``clean`` stage does.  The test set is the lab's *held-out* evaluation runs
(``data/lab/eval``: their own captures, never trained on), metered here in the engelen profile
and labelled from their manifests; every flow is scored (no de-duplication: live traffic).

Usage: ``python scripts/lab_matrix.py [--cic DIR] [--out metrics/lab_matrix.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.meter_csv import read_meter_csv  # noqa: E402
from flows.schema import LABEL_COLUMN, feature_columns  # noqa: E402
from lab import pcap  # noqa: E402
from lab.dataset import flows_file  # noqa: E402
from lab.evaluate import score  # noqa: E402
from lab.labels import label_flows, meter  # noqa: E402
from pipeline.balance import class_weights  # noqa: E402
from pipeline.clean import clean_flows  # noqa: E402
from pipeline.forest import forest  # noqa: E402
from pipeline.group import group_labels  # noqa: E402
from pipeline.layouts import read_flow_folder  # noqa: E402
from pipeline.model import fit_inference_model  # noqa: E402
from pipeline.prune import training_medians  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "engelen"
TREES, DEPTH, SEED = 50, 20, 42


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """The clean stage's row filtering, keeping the columns it would drop as constant in this source
    alone (they are not constant once two sources are joined, as the pipeline joins them)."""
    raw["_row"] = np.arange(len(raw))
    flows, report = clean_flows(raw.copy())
    for c in report["constant_columns_dropped"]:
        flows[c] = raw[c].to_numpy()[flows["_row"].to_numpy()]
    return flows.drop(columns="_row")


def load_cic(folder: Path, mapping: dict[str, str]) -> pd.DataFrame:
    flows, _ = read_flow_folder(folder, progress=False)
    flows = clean(flows)
    flows[LABEL_COLUMN] = group_labels(flows[LABEL_COLUMN].astype(str), mapping).astype(str)
    flows["Tool"] = "cicids2017"
    return flows


def load_lab_train(data: Path) -> pd.DataFrame:
    path = flows_file(data, PROFILE)
    raw = pd.read_csv(path, low_memory=False)
    tools = raw["Tool"]
    scen = raw["Scenario"]
    flows, _ = read_flow_folder(path.parent, progress=False)  # the pipeline's own reader and types
    flows["Tool"], flows["Scenario"] = tools.to_numpy(), scen.to_numpy()
    return clean(flows)


def load_lab_eval(data: Path, work: Path) -> pd.DataFrame:
    frames = []
    for capture in sorted((data / "eval").glob("*.pcap.gz")):
        manifest = json.loads(capture.with_name(capture.name.removesuffix(".pcap.gz") + ".json").read_text())
        plain = work / capture.name.removesuffix(".gz")
        linktype, packets = pcap.read(capture)
        pcap.write(plain, linktype, packets)
        flows = read_meter_csv(meter(plain, PROFILE, work / "eval.csv"))
        labelled, _ = label_flows(flows, manifest["manifest"])
        frames.append(labelled)
    return pd.concat(frames, ignore_index=True)


def train(rows: pd.DataFrame, features: list[str]):
    feats = [f for f in features if f in rows.columns and rows[f].nunique() > 1]
    medians = training_medians(rows, feats)
    y = rows[LABEL_COLUMN].astype(str)
    clf = forest(TREES, DEPTH, SEED, n_jobs=2, class_weight=class_weights(y, "balanced"))
    return fit_inference_model(rows[feats], y, feats, medians, clf)


def predict(model, test: pd.DataFrame) -> pd.DataFrame:
    out = test[[LABEL_COLUMN, "Scenario", "Tool"]].copy()
    out["predicted"] = model.predict(test)
    return out


def dedupe(rows: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    cols = [f for f in features if f in rows.columns] + [LABEL_COLUMN]
    return rows.drop_duplicates(subset=cols)


def markdown(results: dict) -> str:
    """The closing note's tables: per scenario for the three models, then leave-one-tool-out."""
    models = list(results["models"])
    head = "| scenario | group | flows | " + " | ".join(f"{m}: group / any" for m in models) + " |"
    lines = [head, "|" + "---|" * (3 + len(models))]
    first = results["models"][models[0]]["scenarios"]
    for name in sorted(first, key=lambda n: (first[n]["group"], n)):
        cells = [
            f"{results['models'][m]['scenarios'][name]['detected_group']:.3f} / "
            f"{results['models'][m]['scenarios'][name]['detected_any']:.3f}"
            for m in models
        ]
        lines.append(
            f"| {name} | {first[name]['group']} | {first[name]['flows']} | " + " | ".join(cells) + " |"
        )
    for group in sorted(results["models"][models[0]]["groups"]):
        g = results["models"][models[0]]["groups"][group]
        cells = [
            f"**{results['models'][m]['groups'][group]['detected_group']:.3f} / "
            f"{results['models'][m]['groups'][group]['detected_any']:.3f}**"
            for m in models
        ]
        lines.append(f"| **all {group}** | {group} | {g['flows']} | " + " | ".join(cells) + " |")
    b = {m: results["models"][m]["benign"] for m in models}
    lines.append(
        f"| **benign: false-positive rate** | BENIGN | {b[models[0]]['flows']} | "
        + " | ".join(f"**{b[m]['false_positive_rate']:.4f}**" for m in models)
        + " |"
    )
    lines += [
        "",
        "| held out (group/tool) | trained on | flows | right group | any attack | benign FP |",
        "|---|---|---|---|---|---|",
    ]
    for key, e in results["leave_one_tool_out"].items():
        dg = "n/a" if e["detected_group"] is None else f"{e['detected_group']:.3f}"
        da = "n/a" if e["detected_any"] is None else f"{e['detected_any']:.3f}"
        lines.append(
            f"| {key} | {', '.join(e['trained_on'])} | {e['flows']} | {dg} | {da} | "
            f"{e['benign_fp_rate']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    shared = Path(os.environ.get("NETSENTRY_SHARED_DATA", ROOT.parent / "shared" / "data"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cic", type=Path, default=shared / "cicids2017" / "engelen-sample")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "lab")
    p.add_argument("--out", type=Path, default=ROOT / "metrics" / "lab_matrix.json")
    args = p.parse_args()
    import yaml

    mapping = yaml.safe_load((ROOT / "conf" / "labels" / "cicids2017.yaml").read_text())["mapping"]
    features = feature_columns(False)
    with tempfile.TemporaryDirectory() as tmp:
        test = load_lab_eval(args.data, Path(tmp))
    lab = dedupe(load_lab_train(args.data), features)
    cic = dedupe(load_cic(args.cic, mapping), features)
    print(
        f"train: lab {len(lab):,} rows, cic {len(cic):,} rows; held-out lab test {len(test):,} flows",
        flush=True,
    )
    results: dict = {"models": {}, "leave_one_tool_out": {}}
    sets = {"cic": cic, "lab": lab, "both": pd.concat([cic, lab], ignore_index=True)}
    for name, rows in sets.items():
        model = train(rows, features)
        results["models"][name] = score(predict(model, test))
        r = results["models"][name]
        print(
            f"{name}: benign FP {r['benign']['false_positive_rate']:.4f}; "
            + ", ".join(
                f"{g} {v['detected_group']:.3f}/{v['detected_any']:.3f}" for g, v in r["groups"].items()
            ),
            flush=True,
        )
    # leave one tool (or, for the bot, one mode) out of training, test on it
    key = np.where(lab[LABEL_COLUMN] == "Bot", lab["Scenario"], lab["Tool"])
    test_key = np.where(test[LABEL_COLUMN] == "Bot", test["Scenario"], test["Tool"])
    for group in sorted(set(lab[LABEL_COLUMN]) - {"BENIGN"}):
        tools = sorted(set(key[lab[LABEL_COLUMN] == group]))
        for tool in tools:
            held = (lab[LABEL_COLUMN] == group) & (key == tool)
            model = train(lab.loc[~held], features)
            sub = test.loc[(test[LABEL_COLUMN] == group) & (test_key == tool)]
            benign = test.loc[test[LABEL_COLUMN] == "BENIGN"]
            pred = predict(model, pd.concat([sub, benign], ignore_index=True))
            s = score(pred)
            attack = pred[pred[LABEL_COLUMN] == group]
            entry = {
                "trained_on": [t for t in tools if t != tool],
                "flows": len(sub),
                "detected_group": float((attack["predicted"] == group).mean()) if len(sub) else None,
                "detected_any": float((~attack["predicted"].isin(["BENIGN", "UNJUDGED"])).mean())
                if len(sub)
                else None,
                "benign_fp_rate": s["benign"]["false_positive_rate"],
            }
            results["leave_one_tool_out"][f"{group}/{tool}"] = entry
            print(f"LOTO {group}/{tool}: {entry}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
