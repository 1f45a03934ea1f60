"""Read the flow meter's CSV (``capture/flowmeter``) with the schema's types.

The meter writes the canonical header (:data:`flows.schema.FLOW_COLUMNS`) and one row per
finished flow.  Integer columns are read as ``int64``, statistics as ``float64`` (the cic2017
profile writes ``Infinity``/``NaN`` rates, which Arrow parses), identifiers as strings.  Both a
whole file and a block of complete rows from a live stream are read by the same Arrow reader,
so the pipeline, the sensor and the lab see identical values and dtypes.

A file may start with a UTF-8 byte order mark and may be gzip-compressed (found by its magic
bytes, whatever its name).  Its lines are bounded: a first line longer than
:data:`MAX_HEADER_BYTES` (a link to ``/dev/zero``, say) or a row longer than
:data:`MAX_LINE_BYTES` is refused with one line naming the file and the limit, at once.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flows.schema import COLUMN_KINDS, FLOW_COLUMNS

_ARROW_TYPES: dict[str, pa.DataType] = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}

#: The longest first line read as a header (the canonical one is about 1.4 kB).
MAX_HEADER_BYTES = 64 * 1024
#: The longest row (a canonical row is a few hundred bytes); Arrow's block size, which bounds a row.
MAX_LINE_BYTES = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = "\ufeff"


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


def is_flow_csv(path: str | Path) -> bool:
    """Whether ``path`` is named as a flow CSV: ``.csv`` or ``.csv.gz`` (any case)."""
    return str(path).lower().endswith((".csv", ".csv.gz"))


def _is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _damaged_gzip(path: str | Path, exc: Exception) -> MeterCsvError:
    return MeterCsvError(f"{path}: damaged gzip file ({str(exc).splitlines()[0] or type(exc).__name__})")


def read_header(path: str | Path) -> list[str]:
    """The column names on the first line of a CSV file (gzip-compressed or not, BOM dropped).

    Raises :class:`MeterCsvError` when that line is longer than :data:`MAX_HEADER_BYTES` or holds
    binary data, so neither a never-ending line nor garbage is read or echoed whole.
    """
    packed = _is_gzip(path)
    opener = gzip.open if packed else open
    try:
        with opener(path, "rb") as fh:
            first = fh.readline(MAX_HEADER_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        if packed:
            raise _damaged_gzip(path, exc) from None
        raise
    if len(first) > MAX_HEADER_BYTES:
        raise MeterCsvError(f"{path}: the first line is longer than {MAX_HEADER_BYTES} bytes: not a flow CSV")
    text = first.decode("utf-8", "replace").rstrip("\r\n").removeprefix(_BOM)
    if "\ufffd" in text or not text.isprintable():
        raise MeterCsvError(f"{path}: binary data in the first line: not a flow CSV")
    return text.split(",") if text else []


def read_meter_csv(path: str | Path) -> pd.DataFrame:
    """Read a whole meter CSV (canonical header; gzip or not) into a typed DataFrame.

    Raises :class:`MeterCsvError` for another layout, a value that does not fit its column, a row
    longer than :data:`MAX_LINE_BYTES` or a damaged gzip stream.
    """
    header = read_header(path)
    check_header(header)
    packed = _is_gzip(path)
    try:
        with pa.input_stream(str(path), compression="gzip" if packed else None) as stream:
            table = pacsv.read_csv(stream, read_options=pacsv.ReadOptions(block_size=MAX_LINE_BYTES),
                                   convert_options=_convert_options(header))
    except pa.ArrowInvalid as exc:
        reason = str(exc).splitlines()[0]
        if "straddles" in reason:  # a row that does not fit in one block
            raise MeterCsvError(
                f"{path}: a line is longer than {MAX_LINE_BYTES} bytes: not a flow CSV row") from None
        if packed and ("gzip" in reason.lower() or "zlib" in reason.lower()):
            raise _damaged_gzip(path, exc) from None
        raise MeterCsvError(f"{path}: {reason}") from exc
    except OSError as exc:
        if packed:
            raise _damaged_gzip(path, exc) from None
        raise
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
