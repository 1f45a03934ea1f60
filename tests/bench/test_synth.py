"""The full-size synthesiser (bench/pipeline/synth.py) on a small size: counts, layout, jitter."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from bench.pipeline import synth

ROWS = 30_000


@pytest.fixture(scope="module")
def sample(engelen_sample: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(f) for f in sorted(engelen_sample.glob("*.csv"))], ignore_index=True)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, engelen_sample: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "set"
    manifest = synth.synthesise(out, rows=ROWS, seed=7, sample_dir=engelen_sample, log=lambda *_: None)
    return out, manifest


@pytest.fixture(scope="module")
def flows(made: tuple[Path, dict]) -> pd.DataFrame:
    out, _ = made
    parts = [pd.read_csv(f).assign(_file=f.name) for f in sorted(out.glob("*.csv"))]
    return pd.concat(parts, ignore_index=True)


def test_full_size_counts_are_the_published_ones() -> None:
    assert synth.FULL_TOTAL == 2_830_743
    assert synth.class_counts(synth.FULL_TOTAL) == synth.FULL_COUNTS
    small = synth.class_counts(ROWS)
    assert sum(small.values()) == ROWS
    # 80.3% BENIGN, less the few rows lent to the classes raised to the floor of 10
    assert small["BENIGN"] / ROWS == pytest.approx(2_273_097 / synth.FULL_TOTAL, abs=0.002)
    assert small["BENIGN"] < round(2_273_097 * ROWS / synth.FULL_TOTAL)
    assert small["DoS Hulk"] == round(231_073 * ROWS / synth.FULL_TOTAL)
    assert small["Heartbleed"] == 10 and min(small.values()) == 10  # the floor, not 0.1 rows
    with pytest.raises(SystemExit, match="too small"):
        synth.class_counts(100)


def test_labels_map_to_the_sample_spellings(sample: pd.DataFrame) -> None:
    mapping = synth.match_labels(sorted(sample["Label"].unique()))
    assert mapping["Bot"] == "Botnet"
    assert mapping["PortScan"] == "Portscan"
    assert mapping["DoS slowloris"] == "DoS Slowloris"
    assert mapping["Web Attack \u2013 Sql Injection"] == "Web Attack - SQL Injection"
    with pytest.raises(SystemExit, match="Heartbleed"):
        synth.match_labels(["BENIGN", "DDoS"])


def test_same_layout_and_class_counts(
    made: tuple[Path, dict], flows: pd.DataFrame, sample: pd.DataFrame, engelen_sample: Path
) -> None:
    out, manifest = made
    sample_header = next(engelen_sample.glob("*.csv")).open().readline()
    files = sorted(out.glob("*.csv"))
    assert [f.open().readline() for f in files] == [sample_header] * len(files)
    assert len(files) == 7 and sum(manifest["files"].values()) == ROWS == len(flows)
    assert not synth.manifest_path(out).parent.samefile(out)  # the manifest stays out of the input folder
    assert list(flows.columns[:-1]) == list(sample.columns)
    assert flows.dtypes.iloc[:-1].to_dict() == sample.dtypes.to_dict()  # ints stay ints
    expected = {
        synth.match_labels(list(sample["Label"].unique()))[k]: v for k, v in synth.class_counts(ROWS).items()
    }
    assert flows["Label"].value_counts().to_dict() == expected == manifest["class_counts"]
    assert manifest["unused_sample_labels"] == ["Infiltration - Portscan"]


def test_identifiers_stay_plausible(flows: pd.DataFrame, sample: pd.DataFrame) -> None:
    assert flows["id"].is_unique
    assert flows["Src Port"].between(0, 65535).all() and flows["Dst Port"].between(0, 65535).all()
    forward = (
        flows["Src IP"]
        + "-"
        + flows["Dst IP"]
        + "-"
        + flows["Src Port"].astype(str)
        + "-"
        + flows["Dst Port"].astype(str)
        + "-"
        + flows["Protocol"].astype(str)
    )
    backward = (
        flows["Dst IP"]
        + "-"
        + flows["Src IP"]
        + "-"
        + flows["Dst Port"].astype(str)
        + "-"
        + flows["Src Port"].astype(str)
        + "-"
        + flows["Protocol"].astype(str)
    )
    assert ((flows["Flow ID"] == forward) | (flows["Flow ID"] == backward)).all()
    assert flows["Flow ID"].nunique() > 0.95 * len(flows)
    # addresses come from the class's own pool: every (label, src, dst) pair exists in the sample
    pairs = set(zip(sample["Label"], sample["Src IP"], sample["Dst IP"], strict=True))
    assert set(zip(flows["Label"], flows["Src IP"], flows["Dst IP"], strict=True)) <= pairs
    # timestamps stay inside each class's time range, and each file holds its own day
    ts, sts = pd.to_datetime(flows["Timestamp"]), pd.to_datetime(sample["Timestamp"])
    lo, hi = sts.groupby(sample["Label"]).min(), sts.groupby(sample["Label"]).max()
    assert (ts >= flows["Label"].map(lo)).all() and (ts <= flows["Label"].map(hi)).all()
    assert (flows["_file"].str.split("-").str[0] == ts.dt.day_name()).all()
    assert ts.dt.day_name().nunique() == 5


def test_jitter_keeps_values_valid(flows: pd.DataFrame, sample: pd.DataFrame) -> None:
    numeric = [c for c in sample.columns if pd.api.types.is_numeric_dtype(sample[c])]
    for col in numeric:
        if (sample[col] >= 0).all():
            assert (flows[col] >= 0).all(), col
    layout = synth.detect_layout(list(sample.columns))
    assert "Flow Duration" in layout.time and "Total Length of Fwd Packet" in layout.size
    assert "Flow Bytes/s" in layout.byte_rate and "Fwd Header Length" not in layout.size
    for col in layout.time + layout.size:
        assert flows[col].max() <= sample[col].max(), col  # e.g. no flow beyond the 120 s timeout
    for kind in ("Fwd Packet Length", "Flow IAT", "Fwd IAT", "Packet Length"):
        lo, mean, hi = flows[f"{kind} Min"], flows[f"{kind} Mean"], flows[f"{kind} Max"]
        assert (lo <= mean + 1e-9).all() and (mean <= hi + 1e-9).all(), kind
    assert (flows["Flow IAT Max"] <= flows["Flow Duration"]).all()
    # counts are copied, not jittered: every class keeps the sample's packet counts
    for col in ("Total Fwd Packet", "Total Bwd packets", "SYN Flag Count", "FWD Init Win Bytes"):
        seen = set(zip(sample["Label"], sample[col], strict=True))
        assert set(zip(flows["Label"], flows[col], strict=True)) <= seen, col
    # times are jittered: most durations are new values, and rates follow the jittered times
    long = flows[flows["Flow Duration"] > 10_000]
    assert long["Flow Duration"].isin(set(sample["Flow Duration"])).mean() < 0.1
    bytes_ = long["Total Length of Fwd Packet"] + long["Total Length of Bwd Packet"]
    ratio = (bytes_ / long["Flow Duration"] * 1e6 / long["Flow Bytes/s"])[bytes_ > 1000]
    assert ratio.median() == pytest.approx(1.0, abs=1e-3)


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        synth.main(["--rows", "0", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=re.escape(str(tmp_path / "nowhere"))):
        synth.main(["--rows", "1000", "--sample", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
