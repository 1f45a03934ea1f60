"""The verdict file's policy, mode and messages, and where ``classify`` sends its alerts.

``classify`` replaces an existing ``-o`` file only when the run completes (a bad input leaves it as
it was); ``serve`` appends, and a busy metrics port leaves the file untouched; new verdict files
are 0640 (``serve.verdicts.mode``); ``-o a_file/v.csv`` says "not a directory"; without an EVE
path, ``classify`` writes its alerts beside the verdict file, never to the live sensor's EVE file.
"""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import pytest

from serve.config import PROJECT_ROOT
from tests.serve.registered_model import METER
from tests.serve.sensor_run import (
    NETSENTRY,
    Store,
    assert_one_clear_line,
    netsentry,
    read_verdicts,
    sensor_env,
)
from tests.serve.test_classify import store  # noqa: F401 - the module's registered model

pytestmark = pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)")

OLD = "an earlier run's verdicts\n"


def test_classify_failure_leaves_an_existing_file_and_success_replaces_it(
        store: Store, pcaps: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "v.csv"
    out.write_text(OLD)
    (tmp_path / "bad.pcap").write_bytes(b"\x00garbage, not a capture\x01" * 10)
    proc = netsentry(store, tmp_path, "classify", str(tmp_path / "bad.pcap"), "-o", str(out))
    assert_one_clear_line(proc, "flow meter: cannot read")
    assert out.read_text() == OLD and not (tmp_path / "v.csv.partial").exists()

    capture = str(pcaps / "protocols/synscan.pcap")
    proc = netsentry(store, tmp_path, "classify", capture, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "(replaced the previous file)" in proc.stdout
    assert len(read_verdicts(out)) > 0 and not (tmp_path / "v.csv.partial").exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the default: verdicts name hosts and attacks
    proc = netsentry(store, tmp_path, "classify", capture, "-o", "v2.csv", "serve.verdicts.mode=0600")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "v2.csv").stat().st_mode) == 0o600


def test_a_mode_without_owner_write_is_one_line(store: Store, pcaps: Path, tmp_path: Path) -> None:  # noqa: F811
    proc = netsentry(store, tmp_path, "classify", str(pcaps / "protocols/synscan.pcap"), "-o", "v.csv",
                     "serve.verdicts.mode=0440")
    assert_one_clear_line(proc, "serve.verdicts.mode", "owner read and write")
    assert proc.returncode == 2


def test_busy_metrics_port_leaves_the_verdict_file_intact(store: Store, pcaps: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "v.csv"
    out.write_text(OLD)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = netsentry(store, tmp_path, "serve", "-r", str(pcaps / "protocols/synscan.pcap"),
                         "-o", str(out), f"serve.metrics.port={port}", "log.level=WARNING")
    assert_one_clear_line(proc, f"cannot serve metrics on port {port}")
    assert out.read_text() == OLD


def test_serve_appends_to_its_verdict_file(store: Store, pcaps: Path, tmp_path: Path) -> None:  # noqa: F811
    capture = str(pcaps / "protocols/synscan.pcap")
    counts = []
    for _ in range(2):  # a restarted sensor continues the file (one header)
        proc = netsentry(store, tmp_path, "serve", "-r", capture, "-o", "v.csv", "log.level=WARNING")
        assert proc.returncode == 0, proc.stderr
        counts.append(len(read_verdicts(tmp_path / "v.csv")))
    assert counts[1] == 2 * counts[0] > 0


def test_output_under_a_file_says_not_a_directory(store: Store, pcaps: Path, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "some_file").write_text("x")
    proc = netsentry(store, tmp_path, "classify", str(pcaps / "protocols/synscan.pcap"),
                     "-o", str(tmp_path / "some_file" / "verdicts.csv"))
    line = assert_one_clear_line(proc, f"{tmp_path / 'some_file'} is not a directory")
    assert "File exists" not in line


def test_classify_alerts_go_beside_the_verdicts(store: Store, pcaps: Path, tmp_path: Path) -> None:  # noqa: F811
    live_eve = PROJECT_ROOT / ".netsentry" / "eve.json"
    before = live_eve.stat().st_size if live_eve.exists() else None
    # no EVE override: the configured default (the live sensor's file) must not be used
    proc = subprocess.run([NETSENTRY, "classify", str(pcaps / "protocols/synscan.pcap"), "-o", "v.csv",
                           f"serve.model.cache_dir={store.cache}"], cwd=tmp_path, env=sensor_env(store),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    eve = (tmp_path / "v.eve.json").read_text().splitlines()
    assert eve and all('"NETSENTRY ML PortScan"' in line for line in eve)
    assert (live_eve.stat().st_size if live_eve.exists() else None) == before
