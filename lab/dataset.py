"""Build the embedded dataset ``data/lab/`` from the folders written by ``netsentry lab run``.

Layout of the dataset folder::

    clean/flows.lab-clean.csv.gz       labelled flows, meter profile clean   (conf/data/lab.yaml)
    engelen/flows.lab-engelen.csv.gz   the same traffic, meter profile engelen (conf/data/lab_engelen.yaml)
    runs/<run>.json                    each training run's manifest (tools, versions, argv, windows) + counts
    eval/<run>.pcap.gz, eval/<run>.json  held-out runs (not in the flows): victim capture, headers only,
                                       and manifest, replayed by `netsentry lab eval`
    summary.json                       flows per profile, label and scenario
    demo.pcap                          a small capture (benign + a few attacks) that `make run` classifies

The file names carry the meter profile (``.lab-<profile>.csv.gz``): that is how ``pipeline.layouts``
knows which profile a lab file is in (the header is the same for both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lab import pcap
from lab.labels import LAB_COLUMNS, LABEL_COLUMN, PROFILES, SCENARIO_COLUMN

#: bytes kept of each packet in the stored captures: Ethernet + IPv4 + TCP without options (all the
#: meter reads; the slow lab test checks that a header-only copy meters to the same flows)
HEADER_SNAPLEN = 64
#: what the demo capture shows: benign only, then a slice of a few attacks (seconds from each start)
DEMO_SLICES = {
    "nmap-connect-t4": 1,
    "hydra-ssh": 8,
    "slowloris": 6,
    "sqlmap-item": 6,
    "xss-script": 6,
    "ddos-httpflood": 1,
}
DEMO_BENIGN_SECONDS = 15
DEMO_MAX_BYTES = 2_000_000
#: floods and fast scans make tens of thousands of near-identical flows: each run keeps at most this many
#: flows of a scenario (a seeded sample of whole flows), which keeps the dataset a few MB
MAX_FLOWS_PER_SCENARIO = 2000
#: the same for the held-out captures (whole flows kept or left out, so replay meters the same flows)
EVAL_MAX_FLOWS_PER_SCENARIO = 1000
SAMPLE_SEED = 8


def flows_file(folder: Path, profile: str) -> Path:
    """Where the dataset keeps the flows of one meter profile."""
    return folder / profile / f"flows.lab-{profile}.csv.gz"


def _labelled(run: Path, profile: str) -> pd.DataFrame:
    path = run / f"labelled-{profile}.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: label the run in the {profile} profile first")
    return pd.read_csv(path, low_memory=False)


def _key_series(df: pd.DataFrame) -> pd.Series:
    return pd.Series(
        [
            pcap.canonical_key(s, d, int(sp), int(dp), int(pr))
            for s, d, sp, dp, pr in zip(
                df["Source IP"],
                df["Destination IP"],
                df["Source Port"].fillna(0),
                df["Destination Port"].fillna(0),
                df["Protocol"].fillna(0),
                strict=True,
            )
        ],
        index=df.index,
    )


def dropped_flows(run: Path, cap: int = MAX_FLOWS_PER_SCENARIO) -> set[tuple[str, str, int, int, int]]:
    """5-tuples of the flows left out of a run: beyond ``cap`` flows of one attack scenario (seeded sample).

    Decided once per run on the clean-profile flows, and applied to every profile and the capture, so
    all of them hold the same conversations.
    """
    df = _labelled(run, "clean")
    df["key"] = _key_series(df)
    drop: set = set()
    keys = df.groupby(SCENARIO_COLUMN)["key"].unique()
    rng = np.random.default_rng(SAMPLE_SEED)
    for name, scenario_keys in sorted(keys.items()):
        # benign is never sampled: the false-positive rate needs all of it, and it is small
        if name != "benign" and len(scenario_keys) > cap:
            idx = rng.choice(len(scenario_keys), len(scenario_keys) - cap, replace=False)
            drop.update(scenario_keys[i] for i in idx)
    return drop


def _combine(runs: list[Path], profile: str, drops: dict[str, set]) -> pd.DataFrame:
    frames = []
    for run in runs:
        df = _labelled(run, profile)
        frames.append(df.loc[~_key_series(df).isin(drops[run.name])])
    df = pd.concat(frames, ignore_index=True)
    return df[list(LAB_COLUMNS)]


def demo_windows(manifest: dict[str, Any]) -> list[tuple[float, float]]:
    """Time windows of the demo capture: benign warm-up, then the start of a few attack scenarios."""
    first = min(s["start"] for s in manifest["scenarios"] if not s["background"])
    windows = [(max(manifest["capture_start"], first - DEMO_BENIGN_SECONDS - 1), first - 1)]
    for s in manifest["scenarios"]:
        if s["name"] in DEMO_SLICES:
            windows.append((s["start"], min(s["end"], s["start"] + DEMO_SLICES[s["name"]])))
    return windows


def write_demo(run: Path, out: Path) -> int:
    """Cut the demo capture out of a run's capture; return its size in bytes."""
    manifest = json.loads((run / "manifest.json").read_text())
    linktype, packets = pcap.read(run / "capture.pcap")
    # headers only, like the stored captures: the meter's clean/engelen lengths come from the IP header
    pcap.write(out, linktype, pcap.in_windows(packets, demo_windows(manifest)), HEADER_SNAPLEN)
    size = out.stat().st_size
    if size > DEMO_MAX_BYTES:
        raise ValueError(f"demo capture is {size:,} bytes (limit {DEMO_MAX_BYTES:,}): shorten DEMO_SLICES")
    return size


def _store_run(run: Path, folder: Path, capture: bool, drop: set) -> None:
    """Keep a run's manifest and label counts (and its header-only capture) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"manifest": json.loads((run / "manifest.json").read_text())}
    for profile in PROFILES:
        record[f"labels_{profile}"] = json.loads((run / f"labels-{profile}.json").read_text())
    if capture:
        linktype, packets = pcap.read(run / "capture.pcap")
        kept = pcap.without_flows(packets, drop)
        record["packets"] = pcap.write(folder / f"{run.name}.pcap.gz", linktype, kept, HEADER_SNAPLEN)
    record["flows_left_out"] = len(drop)
    (folder / f"{run.name}.json").write_text(json.dumps(record, indent=2) + "\n")


def build(runs: list[Path], out: Path, eval_runs: list[Path], demo_from: str | None = None) -> dict[str, Any]:
    """Write the dataset folder: flows of ``runs``, held-out ``eval_runs`` captures (module docstring)."""
    summary: dict[str, Any] = {
        "runs": [r.name for r in runs],
        "eval_runs": [r.name for r in eval_runs],
        "profiles": {},
    }
    drops = {r.name: dropped_flows(r) for r in runs}
    drops |= {r.name: dropped_flows(r, EVAL_MAX_FLOWS_PER_SCENARIO) for r in eval_runs}
    for profile in PROFILES:
        df = _combine(runs, profile, drops)
        path = flows_file(out, profile)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})
        summary["profiles"][profile] = {
            "rows": len(df),
            "by_label": {str(k): int(v) for k, v in df[LABEL_COLUMN].value_counts().sort_index().items()},
            "by_scenario": {
                str(k): int(v) for k, v in df[SCENARIO_COLUMN].value_counts().sort_index().items()
            },
            "bytes": path.stat().st_size,
        }
        print(f"lab dataset: {path}: {len(df):,} flows, {path.stat().st_size / 1e6:.2f} MB")
    for run in runs:
        _store_run(run, out / "runs", False, drops[run.name])
    for run in eval_runs:
        _store_run(run, out / "eval", True, drops[run.name])
        size = (out / "eval" / f"{run.name}.pcap.gz").stat().st_size
        print(f"lab dataset: held-out capture {run.name}: {size / 1e6:.2f} MB")
    if demo_from:
        size = write_demo(Path(demo_from), out / "demo.pcap")
        summary["demo_bytes"] = size
        print(f"lab dataset: {out / 'demo.pcap'}: {size / 1e6:.2f} MB")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
