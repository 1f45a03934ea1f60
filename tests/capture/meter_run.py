"""Run ``capture/flowmeter`` on a capture and read its CSV and statistics back (test helper)."""

from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flows.schema import COLUMN_KINDS, FLOW_COLUMNS


@dataclass
class MeterRun:
    """What one meter run produced."""

    returncode: int
    stderr: str
    header: list[str]
    rows: list[dict[str, object]]
    stats: dict[str, object]


def _typed(column: str, text: str) -> object:
    """Convert one CSV cell to the schema kind of its column (float for anything numeric-float)."""
    kind = COLUMN_KINDS.get(column, "str")
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text


def run_meter(binary: Path, capture: Path, out_dir: Path, *args: str, env: dict | None = None,
              timeout: float = 120) -> MeterRun:
    """Run the meter with ``-r capture -o CSV --stats-json JSON -q`` plus ``args``."""
    out_csv, out_json = out_dir / "flows.csv", out_dir / "stats.json"
    out_csv.unlink(missing_ok=True)
    out_json.unlink(missing_ok=True)
    proc = subprocess.run([str(binary), "-r", str(capture), "-o", str(out_csv), "--stats-json",
                           str(out_json), "-q", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    header: list[str] = []
    rows: list[dict[str, object]] = []
    if out_csv.is_file():
        with out_csv.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            rows = [{c: _typed(c, v) for c, v in zip(header, line, strict=True)} for line in reader]
    stats = json.loads(out_json.read_text()) if out_json.is_file() else {}
    return MeterRun(proc.returncode, proc.stderr, header, rows, stats)


def flow_key(row: dict[str, object]) -> tuple:
    """Identity of a flow across meters: 5-tuple in the flow's direction + start time."""
    return (row["Source IP"], row["Source Port"], row["Destination IP"], row["Destination Port"],
            row["Protocol"], row["Timestamp"])


__all__ = ["FLOW_COLUMNS", "MeterRun", "flow_key", "run_meter"]
