"""Read the flow meter's CSV (``capture/flowmeter``) with the schema's types.

The meter writes the canonical header (:data:`flows.schema.FLOW_COLUMNS`) and one row per
finished flow.  Integer columns are read as ``int64``, statistics as ``float64`` (the cic2017
profile writes ``Infinity``/``NaN`` rates, which Arrow parses), identifiers as strings.  Both a
whole file and a block of complete rows from a live stream are read by the same Arrow reader,
so the pipeline, the sensor and the lab see identical values and dtypes.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flows.schema import COLUMN_KINDS, FLOW_COLUMNS

_ARROW_TYPES: dict[str, pa.DataType] = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}


class MeterCsvError(ValueError):
    """The input is not a flow CSV in the canonical schema (wrong header, bad value)."""


def arrow_schema(columns: tuple[str, ...] | list[str] = FLOW_COLUMNS) -> pa.Schema:
    """The Arrow schema of meter rows: each canonical column with its kind's type."""
    return pa.schema([(c, _ARROW_TYPES[COLUMN_KINDS[c]]) for c in columns])


def _convert_options(columns: list[str]) -> pacsv.ConvertOptions:
    types = {c: _ARROW_TYPES[COLUMN_KINDS[c]] for c in columns if c in COLUMN_KINDS}
    return pacsv.ConvertOptions(
        column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
    )


def check_header(columns: list[str]) -> None:
    """Raise :class:`MeterCsvError` unless ``columns`` are exactly the canonical flow columns."""
    if list(columns) == list(FLOW_COLUMNS):
        return
    missing = [c for c in FLOW_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in FLOW_COLUMNS]
    if not missing and not extra:
        raise MeterCsvError("the columns are the canonical ones but in another order")
    detail = []
    if missing:
        detail.append(f"{len(missing)} canonical column(s) missing (first: {missing[:3]})")
    if extra:
        detail.append(f"{len(extra)} unknown column(s) (first: {extra[:3]})")
    raise MeterCsvError("not a flow CSV in the canonical schema: " + "; ".join(detail))


def read_header(path: str | Path) -> list[str]:
    """The column names on the first line of a CSV file."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
    return first.split(",") if first else []


def read_meter_csv(path: str | Path) -> pd.DataFrame:
    """Read a whole meter CSV (canonical header) into a typed DataFrame.

    Raises :class:`MeterCsvError` for another layout or a value that does not fit its column.
    """
    header = read_header(path)
    check_header(header)
    try:
        table = pacsv.read_csv(path, convert_options=_convert_options(header))
    except pa.ArrowInvalid as exc:
        raise MeterCsvError(f"{path}: {str(exc).splitlines()[0]}") from exc
    return table.to_pandas()


def parse_rows(block: bytes, columns: list[str] | tuple[str, ...] = FLOW_COLUMNS) -> pd.DataFrame:
    """Parse a block of complete CSV rows (no header) from the meter's stream.

    ``block`` must end at a row boundary; an empty block gives an empty typed frame.
    """
    columns = list(columns)
    if not block:
        return arrow_schema(columns).empty_table().to_pandas()
    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=columns),
            convert_options=_convert_options(columns),
        )
    except pa.ArrowInvalid as exc:
        raise MeterCsvError(f"bad meter row: {str(exc).splitlines()[0]}") from exc
    return table.to_pandas()
