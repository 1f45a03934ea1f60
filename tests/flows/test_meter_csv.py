"""The meter's CSV is read with the schema's types, and other layouts are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flows.meter_csv import MeterCsvError, check_header, parse_rows, read_meter_csv
from flows.schema import COLUMN_KINDS, FLOW_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
METER = ROOT / "capture" / "flowmeter"


def _row(**values: object) -> str:
    cells = []
    for c in FLOW_COLUMNS:
        kind = COLUMN_KINDS[c]
        default = {"str": "x", "int": "7", "float": "1.5"}[kind]
        cells.append(str(values.get(c, default)))
    return ",".join(cells)


def test_stream_block_is_typed_by_schema() -> None:
    block = (_row(**{"Flow Bytes/s": "Infinity", "Source IP": "10.0.0.1"}) + "\n" + _row() + "\n").encode()
    df = parse_rows(block)
    assert list(df.columns) == list(FLOW_COLUMNS)
    assert len(df) == 2
    assert str(df["Total Fwd Packets"].dtype) == "int64"
    assert str(df["Flow IAT Mean"].dtype) == "float64"
    assert df["Flow Bytes/s"].iloc[0] == float("inf")
    assert df["Source IP"].iloc[0] == "10.0.0.1"


def test_empty_block_gives_typed_empty_frame() -> None:
    df = parse_rows(b"")
    assert len(df) == 0 and str(df["Protocol"].dtype) == "int64"


def test_bad_value_is_a_meter_csv_error() -> None:
    with pytest.raises(MeterCsvError, match="bad meter row"):
        parse_rows((_row(**{"Protocol": "tcp"}) + "\n").encode())


def test_other_layout_is_refused_with_reason() -> None:
    with pytest.raises(MeterCsvError, match="missing"):
        check_header([" Destination Port", " Flow Duration", "Label"])
    with pytest.raises(MeterCsvError, match="another order"):
        check_header(list(reversed(FLOW_COLUMNS)))


def test_real_meter_output_reads_typed(tmp_path: Path, pcaps: Path) -> None:
    if not METER.exists():
        pytest.skip("capture/flowmeter not built (make -C capture)")
    out = tmp_path / "flows.csv"
    pcap = pcaps / "cicids2017" / "WebattackSQLinj.pcap"
    subprocess.run([str(METER), "-r", str(pcap), "-o", str(out), "-q", "--profile", "engelen"], check=True)
    df = read_meter_csv(out)
    assert len(df) == 9  # the nine published SQL-injection flows
    assert str(df["Destination Port"].dtype) == "int64"
    assert set(df["Destination Port"]) == {80}
    assert str(df["Flow Bytes/s"].dtype) == "float64"
