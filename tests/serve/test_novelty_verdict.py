"""The novelty guard on the sensor: UNKNOWN instead of an attack call, its own low-severity EVE event."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flows.novelty import UNKNOWN
from flows.schema import COLUMN_KINDS
from tests.serve.registered_model import FEATURES, METER, fit_model, meter, register_model, sqlite_store
from tests.serve.sensor_run import Store, netsentry, read_verdicts

pytestmark = pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)")

UNKNOWN_SID = 1000100


@pytest.fixture(scope="module")
def store(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The same forest registered twice: with a novelty guard (champion) and without (`unguarded`)."""
    store = sqlite_store(pcaps, tmp_path_factory.mktemp("novelty"), guard_coverage=0.999)
    register_model(store.uri, pcaps, store.work / "train", name="unguarded")
    return store


@pytest.fixture(scope="module")
def flows(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The SYN scan's flows, then the same flows moved far away in every feature the forest never
    splits on: the forest still calls them PortScan, but no training scan looks like them."""
    work = tmp_path_factory.mktemp("crafted")
    model, _, _ = fit_model(pcaps, work / "train")
    used = {FEATURES[i] for tree in model[-1].estimators_ for i in tree.tree_.feature if i >= 0}
    unused = [f for f in FEATURES if f not in used]
    assert unused, "the test needs a feature the forest does not read"
    scan = meter(pcaps / "protocols" / "synscan.pcap", work / "scan.csv")
    crafted = scan.copy()
    for f in unused:  # written as the meter would (integer columns stay integers)
        far = (crafted[f].abs() + 1) * 10**9
        crafted[f] = far.astype("int64") if COLUMN_KINDS[f] == "int" else far
    path = work / "flows.csv"
    pd.concat([scan, crafted], ignore_index=True).to_csv(path, index=False)
    return path, len(scan)


def eve_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sids(path: Path) -> list[int]:
    return [e["alert"]["signature_id"] for e in eve_events(path) if e.get("event_type") == "alert"]


def test_an_attack_call_unlike_its_group_is_unknown(
    store: Store, flows: tuple[Path, int], tmp_path: Path
) -> None:
    csv, n = flows
    guarded = netsentry(store, tmp_path / "g", "classify", str(csv), "-o", "v.csv")
    assert guarded.returncode == 0, guarded.stderr
    plain = netsentry(
        store, tmp_path / "p", "classify", str(csv), "-o", "v.csv", "--model", "models:/unguarded@champion"
    )
    assert plain.returncode == 0, plain.stderr
    g = read_verdicts(tmp_path / "g" / "v.csv")["predicted"].astype(str).tolist()
    p = read_verdicts(tmp_path / "p" / "v.csv")["predicted"].astype(str).tolist()
    assert p[n:] == p[:n]  # the forest cannot tell the crafted flows from the scan's
    assert g[:n] == p[:n]  # the scan's own flows: the forest's verdicts, untouched
    called = [i for i in range(n) if p[i] == "PortScan"]
    assert len(called) > n // 2
    assert [g[n + i] for i in called] == [UNKNOWN] * len(called)  # far from every scan it knows
    assert all(g[n + i] == p[n + i] for i in range(n) if p[i] != "PortScan")  # BENIGN calls stay
    assert UNKNOWN in guarded.stdout  # the summary's table of groups counts them

    events = [e for e in eve_events(tmp_path / "g" / "eve.json") if e.get("event_type") == "alert"]
    novelty = [e for e in events if e["alert"]["signature_id"] == UNKNOWN_SID]
    assert novelty and all(
        e["alert"]["severity"] == 3 and e["alert"]["category"] == "Unknown Traffic" for e in novelty
    )
    assert UNKNOWN_SID not in sids(tmp_path / "p" / "eve.json")


def test_unknown_events_can_be_silenced(store: Store, flows: tuple[Path, int], tmp_path: Path) -> None:
    run = netsentry(
        store, tmp_path, "classify", str(flows[0]), "-o", "v.csv", "serve.alerts.thresholds.UNKNOWN=null"
    )
    assert run.returncode == 0, run.stderr
    assert (read_verdicts(tmp_path / "v.csv")["predicted"] == UNKNOWN).any()
    assert UNKNOWN_SID not in sids(tmp_path / "eve.json") and sids(tmp_path / "eve.json")


def test_a_damaged_guard_refuses_the_model(store: Store, flows: tuple[Path, int], tmp_path: Path) -> None:
    """Running without the guard would turn its UNKNOWN calls into attack alerts: the model is refused."""
    first = netsentry(store, tmp_path / "a", "classify", str(flows[0]), "-o", "v.csv")
    assert first.returncode == 0, first.stderr
    guards = {p: p.read_bytes() for p in store.work.rglob("novelty.npz")}  # the store's and the cache's
    assert guards
    try:
        for path in guards:
            path.write_bytes(b"damaged")
        again = netsentry(store, tmp_path / "b", "classify", str(flows[0]), "-o", "v.csv")
    finally:
        for path, data in guards.items():
            path.write_bytes(data)
    assert again.returncode != 0
    assert "novelty guard" in again.stderr and "Traceback" not in again.stderr
