"""Stage ``clean``: load the input folder into the canonical schema and remove unusable data.

Reads every ``.csv`` and ``.csv.gz`` file of ``data.input_dir`` and its sub-folders (any mix of
the CICIDS2017 layouts, see :mod:`pipeline.layouts`; every file read and every other file,
ignored, is listed on stderr and in the metrics), then, counting and logging every row it drops:

1. drops rows without a label (the blank trailing rows of the original files);
   a finite value beyond the float32 range (e.g. 1e308) counts as missing from here on: the
   forest compares in float32, where it would be inf (counted in ``beyond_float32_range``);
2. turns ±inf/NaN in the rate columns (``Flow Bytes/s``, ``Flow Packets/s``: zero-duration
   flows) into NaN, to be replaced by the *training* median in ``prune`` (a median learned here
   would see the test rows);
3. drops rows with a missing or infinite value in any other feature;
4. drops duplicate flows (same features and label; identifiers ignored);
5. drops feature columns constant over the whole input (no information anywhere).

With ``data.site_dir`` set, the site's recorded flows join the input as ``BENIGN`` first
(:mod:`pipeline.site`). Writes ``data/clean/flows.parquet`` and ``metrics/clean.json``.
Usage: ``python -m pipeline.clean`` (reads params.yaml).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.schema import FEATURE_COLUMNS, LABEL_COLUMN, RATE_COLUMNS
from pipeline import tracking
from pipeline.io import project_path, write_json, write_parquet
from pipeline.layouts import LayoutError, list_input_files, read_flow_folder, relative_name
from pipeline.site import SiteError, read_site
from pipeline.stage import log_metrics, stage_cli

OUTPUT = "data/clean/flows.parquet"
#: the largest magnitude a feature may have: the trees compare in float32
FLOAT32_MAX = float(np.finfo(np.float32).max)
METRICS_OUT = "metrics/clean.json"


def present_features(df: pd.DataFrame) -> list[str]:
    """The candidate features (Destination Port included) that ``df`` has, in schema order."""
    return [c for c in FEATURE_COLUMNS if c in df.columns]


def duplicate_rows(df: pd.DataFrame, subset: list[str]) -> np.ndarray:
    """Exact ``df.duplicated(subset, keep="first")``, cheap in memory on millions of rows.

    Rows are hashed first; only rows whose hash repeats are compared exactly (a hash collision
    can only add candidates, never hide a difference).
    """
    hashes = pd.util.hash_pandas_object(df[subset], index=False).to_numpy()
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    dup = np.zeros(len(df), dtype=bool)
    if candidates.any():
        dup[candidates] = df.loc[candidates, subset].duplicated(keep="first").to_numpy()
    return dup


def clean_flows(flows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Apply the cleaning steps; return the clean frame and a report of what was dropped."""
    report: dict[str, Any] = {"rows_in": len(flows), "dropped": {}}
    feats = present_features(flows)

    no_label = (flows[LABEL_COLUMN].isna() | (flows[LABEL_COLUMN] == "")).to_numpy()
    report["dropped"]["no_label"] = int(no_label.sum())

    report["beyond_float32_range"] = {}
    for c in feats:
        if flows[c].dtype.kind != "f":
            continue
        values = flows[c].to_numpy(dtype="float64", na_value=np.nan)
        huge = np.isfinite(values) & (np.abs(values) > FLOAT32_MAX)
        if huge.any():
            report["beyond_float32_range"][c] = int((huge & ~no_label).sum())
            flows[c] = np.where(huge, np.nan, values)

    rates = [c for c in RATE_COLUMNS if c in flows.columns]
    report["rate_values_to_impute"] = {}
    for c in rates:  # column by column: no copy of the whole frame
        values = flows[c].to_numpy(dtype="float64", na_value=np.nan)
        report["rate_values_to_impute"][c] = int((~np.isfinite(values[~no_label])).sum())
        flows[c] = np.where(np.isinf(values), np.nan, values)

    bad_rows = np.zeros(len(flows), dtype=bool)
    by_column = {}
    for c in feats:
        if c in rates:
            continue
        bad = ~np.isfinite(flows[c].to_numpy(dtype="float64", na_value=np.nan)) & ~no_label
        if bad.any():
            by_column[c] = int(bad.sum())
            bad_rows |= bad
    report["dropped"]["unusable_values"] = int(bad_rows.sum())
    report["unusable_by_column"] = by_column
    flows = flows.loc[~(no_label | bad_rows)]

    dup = duplicate_rows(flows, [*feats, LABEL_COLUMN])
    report["dropped"]["duplicates"] = int(dup.sum())
    if dup.any():
        flows = flows.loc[~dup]

    constant = [c for c in feats if flows[c].nunique(dropna=False) <= 1]
    report["constant_columns_dropped"] = constant
    flows = flows.drop(columns=constant).reset_index(drop=True)

    report["rows_out"] = len(flows)
    report["rows_dropped"] = report["rows_in"] - len(flows)
    report["labels"] = {str(k): int(v) for k, v in flows[LABEL_COLUMN].value_counts().sort_index().items()}
    return flows, report


def check_input(input_dir: Path) -> None:
    """Stop with a plain explanation when the input folder is missing (before DVC complains)."""
    if input_dir.is_dir():
        return
    raise SystemExit(
        f"clean: the input folder {input_dir} does not exist.\n"
        "  The lab's own dataset is not committed yet, so the default input is the CICIDS2017 sample\n"
        "  (corrected release) in ../shared/data/cicids2017/engelen-sample. Either put the shared data\n"
        "  there, set NETSENTRY_SHARED_DATA=/path/to/shared/data, or choose another folder of CICIDS2017\n"
        "  CSVs: python -m pipeline.params data.input_dir=/path/to/csvs"
    )


def input_profile(files: dict[str, dict], expected: str | None) -> str:
    """The one meter profile of all input files; a :class:`LayoutError` for a mix or a mismatch.

    One model serves one profile (the sensor meters traffic in the profile tagged on the model),
    so files of different profiles cannot be trained on together, whatever ``data.flow_profile``.
    """
    by_profile: dict[str, list[str]] = {}
    for name, info in files.items():
        by_profile.setdefault(info["flow_profile"], []).append(f"{name} ({info['layout']})")
    if len(by_profile) > 1:
        listing = "; ".join(f"{prof}: {', '.join(names)}" for prof, names in sorted(by_profile.items()))
        raise LayoutError(
            f"the input mixes meter profiles ({listing}); one model serves one profile, so put the "
            "files of one profile in data.input_dir"
        )
    (found,) = by_profile
    if expected and expected != found:
        raise LayoutError(
            f"data.flow_profile is {expected!r} but every input file is of the {found!r} profile; "
            f"set data.flow_profile={found} (or null to accept what the files are)"
        )
    return found


def read_input(input_dir: Path, expected_profile: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the input folder; return the flows and ``{"files", "ignored_files", "flow_profile"}``."""
    flows, files = read_flow_folder(input_dir)
    ignored = [relative_name(p, input_dir) for p in list_input_files(input_dir)[1]]
    profile = input_profile(files, expected_profile)
    return flows, {"files": files, "ignored_files": ignored, "flow_profile": profile}


def add_site(flows: pd.DataFrame, inputs: dict[str, Any], data: dict[str, Any]) -> pd.DataFrame:
    """The input flows plus the site's recorded flows as benign, when ``data.site_dir`` is set."""
    if not data.get("site_dir"):
        return flows
    site_dir = project_path(data["site_dir"])
    print(f"clean: reading the site's recorded flows in {site_dir}", flush=True)
    profile = inputs["flow_profile"] or data.get("flow_profile")
    rows, report = read_site(site_dir, profile, float(data.get("site_drop_flagged_from", 0.9)))
    inputs["site"] = report
    print(
        f"clean: site: {report['rows']:,} recorded flows, {report['left_out_flagged']:,} confident "
        f"detections left out, {report['rows_as_benign']:,} added as BENIGN",
        flush=True,
    )
    return pd.concat([flows, rows], ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage (``--check-input``: only check the input folder exists)."""
    args = sys.argv[1:] if argv is None else argv
    only_check = "--check-input" in args
    params = stage_cli("clean", __doc__, [a for a in args if a != "--check-input"])
    input_dir = project_path(params["data"]["input_dir"])
    check_input(input_dir)
    if only_check:
        return
    with tracking.stage_run("clean", params, ["data"]):
        print(f"clean: reading {input_dir}", flush=True)
        try:
            flows, inputs = read_input(input_dir, params["data"].get("flow_profile"))
            flows = add_site(flows, inputs, params["data"])
        except (LayoutError, SiteError) as err:
            raise SystemExit(f"clean: {err}") from None
        clean, report = clean_flows(flows)
        report.update(inputs)
        write_parquet(clean, OUTPUT)
        write_json(report, METRICS_OUT)
        log_metrics({k: report[k] for k in ("rows_in", "rows_out", "dropped", "rate_values_to_impute")})
    d = report["dropped"]
    print(
        f"clean: {report['rows_in']:,} rows from {len(inputs['files'])} files "
        f"({len(inputs['ignored_files'])} other files ignored) "
        f"-> {report['rows_out']:,} "
        f"(dropped {d['no_label']:,} unlabelled, {d['unusable_values']:,} with unusable values, "
        f"{d['duplicates']:,} duplicates); "
        f"{len(report['constant_columns_dropped'])} constant columns dropped: "
        + ", ".join(report["constant_columns_dropped"])
    )


if __name__ == "__main__":
    main()
