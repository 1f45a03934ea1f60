"""A verdict file on a real small tmpfs that fills up while ``netsentry serve -r FIFO`` runs.

While the disk is full the sensor keeps judging: the batch that did not fit is cut back (no torn
row), its rows are counted, one line says so; once space is back, writing resumes.  The summary
and the exit status (1) say how many rows are missing from the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.disk import fill, small_tmpfs
from tests.serve.pcap_stream import PCAP_HEADER, open_fifo_for_writing, tick, udp_flows
from tests.serve.registered_model import METER
from tests.serve.sensor_run import Daemon, Store, count_rows, read_verdicts
from tests.serve.test_classify import store  # noqa: F401 - the module's registered model
from tests.serve.test_serve_live import summary_counts, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs (needs root)"),
    pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)"),
]

T0 = 1_700_000_000_000_000  # µs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted for the test, unmounted after it."""
    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        yield disk


def test_full_disk_costs_rows_counted_never_the_sensor(store: Store, small_disk: Path,  # noqa: F811
                                                        tmp_path: Path) -> None:
    out, fifo = small_disk / "verdicts.csv", tmp_path / "stream.pcap"
    os.mkfifo(fifo)
    sensor = Daemon(store, tmp_path, "-r", str(fifo), "-o", str(out), "serve.model.poll_seconds=0",
                    "serve.meter.flow_timeout=1")
    try:
        with open_fifo_for_writing(str(fifo), lambda: sensor.proc.poll() is None) as stream:
            stream.write(PCAP_HEADER + udp_flows(T0, 20000, 40) + tick(T0 + 10_000_000))
            wait_until(lambda: count_rows(out) >= 40, 60)
            filler = fill(small_disk)
            stream.write(udp_flows(T0 + 20_000_000, 30000, 40) + tick(T0 + 30_000_000))
            sensor.wait_for("verdicts: cannot write", 60)
            filler.unlink()
            stream.write(udp_flows(T0 + 40_000_000, 50000, 40) + tick(T0 + 50_000_000))
            wait_until(lambda: count_rows(out) >= 80, 60)
        status, stdout = sensor.stop(None)  # end of the stream: the sensor ends by itself
    finally:
        if sensor.proc.poll() is None:
            sensor.stop()
    assert "Traceback" not in sensor.stderr, sensor.stderr
    assert status == 1, sensor.stderr  # rows are missing from the file: not a clean run
    problems = [line for line in sensor.lines if "cannot write" in line]
    assert len(problems) == 1 and "No space left on device" in problems[0], sensor.stderr
    judged, emitted, _ = summary_counts(stdout)
    verdicts = read_verdicts(out)  # every line a whole row: the failed batch was cut back
    lines = out.read_bytes().splitlines()
    assert all(line.count(b",") == lines[0].count(b",") for line in lines)
    unwritten = int(stdout.split(" rows NOT written")[0].split()[-1])
    assert judged == emitted == 123 and len(verdicts) + unwritten == judged and unwritten >= 40
    ports = verdicts["Destination Port"]
    assert sorted(ports[ports >= 50000]) == list(range(50000, 50040))  # written again once space was back
