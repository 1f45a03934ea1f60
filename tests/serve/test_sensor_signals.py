"""Real signals to a real ``netsentry serve -r FIFO`` and ``netsentry classify``.

The test writes the capture into a FIFO as it goes (``pcap_stream.py``), so it knows which flows
were judged when it signals.  ``serve``: SIGHUP sent to the sensor's whole process group (what a
terminal hangup or ``kill -HUP -PGID`` does) reopens the verdict file that "logrotate" moved away,
neither the sensor nor its meter dies; SIGUSR1 logs a status line; SIGQUIT stops like SIGTERM (every
open flow judged, exit 0).  ``classify``: SIGINT/SIGTERM mid-capture exit 130/143 with
"interrupted after N flows", keep the N verdicts in ``VERDICTS.csv.partial`` and leave an
existing ``VERDICTS.csv`` as it was.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.serve.pcap_stream import PCAP_HEADER, open_fifo_for_writing, tick, udp_flows
from tests.serve.registered_model import METER, meter
from tests.serve.sensor_run import Daemon, Store, count_rows, read_verdicts
from tests.serve.test_classify import store  # noqa: F401 - the module's registered model
from tests.serve.test_serve_live import summary_counts, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)"),
]

T0 = 1_700_000_000_000_000  # µs


def _stream(sensor: Daemon, fifo: Path):  # noqa: ANN202
    try:
        return open_fifo_for_writing(str(fifo), lambda: sensor.proc.poll() is None)
    except OSError as exc:
        raise AssertionError(f"the sensor did not open the stream:\n{sensor.stderr}") from exc


def test_sighup_reopens_the_verdict_file_and_sigquit_stops_cleanly(store: Store, tmp_path: Path) -> None:  # noqa: F811
    out, fifo, rotated = tmp_path / "verdicts.csv", tmp_path / "stream.pcap", tmp_path / "verdicts.csv.old"
    os.mkfifo(fifo)
    # setsid: the sensor leads its own process group, so the test can signal the whole group
    sensor = Daemon(store, tmp_path, "-r", str(fifo), "-o", str(out), "serve.model.poll_seconds=0",
                    "serve.meter.flow_timeout=1", prefix=("setsid",))
    try:
        with _stream(sensor, fifo) as stream:
            stream.write(PCAP_HEADER + udp_flows(T0, 20000, 40) + tick(T0 + 10_000_000))
            wait_until(lambda: count_rows(out) >= 40, 60)
            os.rename(out, rotated)  # what logrotate does before it signals
            os.killpg(sensor.proc.pid, signal.SIGHUP)
            sensor.wait_for(f"SIGHUP: started a new verdict file {out}", 30)
            assert out.read_bytes().count(b"\n") == 1  # the new file starts with the header
            os.kill(sensor.proc.pid, signal.SIGUSR1)
            status_line = sensor.wait_for("status: ", 30)
            assert "40 flows judged" in status_line
            assert "40 verdict rows written, 0 not written" in status_line
            stream.write(udp_flows(T0 + 20_000_000, 30000, 40) + tick(T0 + 30_000_000))
            wait_until(lambda: count_rows(out) >= 41, 60)  # the first tick flow and the 40
            os.killpg(sensor.proc.pid, signal.SIGQUIT)
            status, stdout = sensor.stop(None)
    finally:
        if sensor.proc.poll() is None:
            sensor.stop()
    assert status == 0, sensor.stderr
    assert "SIGQUIT: stopping the meter" in sensor.stderr
    judged, emitted, restarts = summary_counts(stdout)
    assert judged == emitted == 82 and restarts == 0  # the meter got no SIGHUP/SIGQUIT of its own
    before, after = read_verdicts(rotated), read_verdicts(out)
    assert sorted(before["Destination Port"]) == list(range(20000, 20040))
    ports = after["Destination Port"]
    assert len(after) == 42 and sorted(ports[ports >= 30000]) == list(range(30000, 30040))
    assert (ports == 9).sum() == 2  # both tick flows; the second one written by the meter at SIGQUIT


def _classify_in_background(store: Store, tmp_path: Path, source: Path, out: Path) -> Daemon:  # noqa: F811
    return Daemon(store, tmp_path, str(source), "-o", str(out), "serve.meter.flow_timeout=1",
                  command="classify")


def _interrupted(sensor: Daemon, sig: signal.Signals) -> tuple[int, int]:
    """(exit status, N of 'interrupted after N flows') after ``sig``; stderr is that one line."""
    status, stdout = sensor.stop(sig)
    lines = [line for line in sensor.lines if line.strip()]
    assert len(lines) == 1 and "Traceback" not in sensor.stderr, sensor.stderr
    assert stdout == ""  # no summary: a part of the capture must not read as the whole
    prefix = f"netsentry classify: interrupted by {sig.name} after "
    assert lines[0].startswith(prefix), lines[0]
    return status, int(lines[0].removeprefix(prefix).split()[0])


def test_sigint_during_classify_of_a_capture(store: Store, tmp_path: Path) -> None:  # noqa: F811
    out, fifo = tmp_path / "v.csv", tmp_path / "stream.pcap"
    out.write_text("an earlier run's verdicts\n")
    os.mkfifo(fifo)
    sensor = _classify_in_background(store, tmp_path, fifo, out)
    partial = tmp_path / "v.csv.partial"
    try:
        with _stream(sensor, fifo) as stream:
            stream.write(PCAP_HEADER + udp_flows(T0, 20000, 40) + tick(T0 + 10_000_000))
            wait_until(lambda: count_rows(partial) >= 40, 60)
            status, flows = _interrupted(sensor, signal.SIGINT)
    finally:
        if sensor.proc.poll() is None:
            sensor.stop()
    assert status == 130
    assert flows == 41  # the 40 judged, and the open flow the meter wrote when it was stopped
    assert len(read_verdicts(partial)) == 41 and f"verdicts are in {partial}" in sensor.stderr
    assert out.read_text() == "an earlier run's verdicts\n"


def test_sigterm_during_classify_of_a_flow_csv(store: Store, pcaps: Path, tmp_path: Path) -> None:  # noqa: F811
    meter(pcaps / "protocols/synscan.pcap", tmp_path / "meter.csv")
    header, *rows = (tmp_path / "meter.csv").read_bytes().splitlines(keepends=True)
    big = tmp_path / "big.csv"
    copies = 400_000 // len(rows) + 1
    big.write_bytes(header + b"".join(rows) * copies)  # seconds of work, in 8192-row batches
    out = tmp_path / "v.csv"
    sensor = _classify_in_background(store, tmp_path, big, out)
    partial = tmp_path / "v.csv.partial"
    try:
        wait_until(lambda: count_rows(partial) >= 8192, 120, every=0.05)
        status, flows = _interrupted(sensor, signal.SIGTERM)
    finally:
        if sensor.proc.poll() is None:
            sensor.stop()
    assert status == 143
    assert 8192 <= flows < len(rows) * copies and count_rows(partial) == flows
    assert not out.exists()
