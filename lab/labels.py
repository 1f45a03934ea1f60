"""Meter a run's capture with ``capture/flowmeter`` and label every flow from the run's manifest.

A flow belongs to a scenario when one of its ends is a scenario's label address (and port, if the
scenario names one) and it started inside the scenario's time window; a flow between the victim and a
benign client is ``BENIGN``; anything else (e.g. an attacker's late retransmission after its window)
is left unlabelled and dropped, and counted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.meter_csv import read_meter_csv
from flows.schema import FLOW_COLUMNS, LABEL_COLUMN

PROJECT_ROOT = Path(__file__).resolve().parent.parent
METER = PROJECT_ROOT / "capture" / "flowmeter"
SCENARIO_COLUMN = "Scenario"
TOOL_COLUMN = "Tool"
#: the lab dataset's columns: the canonical flow, its label, and where it came from
LAB_COLUMNS = (*FLOW_COLUMNS, LABEL_COLUMN, SCENARIO_COLUMN, TOOL_COLUMN)
BENIGN = "BENIGN"
WINDOW_BEFORE, WINDOW_AFTER = 0.5, 2.0  # seconds of slack around a scenario's window
PROFILES = ("clean", "engelen")


def shared_data_dir() -> Path:
    """The shared data folder beside the project: ``$NETSENTRY_SHARED_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("NETSENTRY_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


class MeterError(RuntimeError):
    """The flow meter is missing or failed."""


def meter(pcap: Path, profile: str, out_csv: Path, accept: tuple[int, ...] = (0,)) -> int:
    """Run the flow meter on a capture in ``profile``; return its exit status (one of ``accept``).

    Status 3 (the capture ends early: everything before the damage metered) is a failure unless
    ``accept`` allows it."""
    if not METER.exists():
        raise MeterError(f"flow meter not built ({METER}): run `make meter`")
    proc = subprocess.run(
        [str(METER), "-q", "-r", str(pcap), "--profile", profile, "-o", str(out_csv)],
        capture_output=True,
        text=True,
    )
    if proc.returncode not in accept:
        raise MeterError(f"flowmeter failed on {pcap}: {proc.stderr.strip()}")
    return proc.returncode


def flow_start_epoch(timestamps: pd.Series) -> np.ndarray:
    """The meter's ``Timestamp`` (UTC, ``YYYY-mm-dd HH:MM:SS.ffffff``) as seconds since the epoch."""
    ts = pd.to_datetime(timestamps.astype(str), format="%Y-%m-%d %H:%M:%S.%f", utc=True)
    return (ts - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()


def label_flows(
    flows: pd.DataFrame, manifest: dict[str, Any], columns: list[str] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Add ``Label``, ``Scenario`` and ``Tool`` to flows (meter rows, or verdict rows with ``columns`` their
    columns); drop and count the unattributable ones."""
    src = flows["Source IP"].astype(str).to_numpy()
    dst = flows["Destination IP"].astype(str).to_numpy()
    sport = flows["Source Port"].astype("Int64").fillna(-1).to_numpy()
    dport = flows["Destination Port"].astype("Int64").fillna(-1).to_numpy()
    start = flow_start_epoch(flows["Timestamp"])
    label = np.full(len(flows), "", dtype=object)
    scenario = np.full(len(flows), "", dtype=object)
    tool = np.full(len(flows), "", dtype=object)
    for s in manifest["scenarios"]:
        addrs = list(s["label_addresses"])
        hit = np.isin(src, addrs) | np.isin(dst, addrs)
        if s.get("label_port") is not None:
            hit &= (sport == s["label_port"]) | (dport == s["label_port"])
        hit &= (start >= s["start"] - WINDOW_BEFORE) & (start <= s["end"] + WINDOW_AFTER)
        hit &= label == ""
        label[hit], scenario[hit], tool[hit] = s["group"], s["name"], s["tool"]
    clients = list(manifest["benign_clients"].values())
    victim = manifest["victim"]
    benign = (label == "") & (
        (np.isin(src, clients) & (dst == victim)) | (np.isin(dst, clients) & (src == victim))
    )
    label[benign], scenario[benign], tool[benign] = BENIGN, "benign", "benign"
    keep = np.asarray(label != "", dtype=bool)
    out = flows.loc[keep].copy()
    out[LABEL_COLUMN], out[SCENARIO_COLUMN], out[TOOL_COLUMN] = label[keep], scenario[keep], tool[keep]
    report = {
        "flows": int(len(flows)),
        "labelled": int(keep.sum()),
        "dropped": int((~keep).sum()),
        "by_scenario": {str(k): int(v) for k, v in out[SCENARIO_COLUMN].value_counts().sort_index().items()},
        "by_label": {str(k): int(v) for k, v in out[LABEL_COLUMN].value_counts().sort_index().items()},
    }
    wanted = list(LAB_COLUMNS) if columns is None else [*columns, LABEL_COLUMN, SCENARIO_COLUMN, TOOL_COLUMN]
    return out[wanted], report


def label_capture(
    pcap: Path, manifest: dict[str, Any], profile: str, work: Path
) -> tuple[pd.DataFrame, dict]:
    """Meter ``pcap`` in ``profile`` and label its flows from ``manifest``."""
    csv = work / f"flows-{profile}.csv"
    meter(pcap, profile, csv)
    return label_flows(read_meter_csv(csv), manifest)
