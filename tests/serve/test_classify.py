"""``netsentry classify`` on the shared captures, and every user mistake as one clear line.

Everything real: the C meter, a SQLite tracking store holding a pipeline-shaped model trained on
metered captures (``registered_model.py``), the alert manager with its EVE sink.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from serve.verdict import UNJUDGED
from tests.serve.registered_model import METER, meter, register_model
from tests.serve.sensor_run import (
    NETSENTRY,
    Store,
    assert_one_clear_line,
    netsentry,
    read_verdicts,
    sensor_env,
)

pytestmark = pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)")

CAPTURES = ("cicids2017/WebattackSQLinj.pcap", "protocols/synscan.pcap",
            "attacks/http_dvwa_sqlinjection.pcapng")


@pytest.fixture(scope="module")
def store(pcaps: Path) -> Iterator[Store]:
    """A SQLite store whose `netsentry@champion` is a small PortScan/BENIGN model (profile clean).

    It lives in a folder every user may read and write (pytest's tmp is root-only), so the
    no-permission test can run the sensor as `nobody` against it.
    """
    work = Path(tempfile.mkdtemp(prefix="nsS-store-"))
    try:
        uri = f"sqlite:///{work / 'mlflow.db'}"
        register_model(uri, pcaps, work / "train")
        # a model reading a column the meter does not write (the sensor refuses it)
        register_model(uri, pcaps, work / "train", name="alien",
                       tags={"features": "Flow Duration,Packet Colour"})
        for path in [work, *work.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IRWXO)
        yield Store(uri, work / "cache", work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def classified(store: Store, pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Each capture metered alone and classified once: {capture: (meter rows, stdout, verdicts, folder)}."""
    results = {}
    for capture in CAPTURES:
        folder = tmp_path_factory.mktemp("classify")
        proc = netsentry(store, folder, "classify", str(pcaps / capture), "-o", "verdicts.csv")
        assert proc.returncode == 0, proc.stderr
        expected = meter(pcaps / capture, folder / "meter.csv", "clean")  # the meter alone, same profile
        results[capture] = (expected, proc.stdout, read_verdicts(folder / "verdicts.csv"), folder)
    return results


@pytest.mark.parametrize("capture", CAPTURES)
def test_one_verdict_per_flow(classified: dict[str, tuple], capture: str) -> None:
    expected, out, verdicts, _ = classified[capture]
    assert len(verdicts) == len(expected) > 0
    assert f"{len(expected)} flows emitted" in out
    # the verdict rows are the meter's flows, in its order, each exactly once
    assert verdicts["Flow ID"].tolist() == expected["Flow ID"].astype(str).tolist()
    assert verdicts["Timestamp"].tolist() == expected["Timestamp"].tolist()
    assert set(verdicts["model_name"]) == {"netsentry"} and set(verdicts["model_version"]) == {"1"}
    judged = verdicts[verdicts["predicted"] != UNJUDGED]
    assert judged["probability"].between(0, 1).all()
    for group, n in verdicts["predicted"].value_counts().items():
        assert any(line.startswith(group) and line.split()[-2] == str(n) for line in out.splitlines()), out
    assert "model     netsentry version 1 (profile clean, runtime" in out
    # the version's test figures, from the run that registered it
    assert re.search(r"test set: accuracy 0\.\d{4}, macro-F1 0\.5000; F1 PortScan 0\.250", out), out


def test_counts_stable_run_to_run(store: Store, pcaps: Path, classified: dict[str, tuple],
                                  tmp_path: Path) -> None:
    capture = "cicids2017/WebattackSQLinj.pcap"
    _, out, verdicts, _ = classified[capture]
    again = netsentry(store, tmp_path, "classify", str(pcaps / capture), "-o", "verdicts.csv",
                      "-v", "--log-json")
    assert again.returncode == 0, again.stderr
    assert again.stdout == out
    assert read_verdicts(tmp_path / "verdicts.csv").equals(verdicts)
    # structured logs: every stderr line one JSON object
    logs = [json.loads(line) for line in again.stderr.splitlines() if line.strip()]
    assert logs and all({"time", "level", "logger", "message"} <= set(entry) for entry in logs)
    assert any(entry["message"].startswith("meter running") for entry in logs)


def test_synscan_is_detected_and_alerted(classified: dict[str, tuple]) -> None:
    _, out, verdicts, folder = classified["protocols/synscan.pcap"]
    assert (verdicts["predicted"] == "PortScan").mean() > 0.9  # it was trained on these very flows
    alerts = [json.loads(line) for line in (folder / "eve.json").read_text().splitlines()]
    assert alerts and {a["event_type"] for a in alerts} == {"alert"}
    assert {a["alert"]["signature"] for a in alerts} == {"NETSENTRY ML PortScan"}
    assert "flow detections; eve: " in out


def test_flow_csv_gives_the_same_verdicts_rotated(store: Store, classified: dict[str, tuple],
                                                  tmp_path: Path) -> None:
    _, _, verdicts, folder = classified["protocols/synscan.pcap"]
    proc = netsentry(store, tmp_path, "classify", str(folder / "meter.csv"), "-o", "v.csv",
                     "serve.verdicts.rotate_mb=0.05", "serve.batch.max_rows=100")
    assert proc.returncode == 0, proc.stderr
    files = [tmp_path / "v.csv", *sorted(tmp_path.glob("v.csv.*"), key=lambda p: int(p.suffix[1:]))]
    assert len(files) > 3 and "rotated" in proc.stdout
    joined = pd.concat([read_verdicts(f) for f in files], ignore_index=True)
    assert joined.equals(verdicts)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing model", ["no registered model 'nosuch'"]),
        ("wrong alias", ["has no alias @nope", "aliases: champion"]),
        ("columns the meter lacks", ["Packet Colour"]),
        ("corrupt pcap", ["flow meter: cannot read", "bad.pcap"]),
        ("truncated pcap", ["flow meter:", "ended early"]),
        ("csv of another layout", ["not a flow CSV in the canonical schema"]),
        ("missing file", ["no such file"]),
        ("bad override", ["bad configuration", "serve.batch.nope"]),
    ],
)
def test_bad_input_is_one_clear_line(store: Store, pcaps: Path, tmp_path: Path, case: str,
                                     fragments: list[str]) -> None:
    capture = str(pcaps / "protocols/synscan.pcap")
    args = {
        "missing model": [capture, "--model", "models:/nosuch@champion"],
        "wrong alias": [capture, "--model", "models:/netsentry@nope"],
        "columns the meter lacks": [capture, "--model", "models:/alien@champion"],
        "corrupt pcap": [str(tmp_path / "bad.pcap")],
        "truncated pcap": [str(tmp_path / "cut.pcap")],
        "csv of another layout": [str(tmp_path / "other.csv")],
        "missing file": [str(tmp_path / "nothing.pcap")],
        "bad override": [capture, "serve.batch.nope=1"],
    }[case]
    (tmp_path / "bad.pcap").write_bytes(b"\x00garbage, not a capture\x01" * 10)
    (tmp_path / "cut.pcap").write_bytes((pcaps / "protocols/iphone.pcap").read_bytes()[:20000])
    (tmp_path / "other.csv").write_text("Src,Dst,Label\n1.2.3.4,5.6.7.8,BENIGN\n")
    proc = netsentry(store, tmp_path, "classify", *args)
    assert_one_clear_line(proc, "netsentry classify: ", *fragments)


def test_unknown_interface_is_one_clear_line(store: Store, tmp_path: Path) -> None:
    proc = netsentry(store, tmp_path, "serve", "-i", "nsSnosuch0", "log.level=WARNING")
    assert_one_clear_line(proc, "netsentry serve: flow meter: cannot capture on nsSnosuch0")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_no_permission_to_capture_is_one_clear_line(store: Store) -> None:
    env = sensor_env(store) | {"HOME": str(store.work)}
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
           NETSENTRY, "serve", "-i", "lo", "log.level=WARNING",
           f"serve.model.cache_dir={store.work / 'nobody'}",
           f"serve.alerts.sinks.eve.path={store.work / 'eve.json'}"]
    proc = subprocess.run(cmd, cwd=store.work, env=env, capture_output=True, text=True, timeout=120)
    line = assert_one_clear_line(proc, "netsentry serve: flow meter: cannot capture on lo")
    assert "permission" in line.lower() or "not permitted" in line.lower()
