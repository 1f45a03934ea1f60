"""The alias moves mid-stream on a real ``mlflow server`` (SQLite and PostgreSQL backends).

``netsentry serve -r FIFO`` replays a capture the test writes as it goes: a first burst of flows
is judged by version 1; the alias moves to version 2; the sensor swaps between batches; a second
burst is judged by version 2.  No flow is lost or doubled: the verdict count equals the meter's
``flows_emitted``, each flow appears once, and the versions column shows which version judged
which burst.  A sensor pointed at another, unreachable registry does not run the model cached from this one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.serve.mlflow_servers import MlflowServer, free_port, register_model, unique_name
from tests.serve.pcap_stream import PCAP_HEADER, open_fifo_for_writing, tick, udp_flows
from tests.serve.registered_model import METER
from tests.serve.sensor_run import Daemon, Store, netsentry, read_verdicts
from tests.serve.test_serve_live import summary_counts, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)"),
]

T0 = 1_700_000_000_000_000  # µs


def _rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.parametrize("backend", ["mlflow_sqlite_server", "mlflow_postgres_server"])
def test_alias_swap_mid_stream_loses_and_doubles_nothing(backend: str, request: pytest.FixtureRequest,
                                                         tmp_path: Path, pcaps: Path) -> None:
    server: MlflowServer = request.getfixturevalue(backend)
    name = unique_name("swap")
    v1 = register_model(server.uri, name, profile="clean", seed=1)
    store = Store(server.uri, tmp_path / "cache", tmp_path)
    out, fifo = tmp_path / "verdicts.csv", tmp_path / "stream.pcap"
    os.mkfifo(fifo)
    sensor = Daemon(store, tmp_path, "-r", str(fifo), "--model", f"models:/{name}@champion", "-o", str(out),
                    "serve.model.poll_seconds=0.5", "serve.meter.flow_timeout=1")
    try:
        try:
            stream = open_fifo_for_writing(str(fifo), lambda: sensor.proc.poll() is None)
        except OSError as exc:
            raise AssertionError(f"the sensor did not open the stream:\n{sensor.stderr}") from exc
        with stream:
            # burst 1, then a later flow whose packets end burst 1 on the meter's clock
            stream.write(PCAP_HEADER + udp_flows(T0, 20000, 40) + tick(T0 + 10_000_000))
            wait_until(lambda: _rows(out) >= 40, 60)
            v2 = register_model(server.uri, name, profile="clean", seed=2)  # the alias moves to v2
            assert v2 != v1
            sensor.wait_for(f"model swapped: version {v1} -> {v2}", 60)
            stream.write(udp_flows(T0 + 20_000_000, 30000, 40))
        # end of the stream: the meter writes the open flows and exits; so does the sensor
        status, stdout = sensor.stop(None)
    finally:
        if sensor.proc.poll() is None:
            sensor.stop()
    assert status == 0, sensor.stderr
    judged, emitted, _ = summary_counts(stdout)
    verdicts = read_verdicts(out)
    assert len(verdicts) == judged == emitted == 81
    assert not verdicts.duplicated(["Flow ID", "Timestamp"]).any()
    ports = verdicts["Destination Port"]
    first, second = verdicts[ports.between(20000, 20039)], verdicts[ports >= 30000]
    assert len(first) == 40 and len(second) == 40
    assert set(first["model_version"]) == {v1} and set(second["model_version"]) == {v2}
    assert set(verdicts["model_version"]) == {v1, v2}
    assert f"version {v1} -> {v2}" in stdout

    if backend == "mlflow_sqlite_server":
        # another registry, unreachable: the model cached from this one is not silently run
        # (the start from the cache while the same server is away: test_model_servers.py)
        other = f"http://127.0.0.1:{free_port()}"
        away = Store(other, store.cache, tmp_path)
        capture = str(pcaps / "cicids2017/WebattackSQLinj.pcap")
        replay = netsentry(away, tmp_path / "away", "serve", "-r", capture,
                           "--model", f"models:/{name}@champion", "log.level=WARNING")
        assert replay.returncode == 1, replay.stderr
        assert f"tracking server {other} unreachable" in replay.stderr
        assert f"no cached model for models:/{name}@champion from {other}" in replay.stderr
