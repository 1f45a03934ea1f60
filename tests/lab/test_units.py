"""The lab's pieces that need no root: catalogue, labelling rules, pcap rewriting, dataset reading."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest

from flows.schema import FLOW_COLUMNS
from lab import pcap, scenarios
from lab.evaluate import score
from lab.labels import LAB_COLUMNS, label_flows
from netsentry.cli import main as netsentry_main
from pipeline.layouts import read_flow_folder


def test_catalogue_has_more_than_one_tool_or_mode_per_group() -> None:
    cat = scenarios.load()
    for group in scenarios.GROUPS:
        members = [s for s in cat.scenarios.values() if s.group == group]
        assert len({(s.tool, s.mode) for s in members}) >= 2, group
    # bounded: every foreground scenario has a time cap
    assert all(0 < s.timeout <= 60 for s in cat.scenarios.values() if not s.background)
    assert all(n in cat.scenarios for n in cat.sets["short"])


def test_spoofed_addresses_stay_inside_the_lab() -> None:
    for s in scenarios.load().scenarios.values():
        for addr in s.label_addresses():
            assert addr.startswith("10.99.7."), (s.name, addr)
        argv = " ".join(
            a for h in s.hosts for a in scenarios.expand(s.cmd, scenarios.placeholders(Path("/w"), h))
        )
        assert "--rand-source" not in argv and "--flood" not in argv, s.name


def _flow(src: str, dst: str, sport: int, dport: int, ts: str) -> dict:
    row = dict.fromkeys(FLOW_COLUMNS, 0)
    row.update(
        {
            "Flow ID": f"{src}-{dst}-{sport}-{dport}-6",
            "Source IP": src,
            "Destination IP": dst,
            "Source Port": sport,
            "Destination Port": dport,
            "Protocol": 6,
            "Timestamp": ts,
        }
    )
    return row


MANIFEST = {
    "victim": "10.99.7.10",
    "benign_clients": {"cli1": "10.99.7.30"},
    "scenarios": [
        # 2026-01-01 00:00:10 .. 00:00:20 UTC
        {
            "name": "scan",
            "group": "PortScan",
            "tool": "nmap",
            "label_addresses": ["10.99.7.21"],
            "label_port": None,
            "start": 1767225610.0,
            "end": 1767225620.0,
        },
        {
            "name": "beacon",
            "group": "Bot",
            "tool": "beacon",
            "label_addresses": ["10.99.7.40"],
            "label_port": 8080,
            "start": 1767225600.0,
            "end": 1767225700.0,
        },
    ],
}


def test_flows_are_labelled_by_address_port_and_window() -> None:
    flows = pd.DataFrame(
        [
            _flow("10.99.7.21", "10.99.7.10", 40000, 22, "2026-01-01 00:00:12.000000"),  # in the window
            _flow("10.99.7.21", "10.99.7.10", 40001, 22, "2026-01-01 00:00:30.000000"),  # after: dropped
            _flow("10.99.7.30", "10.99.7.10", 40002, 80, "2026-01-01 00:00:12.000000"),  # benign client
            _flow("10.99.7.10", "10.99.7.40", 40003, 8080, "2026-01-01 00:00:50.000000"),  # beacon
            _flow(
                "10.99.7.10", "10.99.7.40", 40004, 9999, "2026-01-01 00:00:50.000000"
            ),  # other port: dropped
        ]
    )
    out, report = label_flows(flows, MANIFEST)
    assert list(out.columns) == list(LAB_COLUMNS)
    assert out["Label"].tolist() == ["PortScan", "BENIGN", "Bot"]
    assert out["Source Port"].tolist() == [40000, 40002, 40003]
    assert out["Scenario"].tolist() == ["scan", "benign", "beacon"]
    assert report["dropped"] == 2


def test_score_counts_right_group_any_attack_and_false_positives() -> None:
    df = pd.DataFrame(
        {
            "Label": ["PortScan"] * 4 + ["BENIGN"] * 5,
            "Scenario": ["scan"] * 4 + ["benign"] * 5,
            "Tool": ["nmap"] * 4 + ["benign"] * 5,
            "predicted": [
                "PortScan",
                "PortScan",
                "DoS",
                "BENIGN",
                "BENIGN",
                "BENIGN",
                "BENIGN",
                "BENIGN",
                "DoS",
            ],
        }
    )
    r = score(df)
    assert r["scenarios"]["scan"]["detected_group"] == 0.5
    assert r["scenarios"]["scan"]["detected_any"] == 0.75
    assert r["benign"]["false_positive_rate"] == pytest.approx(0.2)
    assert r["benign"]["flagged_as"] == {"DoS": 1}


def test_pcap_rewrite_keeps_wire_length_and_cuts_windows(tmp_path: Path) -> None:
    pkts = [
        (100, 5, 1514, bytes(range(256)) * 5 + b"x" * 234),
        (101, 999999, 60, b"y" * 60),
        (105, 0, 80, b"z" * 80),
    ]
    full = tmp_path / "a.pcap.gz"
    assert pcap.write(full, 1, pkts) == 3
    linktype, back = pcap.read(full)
    assert linktype == 1 and list(back) == pkts
    snapped = tmp_path / "b.pcap"
    pcap.write(snapped, 1, pcap.read(full)[1], snaplen=96)
    got = list(pcap.read(snapped)[1])
    assert [(s, u, o, len(d)) for s, u, o, d in got] == [
        (100, 5, 1514, 96),
        (101, 999999, 60, 60),
        (105, 0, 80, 80),
    ]
    window = list(pcap.in_windows(pcap.read(full)[1], [(100.5, 102.0)]))
    assert [p[0] for p in window] == [101]


def test_pipeline_reads_lab_files_in_their_profile(tmp_path: Path) -> None:
    df, _ = label_flows(
        pd.DataFrame([_flow("10.99.7.21", "10.99.7.10", 1, 22, "2026-01-01 00:00:12.000000")]), MANIFEST
    )
    for profile in ("clean", "engelen"):
        folder = tmp_path / profile
        folder.mkdir()
        with gzip.open(folder / f"flows.lab-{profile}.csv.gz", "wt") as fh:
            df.to_csv(fh, index=False)
        flows, report = read_flow_folder(folder, progress=False)
        assert report[f"flows.lab-{profile}.csv.gz"]["flow_profile"] == profile
        assert flows["Label"].tolist() == ["PortScan"]
        assert "Scenario" not in flows.columns


def test_lab_commands_need_root_and_say_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # as a user without root (the uid is all require_root looks at)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netsentry_main(["lab", "down"]) == 1
    err = capsys.readouterr().err
    assert "needs root" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
