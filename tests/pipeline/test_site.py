"""The site's recorded flows as benign training rows (``data.site_dir``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.schema import FLOW_COLUMNS, LABEL_COLUMN, SOURCE_COLUMN
from pipeline.clean import add_site, read_input
from pipeline.site import SiteError, read_site
from serve.flow_recorder import FlowRecorder  # the real producer of the folder (a test may use both)
from tests.serve.registered_model import meter


@pytest.fixture(scope="module")
def site(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A recorded folder of 60 real flows: every 3rd called DoS, at probability 0.55 or 0.95 in turn."""
    work = tmp_path_factory.mktemp("site")
    flows = meter(pcaps / "protocols" / "skype.pcap", work / "f.csv").head(60)
    n = len(flows)
    predicted = np.where(np.arange(n) % 3 == 0, "DoS", "BENIGN")
    probability = np.where(np.arange(n) % 6 == 0, 0.95, 0.55)
    verdicts = pd.DataFrame({"predicted": predicted, "probability": probability,
                             "model_name": "netsentry", "model_version": "1"})
    rec = FlowRecorder(work / "rec", max_bytes=2**30, profile="clean")
    rec.observe(flows, verdicts)
    rec.close()
    return work / "rec", verdicts


def test_confident_detections_are_left_out_the_rest_is_benign(site: tuple[Path, pd.DataFrame]) -> None:
    folder, verdicts = site
    rows, report = read_site(folder, "clean", 0.9)
    confident = int(((verdicts["predicted"] == "DoS") & (verdicts["probability"] >= 0.9)).sum())
    assert confident == 10
    assert report["rows"] == 60 and report["flagged"] == 20 and report["left_out_flagged"] == confident
    assert len(rows) == report["rows_as_benign"] == 50
    assert set(rows[LABEL_COLUMN]) == {"BENIGN"} and set(rows[SOURCE_COLUMN]) == {"site"}
    assert list(rows.columns[: len(FLOW_COLUMNS)]) == list(FLOW_COLUMNS)
    every, _ = read_site(folder, "clean", 1.01)
    assert len(every) == 60
    strict, report = read_site(folder, "clean", 0.0)
    assert len(strict) == 40 and report["left_out_flagged"] == 20


def test_a_site_of_another_profile_is_refused(site: tuple[Path, pd.DataFrame]) -> None:
    with pytest.raises(SiteError, match=r"profile\(s\) \['clean'\].*'engelen'"):
        read_site(site[0], "engelen", 0.9)


def test_captures_json_names_what_the_baseline_came_from(
    site: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(site[0], folder)
    (folder / "captures.json").write_text(json.dumps(["b.pcap", "a.pcap"]))
    assert read_site(folder, "clean", 0.9)[1]["captures"] == ["a.pcap", "b.pcap"]
    (folder / "captures.json").write_text('{"a": 1}')
    with pytest.raises(SiteError, match="captures.json: not a JSON list"):
        read_site(folder, "clean", 0.9)


def test_clean_adds_the_site_to_the_lab_input(site: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    lab_dir = Path(__file__).resolve().parents[2] / "data" / "lab" / "clean"
    flows, inputs = read_input(lab_dir, "clean")
    both = add_site(flows, inputs, {"site_dir": str(site[0]), "site_drop_flagged_from": 0.9})
    assert len(both) == len(flows) + 50
    assert inputs["site"]["rows_as_benign"] == 50
    assert (both[LABEL_COLUMN].astype(str) == "BENIGN").sum() == (flows[LABEL_COLUMN] == "BENIGN").sum() + 50
    assert add_site(flows, {"flow_profile": "clean"}, {"site_dir": None}) is flows
    with pytest.raises(SiteError, match="no such folder"):
        add_site(flows, inputs, {"site_dir": str(tmp_path / "nowhere")})
