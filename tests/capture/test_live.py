"""Live capture on a veth pair between two network namespaces this test creates (root only).

The meter listens with ``-i`` in one namespace while the other sends known UDP traffic; flows
must appear with the right packet counts per direction, idle flows must be written by the wall
clock while the meter still runs, and SIGINT must flush every open flow and exit 0.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.schema import FLOW_COLUMNS

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns)"
)

TX_ADDR, RX_ADDR = "10.77.0.1", "10.77.0.2"

# Sends `count` UDP datagrams to RX_ADDR:port and reads as many echoes back.
SENDER = """
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.1", 40000 + port % 1000))
s.settimeout(10)  # a loaded machine starts the echo server slowly
for i in range(count):
    s.sendto(b"x" * (10 + i), ("10.77.0.2", port))
    s.recvfrom(2048)
    time.sleep(0.01)
"""
ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.2", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data[:5], peer)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth() -> Iterator[tuple[str, str, str]]:
    """Namespaces tx/rx joined by a veth pair; yields (tx namespace, rx namespace, rx interface)."""
    tag = uuid.uuid4().hex[:6]
    # nsM: this part's namespace/veth prefix (engineers share the machine)
    tx, rx, if_tx, if_rx = f"nsMtx{tag}", f"nsMrx{tag}", f"nsMvtx{tag}", f"nsMvrx{tag}"
    try:
        _ip("netns", "add", tx)
        _ip("netns", "add", rx)
        _ip("link", "add", if_tx, "netns", tx, "type", "veth", "peer", "name", if_rx, "netns", rx)
        for ns, ifname, addr in ((tx, if_tx, TX_ADDR), (rx, if_rx, RX_ADDR)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            _ip("-n", ns, "link", "set", ifname, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield tx, rx, if_rx
    finally:
        for ns in (tx, rx):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _in(ns: str, *cmd: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_live_flows_idle_expiry_and_sigint_flush(meter_bin: Path, veth, tmp_path: Path) -> None:
    tx, rx, if_rx = veth
    out, stats = tmp_path / "flows.csv", tmp_path / "stats.json"
    meter = _in(rx, str(meter_bin), "-i", if_rx, "-f", "udp", "-o", str(out), "--stats-json", str(stats),
                "-q", "--flow-timeout", "2", stderr=subprocess.PIPE, text=True)
    echo = _in(rx, sys.executable, "-c", ECHO, "5001")
    try:
        time.sleep(1.5)  # the meter and the echo server are listening
        # flow 1: 7 datagrams each way, then silence: the wall clock must expire it
        subprocess.run(["ip", "netns", "exec", tx, sys.executable, "-c", SENDER, "5001", "7"], check=True)
        deadline = time.time() + 8
        while time.time() < deadline and not (out.exists() and len(_rows(out)) >= 1):
            time.sleep(0.2)
        early = _rows(out)
        assert len(early) == 1, "an idle flow was not written while the meter was running"
        # flow 2: still open when SIGINT arrives; the flush must write it
        echo2 = _in(rx, sys.executable, "-c", ECHO, "5002")
        time.sleep(0.5)
        subprocess.run(["ip", "netns", "exec", tx, sys.executable, "-c", SENDER, "5002", "4"], check=True)
        echo2.kill()
        meter.send_signal(signal.SIGINT)
        assert meter.wait(timeout=10) == 0, meter.stderr.read() if meter.stderr else ""
    finally:
        echo.kill()
        if meter.poll() is None:
            meter.kill()
    with out.open() as fh:
        assert next(csv.reader(fh)) == list(FLOW_COLUMNS)
    rows = {int(r["Destination Port"]): r for r in _rows(out)}
    assert set(rows) == {5001, 5002}
    for port, n in ((5001, 7), (5002, 4)):
        r = rows[port]
        assert (r["Source IP"], r["Destination IP"], r["Protocol"]) == (TX_ADDR, RX_ADDR, "17")
        assert int(r["Total Fwd Packets"]) == n and int(r["Total Backward Packets"]) == n
        assert int(r["Total Length of Fwd Packets"]) == sum(10 + i for i in range(n))
        assert int(r["Total Length of Bwd Packets"]) == 5 * n
    s = json.loads(stats.read_text())
    assert s["flows_emitted"] == 2 and s["kernel_drops"] == 0 and s["packets"] == s["parsed"] == 22


# Sends `count` UDP datagrams to RX_ADDR:port, no answer expected.
BURST = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(b"y" * 20, ("10.77.0.2", int(sys.argv[1])))
"""


class LineReader(threading.Thread):
    """Collect the lines of a pipe as they arrive, noting whether the meter was still running."""

    def __init__(self, stream, proc: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.stream, self.proc, self.lines = stream, proc, []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append((line.rstrip("\n"), self.proc.poll() is None))


def test_live_rows_reach_a_pipe_reader_while_running(meter_bin: Path, veth) -> None:
    """Default output (stdout) to a pipe: a finished flow arrives while the meter runs; with
    --stats-interval the statistics stream on stderr as JSON lines; SIGTERM ends with a final one."""
    tx, rx, if_rx = veth
    meter = _in(rx, str(meter_bin), "-i", if_rx, "-f", "udp", "--flow-timeout", "1",
                "--stats-interval", "0.5", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rows, stats = LineReader(meter.stdout, meter), LineReader(meter.stderr, meter)
    rows.start()
    stats.start()
    try:
        time.sleep(1.5)
        subprocess.run(["ip", "netns", "exec", tx, sys.executable, "-c", BURST, "6001", "5"], check=True)
        deadline = time.time() + 10
        while time.time() < deadline and len(rows.lines) < 2:  # header + the flow
            time.sleep(0.1)
        assert len(rows.lines) == 2 and rows.lines[1][1], "the finished flow did not reach the reader"
        meter.send_signal(signal.SIGTERM)
        assert meter.wait(timeout=10) == 0
    finally:
        if meter.poll() is None:
            meter.kill()
    rows.join(5)
    stats.join(5)
    assert rows.lines[0][0].split(",") == list(FLOW_COLUMNS)
    flow = dict(zip(FLOW_COLUMNS, rows.lines[1][0].split(","), strict=True))
    assert (flow["Destination Port"], flow["Total Fwd Packets"], flow["Total Backward Packets"]) == \
        ("6001", "5", "0")
    lines = [json.loads(text) for text, _running in stats.lines]
    assert [line["final"] for line in lines].count(True) == 1 and lines[-1]["final"] is True
    running = [line for (_text, alive), line in zip(stats.lines, lines, strict=True)
               if alive and not line["final"]]
    assert running and running[0]["flows_emitted"] == 0  # lines came while the capture was on
    assert lines[-1]["flows_emitted"] == 1 and lines[-1]["packets"] == 5 and lines[-1]["kernel_drops"] == 0
