"""The meter's CSV is read with the schema's types, and other layouts are refused."""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path

import pytest

from flows.meter_csv import (
    MAX_HEADER_BYTES,
    MAX_LINE_BYTES,
    MeterCsvError,
    check_header,
    is_flow_csv,
    parse_rows,
    read_header,
    read_meter_csv,
)
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


def _flow_csv(path: Path, rows: int = 3) -> Path:
    rows_text = "".join(_row(**{"Flow ID": f"f{i}"}) + "\n" for i in range(rows))
    path.write_text(",".join(FLOW_COLUMNS) + "\n" + rows_text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(MeterCsvError) as err:
        check_header(read_header(path))
        read_meter_csv(path)
    return str(err.value)


def test_a_first_line_that_never_ends_is_refused_at_once(tmp_path: Path) -> None:
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    started = time.monotonic()
    message = _error(zero)
    assert time.monotonic() - started < 2
    assert message == f"{zero}: the first line is longer than {MAX_HEADER_BYTES} bytes: not a flow CSV"


def test_a_huge_header_line_is_refused_at_once(tmp_path: Path) -> None:
    commas = tmp_path / "commas.csv"
    commas.write_bytes(b"," * 10_000_000 + b"\n")
    started = time.monotonic()
    message = _error(commas)
    assert time.monotonic() - started < 2
    assert message == f"{commas}: the first line is longer than {MAX_HEADER_BYTES} bytes: not a flow CSV"


def test_a_huge_row_is_refused_naming_the_file_and_the_limit(tmp_path: Path) -> None:
    path = _flow_csv(tmp_path / "long.csv")
    with path.open("a") as fh:
        fh.write("x" * (3 * MAX_LINE_BYTES) + "\n")
    with pytest.raises(MeterCsvError) as err:
        read_meter_csv(path)
    assert str(err.value) == f"{path}: a line is longer than {MAX_LINE_BYTES} bytes: not a flow CSV row"


def test_a_utf8_bom_before_the_header_is_accepted(tmp_path: Path) -> None:
    plain = _flow_csv(tmp_path / "plain.csv")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert read_header(bom) == list(FLOW_COLUMNS)
    assert read_meter_csv(bom).equals(read_meter_csv(plain))


@pytest.mark.parametrize("name", ["flows.csv.gz", "gzip-inside.csv"])
def test_a_gzipped_flow_csv_reads_like_the_plain_one(tmp_path: Path, name: str) -> None:
    plain = _flow_csv(tmp_path / "plain.csv", rows=50)
    packed = tmp_path / name
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert is_flow_csv(packed) == name.endswith((".csv", ".csv.gz"))
    assert read_header(packed) == list(FLOW_COLUMNS)
    assert read_meter_csv(packed).equals(read_meter_csv(plain))


def test_a_gzipped_file_of_another_layout_shows_its_columns_not_its_bytes(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_bytes(gzip.compress(b"Src,Dst,Label\n1.2.3.4,5.6.7.8,BENIGN\n" * 100))
    message = _error(other)
    assert message.startswith("not a flow CSV in the canonical schema")
    assert "(first: ['Src', 'Dst', 'Label'])" in message


def test_a_damaged_gzip_file_is_one_line_saying_gzip(tmp_path: Path) -> None:
    cut = tmp_path / "cut.csv.gz"
    packed = gzip.compress(_flow_csv(tmp_path / "plain.csv", rows=500).read_bytes())
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(MeterCsvError) as err:
        read_meter_csv(cut)
    assert str(err.value).startswith(f"{cut}: damaged gzip file") and "\n" not in str(err.value)


def test_binary_that_is_not_gzip_is_not_printed(tmp_path: Path) -> None:
    blob = tmp_path / "blob.csv"
    blob.write_bytes(bytes(range(256)) * 40)
    assert _error(blob) == f"{blob}: binary data in the first line: not a flow CSV"
