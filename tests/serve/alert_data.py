"""Verdict frames and alerts configs for the alert tests (real config file, real frames)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from serve.verdict import VERDICT_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
ALERTS_CONFIG = ROOT / "conf" / "serve" / "alerts" / "default.yaml"

#: A verdict row with sensible values; tests override what they check.
BASE_ROW: dict[str, Any] = {
    "Flow ID": "10.0.0.66-10.0.0.2-40000-80-6",
    "Source IP": "10.0.0.66",
    "Source Port": 40000,
    "Destination IP": "10.0.0.2",
    "Destination Port": 80,
    "Protocol": 6,
    "Timestamp": "2017-07-06 13:40:07.419016",
    "Flow Duration": 1_500_000,
    "Total Fwd Packets": 5,
    "Total Backward Packets": 4,
    "Total Length of Fwd Packets": 320,
    "Total Length of Bwd Packets": 1200,
    "predicted": "DoS",
    "probability": 0.93,
    "model_name": "netsentry",
    "model_version": "3",
}


def verdict_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """A verdict frame (VERDICT_COLUMNS, meter dtypes) of BASE_ROW updated by each of ``rows``."""
    frame = pd.DataFrame([{**BASE_ROW, **row} for row in rows], columns=list(VERDICT_COLUMNS))
    return frame.astype({"probability": "float64", "Flow Duration": "int64", "Protocol": "int64"})


def alerts_config(tmp_path: Path, **sinks: dict[str, Any]) -> dict[str, Any]:
    """The committed alerts config, EVE written under ``tmp_path``, other sinks as given.

    Each keyword is a sink name whose options are merged over the file's (enabled: true implied);
    ``eve=None`` disables the EVE sink.  Retries are quick so that failure tests stay short.
    """
    cfg = copy.deepcopy(yaml.safe_load(ALERTS_CONFIG.read_text()))
    cfg["sinks"]["eve"]["path"] = str(tmp_path / "eve.json")
    cfg["retry"] = {"attempts": 3, "backoff_s": 0.05, "max_backoff_s": 0.2}
    for name, options in sinks.items():
        if options is None:
            cfg["sinks"][name]["enabled"] = False
            continue
        cfg["sinks"].setdefault(name, {}).update({"enabled": True, **options})
    return cfg
