"""The label mapping (config, not code) covers both releases and refuses labels it does not know."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.schema import LABEL_COLUMN
from pipeline.group import ATTACK_COLUMN, UnknownLabelError, group_flows
from pipeline.params import compose_params

GROUPS = {
    "BENIGN",
    "DDoS",
    "DoS",
    "PortScan",
    "Brute Force",
    "Bot",
    "Web Attack",
    "Infiltration",
    "Heartbleed",
}
# the original CICIDS2017 labels, after the loader decoded the cp1252 en dash
ORIGINAL = [
    "BENIGN",
    "DDoS",
    "DoS Hulk",
    "DoS GoldenEye",
    "DoS slowloris",
    "DoS Slowhttptest",
    "PortScan",
    "FTP-Patator",
    "SSH-Patator",
    "Bot",
    "Web Attack - Brute Force",
    "Web Attack - XSS",
    "Web Attack - Sql Injection",
    "Infiltration",
    "Heartbleed",
]
# the corrected release (Engelen et al.)
ENGELEN = [
    "BENIGN",
    "Botnet",
    "DDoS",
    "DoS GoldenEye",
    "DoS Hulk",
    "DoS Slowhttptest",
    "DoS Slowloris",
    "FTP-Patator",
    "Heartbleed",
    "Infiltration - Portscan",
    "Infiltration",
    "Portscan",
    "SSH-Patator",
    "Web Attack - Brute Force",
    "Web Attack - SQL Injection",
    "Web Attack - XSS",
]


@pytest.fixture(scope="module")
def mapping() -> dict[str, str]:
    return compose_params()["labels"]["mapping"]


@pytest.mark.parametrize("labels", [ORIGINAL, ENGELEN], ids=["original-15", "engelen-16"])
def test_every_release_label_maps_to_benign_or_one_of_8_groups(
    mapping: dict[str, str], labels: list[str]
) -> None:
    flows = pd.DataFrame({LABEL_COLUMN: labels})
    out, report = group_flows(flows, mapping)
    assert set(out[LABEL_COLUMN]) == GROUPS and report["n_groups"] == 9
    assert out[ATTACK_COLUMN].tolist() == labels


def test_specific_groups(mapping: dict[str, str]) -> None:
    flows = pd.DataFrame(
        {LABEL_COLUMN: ["DoS slowloris", "Infiltration - Portscan", "Botnet", "SSH-Patator"]}
    )
    out, report = group_flows(flows, mapping)
    assert out[LABEL_COLUMN].tolist() == ["DoS", "PortScan", "Bot", "Brute Force"]
    assert report["groups"] == {"Bot": 1, "Brute Force": 1, "DoS": 1, "PortScan": 1}


def test_unknown_labels_stop_the_stage_with_their_counts(mapping: dict[str, str]) -> None:
    flows = pd.DataFrame({LABEL_COLUMN: ["BENIGN", "DoS Hulk - Attempted", "DoS Hulk - Attempted", "Mirai"]})
    with pytest.raises(UnknownLabelError, match=r"'DoS Hulk - Attempted' \(2 rows\), 'Mirai' \(1 rows\)"):
        group_flows(flows, mapping)
