"""``netsentry serve -i`` live, in network namespaces this test creates (prefix nsS).

A real nmap SYN scan crosses a veth while the sensor listens in the victim namespace: verdicts
and Prometheus counters move, SIGTERM flushes every open flow through the model and exits 0,
and the aggregated alert lands in the EVE file.  A meter killed with SIGKILL is restarted and
the restart is reported (log, metrics, summary).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.serve.mlflow_servers import free_port
from tests.serve.netns import ATTACKER_ADDR, VICTIM_ADDR, lab, needs_root_netns
from tests.serve.registered_model import METER
from tests.serve.sensor_run import Daemon, Store, read_verdicts
from tests.serve.test_classify import store  # noqa: F401 - the module's registered model

pytestmark = [
    needs_root_netns,
    pytest.mark.slow,
    pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)"),
]


def wait_until(check, timeout: float = 60, every: float = 0.5):  # noqa: ANN001, ANN201
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


def summary_counts(stdout: str) -> tuple[int, int, int]:
    """(flows judged, flows the meter emitted, restarts) from the sensor's summary."""
    m = re.search(r": (\d+) flows \(meter: \d+ packets, (\d+) flows emitted, .* (\d+) restarts\)", stdout)
    assert m, stdout
    return int(m[1]), int(m[2]), int(m[3])


def meter_child(pid: int) -> int:
    """The flowmeter process the sensor ``pid`` runs."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if Path(f"/proc/{child}/comm").read_text().strip() == "flowmeter":
                return int(child)
    raise AssertionError("no flowmeter child")


@pytest.mark.skipif(shutil.which("nmap") is None, reason="needs nmap (apt-get install nmap)")
def test_nmap_scan_alerts_metrics_and_sigterm_flush(store: Store, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    with lab() as net:
        # a refused port keeps its flow open (no teardown on RST in the clean profile): a short
        # flow timeout ends the scan's flows while the sensor runs
        sensor = Daemon(store, tmp_path, "-i", net.victim_if, "-o", "verdicts.csv",
                        f"serve.metrics.port={port}",
                        "serve.model.poll_seconds=0", "serve.meter.flow_timeout=5",
                        "serve.alerts.aggregation.window_s=1", prefix=net.exec_prefix(net.victim))
        try:
            sensor.wait_for("meter running")
            before = net.scrape(port)
            assert before["netsentry_flows_total"] == 0
            info = [k for k in before if k.startswith("netsentry_model_info{")]
            assert len(info) == 1 and 'name="netsentry"' in info[0] and 'version="1"' in info[0]
            assert 'profile="clean"' in info[0]
            scan = net.run(net.attacker, "nmap", "-sS", "-T4", "-Pn", "-n", "-p", "1-1000", VICTIM_ADDR)
            assert scan.returncode == 0, scan.stderr
            # the scan's flows end (RST) and are judged while the sensor runs
            after = wait_until(lambda: (m := net.scrape(port))["netsentry_flows_total"] >= 900 and m, 60)
            assert after['netsentry_verdicts_total{group="PortScan"}'] >= 900
            assert after["netsentry_detections_total"] >= 900
            assert after["netsentry_batch_seconds_count"] >= 1
            assert after["netsentry_meter_packets_total"] >= 2000
            assert after["netsentry_meter_restarts_total"] == 0
            # the aggregated alert leaves at the end of its (1 s) window, while the sensor runs
            sent = 'netsentry_alerts_total{outcome="sent",sink="eve"}'
            assert wait_until(lambda: net.scrape(port).get(sent, 0) >= 1, 30)
            net.udp_flows(41000, 5)  # still open (5 s timeout) when SIGTERM comes right after
        finally:
            status, stdout = sensor.stop(signal.SIGTERM)
    assert status == 0, sensor.stderr
    judged, emitted, restarts = summary_counts(stdout)
    assert judged == emitted >= 1005 and restarts == 0
    verdicts = read_verdicts(tmp_path / "verdicts.csv")
    assert len(verdicts) == judged
    assert not verdicts.duplicated(["Flow ID", "Timestamp"]).any()
    flushed = verdicts[verdicts["Destination Port"].between(41000, 41004)]
    assert len(flushed) == 5  # the open flows were written by the meter at SIGTERM and judged
    alerts = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    scans = [a for a in alerts if a["alert"]["signature"] == "NETSENTRY ML PortScan"]
    assert scans and scans[0]["src_ip"] == ATTACKER_ADDR and scans[0]["dest_ip"] == VICTIM_ADDR


def test_meter_killed_is_restarted_and_reported(store: Store, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    with lab() as net:
        sensor = Daemon(store, tmp_path, "-i", net.victim_if, "-o", "verdicts.csv",
                        f"serve.metrics.port={port}",
                        "serve.model.poll_seconds=0", "serve.meter.restart_backoff=[0.2,5]",
                        prefix=net.exec_prefix(net.victim))
        try:
            sensor.wait_for("meter running")
            os.kill(meter_child(sensor.proc.pid), signal.SIGKILL)
            died = sensor.wait_for("flow meter died")
            assert "killed by SIGKILL" in died and "restarting in 0.2 s" in died
            sensor.wait_for("meter running", count=2)
            assert net.scrape(port)["netsentry_meter_restarts_total"] == 1
            net.udp_flows(42000, 10)
        finally:
            status, stdout = sensor.stop(signal.SIGTERM)
    assert status == 0, sensor.stderr
    judged, emitted, restarts = summary_counts(stdout)
    assert restarts == 1 and judged == emitted >= 10
    verdicts = read_verdicts(tmp_path / "verdicts.csv")
    ports = verdicts["Destination Port"]
    assert sorted(ports[ports >= 42000]) == list(range(42000, 42010))  # after the restart: each judged once
