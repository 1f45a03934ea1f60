"""The alert path's faults seen from ``netsentry classify``: crafted flow times, an EVE file on a
full device, an SMTP login without TLS.  Real meter, real registered model, real subprocess."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.serve.alert_data import ROOT
from tests.serve.registered_model import METER, meter, sqlite_store
from tests.serve.sensor_run import NETSENTRY, Store, assert_one_clear_line, sensor_env

pytestmark = pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)")

INT64_MAX = str(2**63 - 1)
LAST_MOMENT = "9999-12-31T23:59:59.999999+0000"


@pytest.fixture(scope="module")
def store(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A SQLite store whose `netsentry@champion` is the small PortScan/BENIGN test model."""
    return sqlite_store(pcaps, tmp_path_factory.mktemp("alerts-store"))


@pytest.fixture(scope="module")
def synscan_csv(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The meter's flows of the shared SYN scan (the test model calls nearly all PortScan)."""
    out = tmp_path_factory.mktemp("synscan") / "synscan.csv"
    meter(pcaps / "protocols" / "synscan.pcap", out, "clean")
    return out


def classify(store: Store, folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``netsentry classify ARGS`` in ``folder`` with the test's store and model cache; PYTHONPATH:
    this tree's code, whichever tree the venv's editable install points at."""
    cmd = [NETSENTRY, "classify", *args, f"serve.model.cache_dir={store.cache}"]
    env = sensor_env(store) | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def _craft_times(source: Path, target: Path) -> int:
    """``source`` with every other flow starting at the last µs of year 9999 and every third lasting
    int64-max µs; returns how many rows were changed."""
    with source.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    stamp, duration = header.index("Timestamp"), header.index("Flow Duration")
    changed = set()
    for i, row in enumerate(body):
        if i % 2 == 0:
            row[stamp] = "9999-12-31 23:59:59.999999"
            changed.add(i)
        if i % 3 == 0:
            row[duration] = INT64_MAX
            changed.add(i)
    with target.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *body])
    return len(changed)


def test_crafted_flow_times_are_alerted_clamped(store: Store, synscan_csv: Path, tmp_path: Path) -> None:
    crafted = tmp_path / "crafted.csv"
    assert _craft_times(synscan_csv, crafted) > 10
    proc = classify(store, tmp_path, str(crafted), "serve.alerts.thresholds.PortScan=0.0",
                    f"serve.alerts.sinks.eve.path={tmp_path / 'eve.json'}")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "out-of-range flow time" in proc.stderr  # said, with a count
    sent = re.search(r"^alerts +(\d+) flow detections; eve: (\d+) sent, 0 failed", proc.stdout, re.M)
    assert sent and int(sent.group(1)) > 10, proc.stdout
    lines = [json.loads(t) for t in (tmp_path / "eve.json").read_text().splitlines()]
    assert len(lines) == int(sent.group(2)) > 0
    assert any(line["netsentry"]["last_seen"] == LAST_MOMENT for line in lines)


def test_eve_on_a_full_device_still_ends_with_the_summary(store: Store, synscan_csv: Path,
                                                          tmp_path: Path) -> None:
    proc = classify(store, tmp_path, str(synscan_csv), "serve.alerts.sinks.eve.path=/dev/full",
                    "serve.alerts.retry.attempts=2", "serve.alerts.retry.backoff_s=0.01",
                    "serve.alerts.aggregation.window_s=0")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "No space left on device" in proc.stderr
    failed = re.search(r"^alerts +(\d+) flow detections; eve: 0 sent, (\d+) failed", proc.stdout, re.M)
    assert failed and int(failed.group(1)) > 0 and int(failed.group(2)) > 0, proc.stdout
    assert proc.stdout.startswith("model     netsentry version 1")


def test_smtp_login_without_tls_is_one_line_and_status_2(store: Store, synscan_csv: Path,
                                                         tmp_path: Path) -> None:
    email = "serve.alerts.sinks.email"
    proc = classify(store, tmp_path, str(synscan_csv), f"{email}.enabled=true",
                    f"{email}.to=[soc@example.org]", f"{email}.username=sensor",
                    f"{email}.password_env=HOME",  # a variable set in any environment
                    f"serve.alerts.sinks.eve.path={tmp_path / 'eve.json'}")
    assert proc.returncode == 2
    assert_one_clear_line(proc, "netsentry classify: alerts config: email username is set without starttls",
                          "allow_plaintext_auth")
