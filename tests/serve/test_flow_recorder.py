"""The recorded-flows folder: hourly partitions, the size bound (oldest first, counted), bad paths."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.recorded import (
    RecordedFlowsError,
    part_files,
    part_profile,
    part_rows,
    partitions,
    read_recorded,
)
from flows.schema import FLOW_COLUMNS
from serve.flow_recorder import FlowRecorder, RecorderError
from tests.serve.registered_model import meter, sqlite_store
from tests.serve.sensor_run import Store, netsentry, read_verdicts


@pytest.fixture(scope="module")
def rows(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Real meter rows (clean profile) of an ordinary capture."""
    return meter(pcaps / "protocols" / "skype.pcap", tmp_path_factory.mktemp("m") / "f.csv")


def judged(flows: pd.DataFrame, hour: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``flows`` moved into ``hour`` of 2026-12-03 (a second apart), and a verdict for each."""
    flows = flows.copy()
    flows["Timestamp"] = [f"2026-12-03 {hour:02d}:00:{i % 60:02d}.000001" for i in range(len(flows))]
    verdicts = pd.DataFrame(
        {
            "predicted": np.where(np.arange(len(flows)) % 3 == 0, "DoS", "BENIGN"),
            "probability": np.linspace(0.5, 1, len(flows)),
            "model_name": "netsentry",
            "model_version": "7",
        }
    )
    return flows, verdicts


def test_flows_go_to_the_hour_they_started_with_their_verdicts(tmp_path: Path, rows: pd.DataFrame) -> None:
    rec = FlowRecorder(tmp_path / "rec", max_bytes=2**30, profile="clean", flush_rows=10**9)
    a, va = judged(rows.head(40), 8)
    b, vb = judged(rows.iloc[40:100], 9)
    rec.observe(a, va)
    rec.observe(b, vb)
    assert part_files(tmp_path / "rec") == []  # buffered until flush_rows or close
    rec.close()
    files = part_files(tmp_path / "rec")
    assert [f.parent.relative_to(tmp_path / "rec").as_posix() for f in files] == [
        "date=2026-12-03/hour=08",
        "date=2026-12-03/hour=09",
    ]
    assert [part_rows(f) for f in files] == [40, 60]
    assert {part_profile(f) for f in files} == {"clean"}
    back = read_recorded(tmp_path / "rec")
    assert list(back.columns[: len(FLOW_COLUMNS)]) == list(FLOW_COLUMNS)
    assert back["Flow ID"].tolist() == a["Flow ID"].tolist() + b["Flow ID"].tolist()
    assert back["predicted"].tolist() == va["predicted"].tolist() + vb["predicted"].tolist()
    assert back["Total Fwd Packets"].sum() == rows.head(100)["Total Fwd Packets"].sum()
    assert str(back["Source Port"].dtype) == "Int64"
    assert rec.stats()["rows_written"] == 100 and rec.stats()["rows_dropped"] == 0


def test_the_folder_stays_under_its_bound_oldest_dropped_first_and_counted(
    tmp_path: Path, rows: pd.DataFrame
) -> None:
    folder = tmp_path / "rec"
    probe = FlowRecorder(folder / "probe", max_bytes=2**30, profile="clean", flush_rows=1)
    probe.observe(*judged(rows.head(50), 0))
    one_file = probe.stored_bytes
    rec = FlowRecorder(folder / "bounded", max_bytes=int(one_file * 3.5), profile="clean", flush_rows=50)
    for hour in range(10):
        rec.observe(*judged(rows.head(50), hour))
    rec.close()
    files = part_files(folder / "bounded")
    assert 2 <= len(files) <= 4
    assert sum(f.stat().st_size for f in files) <= rec.max_bytes
    assert [f.parent.name for f in files] == [f"hour={h:02d}" for h in range(10 - len(files), 10)]
    s = rec.stats()
    assert s["rows_written"] == 500
    assert s["rows_dropped"] == 50 * (10 - len(files))
    assert len(read_recorded(folder / "bounded")) == s["rows_written"] - s["rows_dropped"]


def test_an_earlier_runs_files_count_toward_the_bound(tmp_path: Path, rows: pd.DataFrame) -> None:
    first = FlowRecorder(tmp_path, max_bytes=2**30, profile="clean", flush_rows=1)
    first.observe(*judged(rows.head(50), 1))
    size = first.stored_bytes
    second = FlowRecorder(tmp_path, max_bytes=int(size * 1.5), profile="clean", flush_rows=1)
    assert second.stored_bytes == size
    second.observe(*judged(rows.head(50), 2))
    assert [f.parent.name for f in part_files(tmp_path)] == ["hour=02"]
    assert second.stats()["rows_dropped"] == 50


def test_recorded_files_are_private(tmp_path: Path, rows: pd.DataFrame) -> None:
    rec = FlowRecorder(tmp_path / "rec", max_bytes=2**30, profile="clean", flush_rows=1)
    rec.observe(*judged(rows.head(5), 3))
    (f,) = part_files(tmp_path / "rec")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "rec").stat().st_mode) == 0o700


def test_bad_paths_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecorderError, match="not a folder"):
        FlowRecorder(tmp_path / "file", max_bytes=2**20, profile="clean")
    with pytest.raises(RecorderError, match="cannot record flows in .*under"):
        FlowRecorder(tmp_path / "file" / "under", max_bytes=2**20, profile="clean")
    with pytest.raises(RecorderError, match="positive"):
        FlowRecorder(tmp_path / "ok", max_bytes=0, profile="clean")
    with pytest.raises(RecordedFlowsError, match="no such folder"):
        read_recorded(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordedFlowsError, match="no recorded flows"):
        read_recorded(tmp_path / "empty")


def test_a_failed_write_is_counted_and_the_sensor_goes_on(tmp_path: Path, rows: pd.DataFrame) -> None:
    rec = FlowRecorder(tmp_path / "rec", max_bytes=2**30, profile="clean", flush_rows=1)
    (tmp_path / "rec" / "date=2026-12-03").write_text("in the way")  # the partition folder cannot be made
    rec.observe(*judged(rows.head(7), 4))
    odd, verdicts = judged(rows.head(7), 5)
    rec.observe(odd.assign(Timestamp="garbage"), verdicts)  # no readable start time: its own partition
    s = rec.stats()
    assert s["rows_unwritten"] == 7 and s["rows_written"] == 7
    assert [f.parent.parent.name for f in part_files(tmp_path / "rec")] == ["date=unknown"]


def test_partitions_of_odd_timestamps() -> None:
    got = partitions(pd.Series(["2026-01-02 03:04:05.000006", "", None, "2026-01-02T23:59:59", "junk"]))
    unknown = "date=unknown/hour=unknown"
    assert got.tolist() == ["date=2026-01-02/hour=03", unknown, unknown, "date=2026-01-02/hour=23", unknown]


@pytest.fixture(scope="module")
def store(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    return sqlite_store(pcaps, tmp_path_factory.mktemp("store"))


def test_classify_records_every_judged_flow(store: Store, pcaps: Path, tmp_path: Path) -> None:
    capture = pcaps / "protocols" / "wechat.pcap"
    run = netsentry(store, tmp_path, "classify", str(capture), "-o", "v.csv", "--record-flows", "rec")
    assert run.returncode == 0, run.stderr
    verdicts = read_verdicts(tmp_path / "v.csv")
    back = read_recorded(tmp_path / "rec")
    assert len(back) == len(verdicts) > 100

    def pairs(df: pd.DataFrame) -> list[tuple[str, ...]]:  # files go by hour: compare as sets of rows
        return sorted(map(tuple, df[["Flow ID", "Timestamp", "predicted"]].astype(str).to_numpy().tolist()))

    assert pairs(back) == pairs(verdicts)
    assert len(part_files(tmp_path / "rec")) > 1  # the capture spans several hours
    assert {part_profile(f) for f in part_files(tmp_path / "rec")} == {"clean"}
    assert f"recorded  {len(verdicts)} flows in rec" in run.stdout


def test_a_bad_recording_folder_is_one_line_before_any_model_work(
    store: Store, pcaps: Path, tmp_path: Path
) -> None:
    (tmp_path / "taken").write_text("a file")
    run = netsentry(
        store, tmp_path, "classify", str(pcaps / "protocols" / "wechat.pcap"), "--record-flows", "taken"
    )
    assert run.returncode == 1
    assert run.stderr.strip() == "netsentry classify: cannot record flows in taken: it is not a folder"
    bad = netsentry(
        store, tmp_path, "classify", str(pcaps / "protocols" / "wechat.pcap"), "serve.record.max_mb=0"
    )
    assert bad.returncode == 2 and "serve.record.max_mb" in bad.stderr
