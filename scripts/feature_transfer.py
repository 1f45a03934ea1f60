"""Which features carry the testbed rather than the behaviour: lab benign vs another network's benign.

For every candidate feature, the population stability index (PSI) between the lab's benign flows and
the benign flows of another source metered in the same profile (default: the lab's engelen-profile
flows vs the CICIDS2017 corrected sample's BENIGN rows, both the corrected CICFlowMeter features), on
the reference's deciles. PSI > 0.25 is the usual "the population changed" mark. Also says which
features the current model reads (``data/select/features.json``) and their RFE rank, so a feature
that the model leans on and that differs most between two benign worlds stands out.

The shared protocol captures are not used here: they are the held-out benign evaluation.
Usage: ``python scripts/feature_transfer.py [--lab data/lab/engelen] [--other DIR] [--top 25]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.schema import FEATURE_COLUMNS, LABEL_COLUMN  # noqa: E402
from lab.labels import shared_data_dir  # noqa: E402
from pipeline.layouts import read_flow_folder  # noqa: E402


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` on ``expected``'s quantile bins."""
    expected = expected[np.isfinite(expected)]
    actual = actual[np.isfinite(actual)]
    if not len(expected) or not len(actual):
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # constant in the reference: all of actual outside it is the change
        same = float(np.mean(actual == edges[0]))
        return float((1 - same) * np.log((1 - same + 1e-4) / 1e-4))
    inner = edges[1:-1]
    e = np.bincount(np.searchsorted(inner, expected, side="right"), minlength=len(edges) - 1) / len(expected)
    a = np.bincount(np.searchsorted(inner, actual, side="right"), minlength=len(edges) - 1) / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def benign(folder: Path) -> pd.DataFrame:
    flows, _ = read_flow_folder(folder)
    return flows[flows[LABEL_COLUMN].astype(str) == "BENIGN"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lab", type=Path, default=ROOT / "data" / "lab" / "engelen")
    p.add_argument("--other", type=Path, default=shared_data_dir() / "cicids2017" / "engelen-sample")
    p.add_argument("--features", type=Path, default=ROOT / "data" / "select" / "features.json")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--port", type=int, action="append", default=[],
                   help="only flows to this destination port on both sides (repeatable): the same service "
                   "in two networks, so what differs is the network, not the mix of applications")
    p.add_argument("--out", type=Path, help="also write the whole table as CSV")
    args = p.parse_args(argv)
    if not args.other.is_dir():
        print(f"feature_transfer: {args.other} absent (set NETSENTRY_SHARED_DATA or --other)",
              file=sys.stderr)
        return 1
    lab, other = benign(args.lab), benign(args.other)
    if args.port:
        lab = lab[lab["Destination Port"].isin(args.port)]
        other = other[other["Destination Port"].isin(args.port)]
    ranks: dict[str, int] = {}
    selected: set[str] = set()
    if args.features.exists():
        chosen = json.loads(args.features.read_text())
        ranks = {r["feature"]: r["rank"] for r in chosen.get("ranking", [])}
        selected = set(chosen.get("selected", []))
    rows = []
    for f in FEATURE_COLUMNS:
        if f in lab.columns and f in other.columns:
            a = pd.to_numeric(lab[f], errors="coerce").to_numpy(dtype=float)
            b = pd.to_numeric(other[f], errors="coerce").to_numpy(dtype=float)
            rows.append({"feature": f, "psi": psi(b, a), "lab_median": np.nanmedian(a),
                         "other_median": np.nanmedian(b), "rfe_rank": ranks.get(f),
                         "selected": f in selected})
    table = pd.DataFrame(rows).sort_values("psi", ascending=False, na_position="last")
    print(f"benign flows: lab {len(lab)} ({args.lab}), other {len(other)} ({args.other})")
    print(table.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    used = table[table["selected"]]
    if len(used):
        print(f"\nfeatures the model reads: median PSI {used['psi'].median():.2f}; "
              f"{int((used['psi'] > 0.25).sum())} of {len(used)} above 0.25")
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
