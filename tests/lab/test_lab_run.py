"""End to end (root only): build the lab, run a short scenario set with benign traffic, label, tear down.

One nmap SYN scan (twice), one hydra SSH run capped at 15 s, 20 s of benign users before them, the bot
beacons in the background.  Checks the labels against what each host did, that a header-only copy of the
capture meters to the same flows, and that `lab down` leaves no namespace and no process behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lab import netns, pcap, services
from lab.dataset import HEADER_SNAPLEN
from lab.labels import meter
from tests.lab.labtools import lab_processes, needs_lab, netsentry

pytestmark = [pytest.mark.slow, needs_lab]
ATT1, CLIENTS, C2 = "10.99.7.21", {"10.99.7.30", "10.99.7.31"}, "10.99.7.40"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("labrun")
    try:
        proc = netsentry(
            "lab",
            "run",
            "--set",
            "short",
            "--max-time",
            "15",
            "--warmup",
            "20",
            "--cooldown",
            "3",
            "--out",
            str(out),
            "--profile",
            "clean",
        )
    finally:
        services.teardown()
    assert proc.returncode == 0, proc.stderr
    return out


def test_flows_are_labelled_by_what_each_host_did(run: Path) -> None:
    flows = pd.read_csv(run / "labelled-clean.csv.gz")
    by_label = flows["Label"].value_counts().to_dict()
    scan = flows[flows["Scenario"] == "nmap-syn-t4"]
    # two SYN scans of 2000 ports: one flow per probed port and scan at least
    assert len(scan) >= 2 * 2000
    assert set(scan["Source IP"]) == {ATT1} and set(scan["Label"]) == {"PortScan"}
    brute = flows[flows["Scenario"] == "hydra-ssh"]
    assert (
        len(brute) >= 4 and set(brute["Destination Port"]) == {22} and set(brute["Label"]) == {"Brute Force"}
    )
    benign = flows[flows["Label"] == "BENIGN"]
    assert by_label.get("BENIGN", 0) >= 20
    assert (benign["Source IP"].isin(CLIENTS) | benign["Destination IP"].isin(CLIENTS)).all()
    bot = flows[flows["Label"] == "Bot"]
    assert len(bot) >= 5 and (bot["Destination IP"] == C2).all()
    report = json.loads((run / "labels-clean.json").read_text())
    # the only flows not attributable are stragglers; they are counted, never labelled
    assert report["dropped"] <= 0.01 * report["flows"]


def test_manifest_records_versions_argv_and_windows(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["tool_versions"]["nmap"].startswith("Nmap version")
    names = [s["name"] for s in manifest["scenarios"]]
    assert names[:2] == ["nmap-syn-t4", "hydra-ssh"]
    hydra = manifest["scenarios"][1]
    assert hydra["argv"]["att1"][0] == "hydra" and hydra["end"] - hydra["start"] <= 15 + 5
    assert manifest["scenarios"][0]["end"] <= hydra["start"]


def test_header_only_capture_meters_to_the_same_flows(run: Path, tmp_path: Path) -> None:
    linktype, packets = pcap.read(run / "capture.pcap")
    pcap.write(tmp_path / "h.pcap", linktype, packets, snaplen=HEADER_SNAPLEN)
    assert meter(run / "capture.pcap", "clean", tmp_path / "a.csv") == 0
    assert meter(tmp_path / "h.pcap", "clean", tmp_path / "b.csv") == 0
    a, b = (tmp_path / "a.csv").read_text(), (tmp_path / "b.csv").read_text()
    assert a == b and a.count("\n") > 4000


def test_down_leaves_nothing_and_is_idempotent(run: Path) -> None:
    assert netns.our_namespaces() == []
    assert lab_processes(str(run)) == []
    for _ in range(2):
        proc = netsentry("lab", "down")
        assert proc.returncode == 0, proc.stderr
    up = netsentry("lab", "up", "--work", str(run / "up"))
    try:
        assert up.returncode == 0, up.stderr
        assert len(netns.our_namespaces()) == len(netns.HOSTS) + 1
        assert lab_processes(str(run / "up"))  # the victim's daemons run
    finally:
        down = netsentry("lab", "down")
    assert down.returncode == 0 and "removed 8 namespaces" in down.stdout
    assert netns.our_namespaces() == [] and lab_processes(str(run)) == []
