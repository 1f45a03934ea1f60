"""benign_eval: the manifest of benign captures, capture-level separation, scoring, end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.schema import FLOW_COLUMNS
from lab import benign_eval
from lab.benign_eval import BenignSet, benign_captures, load_manifest, score_set
from lab.evaluate import EvalError


def test_every_excluded_capture_exists_and_every_other_counts(pcaps: Path) -> None:
    """The committed manifest names real files, each with a kind and a reason; nothing else is left out."""
    manifest = load_manifest()
    for name, spec in manifest.items():
        folder = pcaps.parent / spec["folder"]
        missing = set(spec["excluded"]) - {p.name for p in folder.iterdir()}
        assert not missing, (name, missing)
    for name, pattern in benign_eval.load_flow_sets().items():  # committed, in both profiles
        for profile in ("clean", "engelen"):
            assert (benign_eval.PROJECT_ROOT / pattern.format(profile=profile)).is_file(), (name, profile)
    browsing, _ = benign_captures(pcaps / "attacks", manifest["shared-browsing"], trained=set())
    assert [p.name for p in browsing] == ["http_espn.pcapng"]
    spec = manifest["shared-protocols"]
    folder = pcaps.parent / spec["folder"]
    names = {p.name for p in folder.iterdir() if p.is_file()}
    assert set(spec["excluded"]) <= names, set(spec["excluded"]) - names
    keep, left_out = benign_captures(folder, spec, trained=set())
    assert left_out == {n: w["kind"] for n, w in spec["excluded"].items()}
    assert {"synscan.pcap", "WebattackSQLinj.pcap", "trickbot.pcap"} <= set(left_out)
    kept = {p.name for p in keep}
    assert {"skype.pcap", "dns_doh.pcap", "quic.pcap"} <= kept
    every_capture = {n for n in names if n.lower().endswith(benign_eval.CAPTURE_SUFFIXES)}
    assert kept | set(left_out) == every_capture  # nfstream-expected/ files are not captures here
    assert not any("nfstream-expected" in str(p) for p in keep)


def test_a_capture_the_model_was_trained_on_is_never_counted(tmp_path: Path) -> None:
    for name in ("a.pcap", "b.pcapng", "attack.pcap", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "skipme").mkdir()
    (tmp_path / "skipme" / "c.pcap").write_bytes(b"")
    spec = {"folder": ".", "skip_folders": ["skipme"],
            "excluded": {"attack.pcap": {"kind": "attack", "why": "x"}}}
    keep, left_out = benign_captures(tmp_path, spec, trained={"b.pcapng"})
    assert [p.name for p in keep] == ["a.pcap"]
    assert left_out == {"attack.pcap": "attack", "b.pcapng": "trained"}


@pytest.mark.parametrize(
    "entry",
    [{"kind": "attack"}, {"kind": "spooky", "why": "x"}, "attack"],
    ids=["no reason", "unknown kind", "not a mapping"],
)
def test_a_manifest_entry_needs_a_kind_and_a_reason(tmp_path: Path, entry: object) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"sets": {"s": {"folder": "x", "excluded": {"a.pcap": entry}}}}))
    with pytest.raises(EvalError, match="a.pcap"):
        load_manifest(path)


def test_score_counts_attacks_only_per_capture_and_group() -> None:
    bset = BenignSet("s", origin=["x", "x", "x", "y", "y", "z"])
    predicted = pd.Series(["BENIGN", "DoS", "DoS", "UNJUDGED", "PortScan", "UNKNOWN"])
    report, per = score_set(bset, predicted)
    assert report["flows"] == 6 and report["flagged"] == 3
    assert report["false_positive_rate"] == pytest.approx(0.5)
    assert report["unjudged"] == 1 and report["unknown"] == 1  # neither is an attack call
    assert report["flagged_as"] == {"DoS": 2, "PortScan": 1}
    assert report["sources"] == 3 and report["sources_with_a_false_positive"] == 2
    rows = per.set_index("capture")
    assert rows.loc["x", "flagged"] == 2 and rows.loc["x", "top_group"] == "DoS"
    assert rows.loc["y", "share"] == pytest.approx(0.5)
    assert rows.loc["z", "flagged"] == 0 and rows.loc["z", "top_group"] == ""
    assert report["worst"][0]["capture"] == "x"


def test_end_to_end_with_a_registered_model(tmp_path: Path, pcaps: Path, monkeypatch) -> None:
    """Real meter, real `netsentry classify`, a real registered model tagged with what it trained on."""
    from tests.serve.registered_model import meter, register_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    version = register_model(uri, pcaps, tmp_path / "work",
                             tags={"trained_captures": json.dumps(["iphone.pcap"])})
    folder = tmp_path / "benign"
    folder.mkdir()
    for name in ("synscan.pcap", "iphone.pcap", "dhcp.pcap", "mdns.pcap"):
        os.symlink(pcaps / "protocols" / name, folder / name)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({"sets": {"mine": {"folder": "benign", "excluded": {
        "synscan.pcap": {"kind": "attack", "why": "nmap"}}}}}))
    expected = {
        n: len(meter(pcaps / "protocols" / n, tmp_path / f"{n}.csv")) for n in ("dhcp.pcap", "mdns.pcap")
    }
    labelled = meter(pcaps / "protocols" / "synscan.pcap", tmp_path / "scan.csv").head(7)
    labelled["Label"] = ["BENIGN"] * 4 + ["PortScan"] * 3
    labelled["Scenario"] = "scan-slice"
    labelled.to_csv(tmp_path / "labelled.csv", index=False)

    report = benign_eval.evaluate(
        f"models:/netsentry/{version}", tmp_path / "out.json", tmp_path / "out.png",
        {"flowset": tmp_path / "labelled.csv"}, manifest, shared=tmp_path, mlflow_log=False,
    )
    mine = report["sets"]["mine"]
    assert mine["excluded"] == {"iphone.pcap": "trained", "synscan.pcap": "attack"}
    assert mine["flows"] == sum(expected.values()) > 0
    every = pd.read_csv(tmp_path / "out.csv")
    assert set(every["set"]) == {"mine", "flowset"}
    per = every[every["set"] == "mine"]
    assert set(per["capture"]) <= set(expected)
    assert per.groupby("capture")["flows"].sum().to_dict() == {k: v for k, v in expected.items() if v}
    assert mine["flagged"] == per["flagged"].sum()
    assert mine["false_positive_rate"] == pytest.approx(mine["flagged"] / mine["flows"])
    flowset = report["sets"]["flowset"]
    assert flowset["flows"] == 4  # only the BENIGN rows are judged
    assert json.loads((tmp_path / "out.json").read_text())["sets"]["mine"]["flows"] == mine["flows"]
    assert (tmp_path / "out.png").stat().st_size > 1000
    assert list(pd.read_csv(tmp_path / "labelled.csv").columns[: len(FLOW_COLUMNS)]) == list(FLOW_COLUMNS)


def test_an_absent_capture_folder_is_reported_as_skipped(tmp_path: Path) -> None:
    manifest = {"gone": {"folder": "nowhere"}}
    sets = benign_eval.collect_sets(manifest, tmp_path, {}, "clean", set(), tmp_path)
    assert sets[0].skipped.startswith(str(tmp_path / "nowhere"))
