"""All three CICIDS2017 layouts map onto the canonical schema; bad files get errors that say why."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.schema import FLOW_COLUMNS, IDENTIFIER_COLUMNS, LABEL_COLUMN, SOURCE_COLUMN
from pipeline.layouts import (
    ENGELEN_RENAME,
    LayoutError,
    list_input_files,
    read_flow_csv,
    read_flow_folder,
)

ML = "machinelearningcve-friday-ddos-head.csv"
TL = "trafficlabelling-friday-ddos-head.csv"


def raw_rows(path: Path, encoding: str = "utf-8") -> tuple[list[str], list[list[str]]]:
    """The file as the csv module sees it: raw header names and rows."""
    with path.open(newline="", encoding=encoding) as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_machinelearningcve_layout_maps_to_canonical_names(cicids_fixtures: Path) -> None:
    header, rows = raw_rows(cicids_fixtures / ML)
    assert len(header) == 79 and header[0] == " Destination Port"
    assert (cicids_fixtures / ML).read_bytes().count(b"\r\n") >= len(rows)  # CRLF in the original
    df, layout = read_flow_csv(cicids_fixtures / ML)
    assert layout.name == "machinelearningcve" and layout.flow_profile == "cic2017"
    expected = [c for c in FLOW_COLUMNS if c not in IDENTIFIER_COLUMNS or c == "Destination Port"]
    assert list(df.columns) == [*expected, LABEL_COLUMN, SOURCE_COLUMN]
    assert len(df) == len(rows) == 9998
    # the first of the two " Fwd Header Length" columns is the one kept
    first = header.index(" Fwd Header Length")
    assert header.count(" Fwd Header Length") == 2
    assert df["Fwd Header Length"].tolist() == [float(r[first]) for r in rows]
    for name in (" Flow Duration", "Flow Bytes/s", " Idle Min"):
        i = header.index(name)
        np.testing.assert_array_equal(df[name.strip()].to_numpy(), [float(r[i]) for r in rows])
    assert df["Flow Bytes/s"].isna().sum() == sum(r[header.index("Flow Bytes/s")] == "NaN" for r in rows) > 0
    assert df["Destination Port"].dtype == "Int64" and df["Destination Port"].iloc[0] == 54865
    assert set(df[LABEL_COLUMN]) == {"BENIGN"}


def test_trafficlabelling_layout_keeps_identifiers(cicids_fixtures: Path) -> None:
    header, rows = raw_rows(cicids_fixtures / TL)
    df, layout = read_flow_csv(cicids_fixtures / TL)
    assert layout.name == "trafficlabelling" and len(header) == 85
    assert list(df.columns) == [*FLOW_COLUMNS, LABEL_COLUMN, SOURCE_COLUMN]
    assert len(df) == len(rows) == 299
    assert df["Flow ID"].tolist() == [r[0] for r in rows]
    assert df["Source IP"].iloc[0] == "104.16.207.165" and df["Source Port"].iloc[0] == 443
    assert df["Timestamp"].iloc[0] == "7/7/2017 3:30"
    i = header.index(" Total Backward Packets")
    assert df["Total Backward Packets"].tolist() == [float(r[i]) for r in rows]


def test_engelen_layout_renames_and_ignores_its_extra_columns(engelen_sample: Path) -> None:
    path = engelen_sample / "Web_Attack_-_SQL_Injection_13.csv"
    header, rows = raw_rows(path)
    df, layout = read_flow_csv(path)
    assert layout.name == "engelen" and layout.flow_profile == "engelen" and len(header) == 91
    assert list(df.columns) == [*FLOW_COLUMNS, LABEL_COLUMN, SOURCE_COLUMN]
    assert len(df) == len(rows) == 13
    for source, canonical in ENGELEN_RENAME.items():
        i = header.index(source)
        want = [r[i] for r in rows]
        got = df[canonical].tolist()
        assert [str(g) for g in got] == want or [float(g) for g in got] == [float(w) for w in want], canonical
    assert set(df[LABEL_COLUMN]) == {"Web Attack - SQL Injection"}
    assert not {"id", "ICMP Type", "Attempted Category", "Fwd RST Flags"} & set(df.columns)


def _write_original_style(path: Path, header: str, rows: list[str]) -> None:
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("cp1252"))


def test_original_quirks_infinity_nan_en_dash_blank_rows(cicids_fixtures: Path, tmp_path: Path) -> None:
    header_line = (cicids_fixtures / ML).read_bytes().split(b"\r\n", 1)[0].decode()
    header = [h.strip() for h in header_line.split(",")]
    _, rows = raw_rows(cicids_fixtures / ML)
    bytes_i, pkts_i, label_i = header.index("Flow Bytes/s"), header.index("Flow Packets/s"), len(header) - 1
    r1, r2 = list(rows[0]), list(rows[1])
    r1[bytes_i], r1[pkts_i], r1[label_i] = "Infinity", "Infinity", "Web Attack \u2013 XSS"
    r2[bytes_i], r2[pkts_i] = "NaN", "-Infinity"
    all_empty = "," * (len(header) - 1)
    path = tmp_path / "Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX.csv"
    _write_original_style(path, header_line, [",".join(r1), ",".join(r2), "", all_empty])
    df, _ = read_flow_csv(path)
    assert len(df) == 3  # the blank line is no row; the all-empty row is kept for cleaning to count
    assert df["Flow Bytes/s"].iloc[0] == np.inf and np.isnan(df["Flow Bytes/s"].iloc[1])
    assert df["Flow Packets/s"].iloc[1] == -np.inf
    assert df[LABEL_COLUMN].iloc[0] == "Web Attack - XSS"  # cp1252 0x96 decoded and normalised
    assert pd.isna(df[LABEL_COLUMN].iloc[2]) and df["Flow Duration"].isna().iloc[2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"a,b,c\n1,2,3\n", "not a CICIDS2017 flow CSV: 3 columns"),
        (None, "missing ['Flow Duration']"),
        ("bad value", "a row cannot be read"),
    ],
)
def test_bad_files_get_an_error_naming_file_and_problem(
    cicids_fixtures: Path, tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "bad.csv"
    header, rows = raw_rows(cicids_fixtures / ML)
    if content is None:  # a column renamed away
        header = [("Flow Time" if h == " Flow Duration" else h) for h in header]
        content = (",".join(header) + "\n" + ",".join(rows[0]) + "\n").encode()
    elif content == "bad value":
        row = list(rows[0])
        row[1] = "twelve"
        content = (",".join(header) + "\n" + ",".join(row) + "\n").encode()
    path.write_bytes(content)
    with pytest.raises(LayoutError) as err:
        read_flow_csv(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_folder_may_mix_layouts(cicids_fixtures: Path, tmp_path: Path) -> None:
    for name in (ML, TL):
        shutil.copy(cicids_fixtures / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a csv, ignored")
    flows, files = read_flow_folder(tmp_path, progress=False)
    assert files == {
        ML: {"layout": "machinelearningcve", "flow_profile": "cic2017", "rows": 9998},
        TL: {"layout": "trafficlabelling", "flow_profile": "cic2017", "rows": 299},
    }
    assert len(flows) == 9998 + 299
    assert flows["Flow ID"].isna().sum() == 9998  # the MachineLearningCVE rows have no identifiers
    assert flows[SOURCE_COLUMN].value_counts().to_dict() == {ML: 9998, TL: 299}


def test_empty_or_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="holds no .csv or .csv.gz files"):
        read_flow_folder(tmp_path)
    with pytest.raises(LayoutError, match="does not exist"):
        read_flow_folder(tmp_path / "nope")


def _gzip_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(gzip.compress(src.read_bytes()))


def test_gzip_files_and_nested_day_folders_are_read_and_others_listed(
    cicids_fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(cicids_fixtures / TL, tmp_path / TL)
    _gzip_copy(cicids_fixtures / ML, tmp_path / "Friday" / "ml.CSV.GZ")
    _gzip_copy(cicids_fixtures / TL, tmp_path / "Friday" / "pm" / "tl.csv.gz")
    (tmp_path / "Friday" / "notes.txt").write_text("not flows")
    (tmp_path / "old.csv.bak").write_text("not flows either")
    flows, files = read_flow_folder(tmp_path, progress=True)
    assert files == {
        "Friday/ml.CSV.GZ": {"layout": "machinelearningcve", "flow_profile": "cic2017", "rows": 9998},
        "Friday/pm/tl.csv.gz": {"layout": "trafficlabelling", "flow_profile": "cic2017", "rows": 299},
        TL: {"layout": "trafficlabelling", "flow_profile": "cic2017", "rows": 299},
    }
    assert flows[SOURCE_COLUMN].value_counts().to_dict() == {
        "Friday/ml.CSV.GZ": 9998, "Friday/pm/tl.csv.gz": 299, TL: 299
    }
    plain = flows[flows[SOURCE_COLUMN] == TL].drop(columns=SOURCE_COLUMN).reset_index(drop=True)
    unzipped = flows[flows[SOURCE_COLUMN] == "Friday/pm/tl.csv.gz"].drop(columns=SOURCE_COLUMN)
    pd.testing.assert_frame_equal(plain, unzipped.reset_index(drop=True))
    err = capsys.readouterr().err
    assert err.count("  read [") == 3
    for name in files:
        assert f"{name}:" in err
    assert "ignored Friday/notes.txt" in err and "ignored old.csv.bak" in err
    assert list_input_files(tmp_path)[1] == [tmp_path / "Friday" / "notes.txt", tmp_path / "old.csv.bak"]


def test_a_corrupt_gzip_file_is_a_clear_error(cicids_fixtures: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress((cicids_fixtures / TL).read_bytes())[:3000])  # truncated
    with pytest.raises(LayoutError) as err:
        read_flow_csv(path)
    assert str(path) in str(err.value)
    path.write_bytes(b"plain text, not gzip")
    with pytest.raises(LayoutError, match="cannot read"):
        read_flow_csv(path)


def test_a_folder_of_only_other_files_names_them(tmp_path: Path) -> None:
    (tmp_path / "flows.parquet").write_bytes(b"PAR1")
    with pytest.raises(LayoutError, match=r"no \.csv or \.csv\.gz files \(it holds: flows\.parquet\)"):
        read_flow_folder(tmp_path)
