"""The recorded-flows folder: judged flows a sensor keeps as Parquet, partitioned by the hour they started.

The sensor writes it (``netsentry serve|classify --record-flows DIR``, :mod:`serve.flow_recorder`);
the pipeline reads it as a site's own benign traffic (``+experiment=site data.site_dir=DIR``). Both go
through this module, so the layout has one owner::

    DIR/date=2026-12-03/hour=08/part-<run>-<seq>.parquet

Hive-style partition names (``pyarrow.dataset`` and most engines read them as columns). Each file
holds every canonical flow column (:data:`flows.schema.FLOW_COLUMNS`) and the sensor's verdict
(:data:`RECORDED_VERDICT_COLUMNS`), and names in its footer the meter profile of its flows
(:data:`PROFILE_KEY`): one model serves one profile. Files sort oldest first by (date, hour, name);
a flow whose start time cannot be read goes to ``date=unknown/hour=unknown``, which sorts last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow.parquet as pq

from flows.schema import FLOW_COLUMNS, pandas_dtype

#: The verdict columns recorded beside the flow (names as in the sensor's verdict file).
RECORDED_VERDICT_COLUMNS: Final[tuple[str, ...]] = ("predicted", "probability", "model_name", "model_version")

#: Every column of a recorded file, in order.
RECORDED_COLUMNS: Final[tuple[str, ...]] = FLOW_COLUMNS + RECORDED_VERDICT_COLUMNS

#: Key of the Parquet footer metadata that names the meter profile the flows were metered in.
PROFILE_KEY: Final[bytes] = b"netsentry.flow_profile"

UNKNOWN_PARTITION: Final[str] = "date=unknown/hour=unknown"
PART_GLOB: Final[str] = "date=*/hour=*/part-*.parquet"


class RecordedFlowsError(ValueError):
    """The folder is not a recorded-flows folder (one line for the user)."""


def partitions(timestamps: pd.Series) -> pd.Series:
    """The partition (``date=YYYY-MM-DD/hour=HH``) of each meter ``Timestamp`` (``YYYY-MM-DD HH:MM:SS``)."""
    text = timestamps.astype("string").fillna("")
    ok = text.str.match(r"^\d{4}-\d\d-\d\d[ T]\d\d:")
    out = "date=" + text.str.slice(0, 10) + "/hour=" + text.str.slice(11, 13)
    return out.where(ok, UNKNOWN_PARTITION).astype(object)


def age_order(path: Path) -> tuple[bool, str, str, str]:
    """Sort key of a recorded file: oldest first, by (date, hour, name); unknown times last."""
    date, hour = path.parent.parent.name, path.parent.name
    return (date == "date=unknown", date, hour, path.name)


def part_files(folder: Path) -> list[Path]:
    """The recorded files under ``folder``, oldest first (other files are ignored)."""
    return sorted(folder.glob(PART_GLOB), key=age_order)


def part_rows(path: Path) -> int:
    """Rows in one recorded file (from its footer, without reading the data)."""
    return pq.read_metadata(path).num_rows


def part_profile(path: Path) -> str:
    """The meter profile a recorded file's flows were metered in (``""`` if it does not say)."""
    meta = pq.read_schema(path).metadata or {}
    return meta.get(PROFILE_KEY, b"").decode()


def read_recorded(folder: Path) -> pd.DataFrame:
    """Every recorded flow under ``folder`` with its verdict, flow columns typed as between stages."""
    if not folder.is_dir():
        raise RecordedFlowsError(f"{folder}: no such folder of recorded flows")
    files = part_files(folder)
    if not files:
        raise RecordedFlowsError(f"{folder}: no recorded flows ({PART_GLOB})")
    frames = []
    for f in files:
        try:
            table = pq.read_table(f, columns=list(RECORDED_COLUMNS))
        except (OSError, ValueError, KeyError) as err:
            raise RecordedFlowsError(f"{f}: not a recorded-flows file ({str(err).splitlines()[0]})") from err
        frames.append(table.to_pandas())
    rows = pd.concat(frames, ignore_index=True)
    return rows.astype({c: pandas_dtype(c) for c in FLOW_COLUMNS})
