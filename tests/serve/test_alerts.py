"""AlertManager and the EVE sink: selection, thresholds, aggregation, and Suricata's alert shape."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from serve.alerts import AlertConfigError, AlertManager
from serve.alerts.alert import eve_time, flow_id
from serve.verdict import BENIGN, UNJUDGED
from tests.serve.alert_data import alerts_config, verdict_frame

EVE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000$")


def _eve_lines(tmp_path: Path) -> list[dict]:
    path = tmp_path / "eve.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _run(tmp_path: Path, *frames, **cfg_changes) -> tuple[list[int], list[dict], dict]:
    """Submit ``frames`` to a manager with the committed config, close it, return what came out."""
    cfg = alerts_config(tmp_path)
    for key, value in cfg_changes.items():
        cfg[key] = value
    manager = AlertManager(cfg)
    taken = [manager.submit(frame) for frame in frames]
    manager.close()
    return taken, _eve_lines(tmp_path), manager.stats()


def test_eve_line_carries_every_suricata_field(tmp_path: Path) -> None:
    taken, lines, stats = _run(tmp_path, verdict_frame({}))
    assert taken == [1]
    assert stats["eve"] == {"sent": 1, "failed": 0, "retried": 0, "dropped": 0, "summarized": 0}
    (eve,) = lines
    assert eve["timestamp"] == "2017-07-06T13:40:07.419016+0000"
    assert EVE_TIME.match(eve["timestamp"])
    assert eve["event_type"] == "alert"
    assert eve["flow_id"] == flow_id("10.0.0.66-10.0.0.2-40000-80-6", "2017-07-06 13:40:07.419016")
    assert isinstance(eve["flow_id"], int) and 0 < eve["flow_id"] < 2**53
    assert (eve["src_ip"], eve["src_port"], eve["dest_ip"], eve["dest_port"], eve["proto"]) == (
        "10.0.0.66", 40000, "10.0.0.2", 80, "TCP")
    assert eve["alert"] == {
        "action": "allowed", "gid": 1, "signature_id": 1000002, "rev": 1,
        "signature": "NETSENTRY ML DoS", "category": "Attempted Denial of Service", "severity": 2,
    }
    assert eve["flow"] == {
        "pkts_toserver": 5, "pkts_toclient": 4, "bytes_toserver": 320, "bytes_toclient": 1200,
        "start": "2017-07-06T13:40:07.419016+0000", "end": "2017-07-06T13:40:08.919016+0000",
    }
    assert eve["netsentry"] == {
        "group": "DoS", "probability": 0.93, "model": "netsentry", "version": "3", "count": 1,
        "first_seen": "2017-07-06T13:40:07.419016+0000", "last_seen": "2017-07-06T13:40:08.919016+0000",
    }
    # the keys Suricata's own alerts have keep their names and order at the top level
    assert list(eve)[:9] == ["timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip",
                             "dest_port", "proto", "alert"]


def test_eve_time_is_utc_without_colon_in_the_offset() -> None:
    assert eve_time(datetime(2017, 7, 6, 13, 40, 7, 419016)) == "2017-07-06T13:40:07.419016+0000"
    local = datetime(2017, 7, 6, 15, 40, 7, 5, tzinfo=timezone(timedelta(hours=2)))
    assert eve_time(local) == "2017-07-06T13:40:07.000005+0000"
    # many moments, many sharing a second (the text up to the second is reused), vs strftime
    rng = np.random.default_rng(7)
    start = datetime(2017, 7, 6, tzinfo=UTC)
    for offset_us in rng.integers(0, 10_000 * 1_000_000, 20_000).tolist():
        moment = start + timedelta(microseconds=offset_us)
        assert eve_time(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def test_flow_id_is_stable_and_distinguishes_flows() -> None:
    a = flow_id("10.0.0.1-10.0.0.2-1-2-6", "2017-07-06 13:40:07.419016")
    assert a == flow_id("10.0.0.1-10.0.0.2-1-2-6", "2017-07-06 13:40:07.419016")
    assert a != flow_id("10.0.0.1-10.0.0.2-1-2-6", "2017-07-06 13:40:07.419017")
    assert a != flow_id("10.0.0.1-10.0.0.2-1-3-6", "2017-07-06 13:40:07.419016")


def test_proto_names_and_icmp_without_ports(tmp_path: Path) -> None:
    frame = verdict_frame(
        {"Protocol": 17, "Destination IP": "10.0.0.3"},
        {"Protocol": 1, "Destination IP": "10.0.0.4", "Source Port": 0, "Destination Port": 0},
        {"Protocol": 47, "Destination IP": "10.0.0.5"},
    )
    _, lines, _ = _run(tmp_path, frame)
    by_dest = {line["dest_ip"]: line for line in lines}
    assert by_dest["10.0.0.3"]["proto"] == "UDP" and by_dest["10.0.0.3"]["dest_port"] == 80
    assert by_dest["10.0.0.4"]["proto"] == "ICMP"
    assert "src_port" not in by_dest["10.0.0.4"] and "dest_port" not in by_dest["10.0.0.4"]
    assert by_dest["10.0.0.5"]["proto"] == "47"


def test_only_attacks_over_their_threshold_alert(tmp_path: Path) -> None:
    frame = verdict_frame(
        {"predicted": BENIGN, "probability": 0.99},
        {"predicted": UNJUDGED, "probability": np.nan},
        {"predicted": "DoS", "probability": np.nan},
        {"predicted": "DoS", "probability": 0.49, "Destination IP": "10.0.0.10"},
        {"predicted": "DoS", "probability": 0.5, "Destination IP": "10.0.0.11"},
        {"predicted": "PortScan", "probability": 0.85, "Destination IP": "10.0.0.12"},
        {"predicted": "PortScan", "probability": 0.95, "Destination IP": "10.0.0.13"},
        {"predicted": "Bot", "probability": 0.31, "Destination IP": "10.0.0.14"},
    )
    thresholds = {"default": 0.5, "PortScan": 0.9, "Bot": 0.3}
    taken, lines, _ = _run(tmp_path, frame, thresholds=thresholds)
    assert taken == [3]
    assert sorted(line["dest_ip"] for line in lines) == ["10.0.0.11", "10.0.0.13", "10.0.0.14"]
    assert {line["dest_ip"]: line["alert"]["signature_id"] for line in lines} == {
        "10.0.0.11": 1000002, "10.0.0.13": 1000003, "10.0.0.14": 1000005}


def test_group_without_rule_gets_the_default_signature(tmp_path: Path) -> None:
    _, (eve,), _ = _run(tmp_path, verdict_frame({"predicted": "Cryptojacking"}))
    assert eve["alert"]["signature_id"] == 1000000
    assert eve["alert"]["signature"] == "NETSENTRY ML Cryptojacking"
    assert eve["alert"]["category"] == "Misc Attack"


def test_same_source_destination_group_fold_into_one_alert(tmp_path: Path) -> None:
    batch1 = verdict_frame(
        {"Timestamp": "2017-07-06 13:40:09.000000", "Source Port": 40001, "probability": 0.7},
        {"Timestamp": "2017-07-06 13:40:08.000000", "Source Port": 40002, "probability": 0.8,
         "Flow ID": "first", "Flow Duration": 10},
        {"Timestamp": "2017-07-06 13:40:08.500000", "predicted": "PortScan"},
        {"Timestamp": "2017-07-06 13:40:08.500000", "Destination IP": "10.0.0.99"},
    )
    batch2 = verdict_frame(
        {"Timestamp": "2017-07-06 13:41:00.000000", "Flow Duration": 3_000_000, "probability": 0.6},
    )
    taken, lines, stats = _run(tmp_path, batch1, batch2)
    assert taken == [4, 1]
    assert stats["eve"]["sent"] == 3
    key = {(line["dest_ip"], line["netsentry"]["group"]): line for line in lines}
    dos = key[("10.0.0.2", "DoS")]
    assert dos["netsentry"]["count"] == 3
    assert dos["netsentry"]["first_seen"] == "2017-07-06T13:40:08.000000+0000"
    assert dos["netsentry"]["last_seen"] == "2017-07-06T13:41:03.000000+0000"
    assert dos["netsentry"]["probability"] == 0.8
    # identifiers and flow{} are those of the first flow of the aggregate
    assert dos["src_port"] == 40002
    assert dos["flow_id"] == flow_id("first", "2017-07-06 13:40:08.000000")
    assert dos["flow"]["end"] == "2017-07-06T13:40:08.000010+0000"
    assert key[("10.0.0.2", "PortScan")]["netsentry"]["count"] == 1
    assert key[("10.0.0.99", "DoS")]["netsentry"]["count"] == 1


def test_zero_window_emits_each_batch_on_its_own(tmp_path: Path) -> None:
    frame = verdict_frame({}, {})
    _, lines, _ = _run(tmp_path, frame, frame, aggregation={"window_s": 0})
    assert [line["netsentry"]["count"] for line in lines] == [2, 2]


def test_due_aggregates_leave_without_flush(tmp_path: Path) -> None:
    cfg = alerts_config(tmp_path)
    cfg["aggregation"] = {"window_s": 0.2}
    manager = AlertManager(cfg)
    try:
        assert manager.submit(verdict_frame({}, {}, {})) == 3
        for _ in range(200):  # the timer thread emits it; no flush(), no further batch
            if _eve_lines(tmp_path):
                break
            time.sleep(0.05)
        assert [line["netsentry"]["count"] for line in _eve_lines(tmp_path)] == [3]
    finally:
        manager.close()


def test_open_aggregates_are_bounded(tmp_path: Path) -> None:
    frame = verdict_frame(*({"Destination IP": f"10.0.1.{i}"} for i in range(5)))
    cfg = alerts_config(tmp_path)
    cfg["aggregation"] = {"window_s": 3600, "max_open": 2}
    manager = AlertManager(cfg)
    manager.submit(frame)
    for _ in range(200):  # the three oldest leave at once, before any flush
        if len(_eve_lines(tmp_path)) >= 3:
            break
        time.sleep(0.05)
    assert [line["dest_ip"] for line in _eve_lines(tmp_path)] == ["10.0.1.0", "10.0.1.1", "10.0.1.2"]
    manager.close()
    assert len(_eve_lines(tmp_path)) == 5


def test_eve_file_is_reopened_after_rotation(tmp_path: Path) -> None:
    cfg = alerts_config(tmp_path)
    cfg["aggregation"] = {"window_s": 0}
    manager = AlertManager(cfg)
    manager.submit(verdict_frame({}))
    for _ in range(200):
        if _eve_lines(tmp_path):
            break
        time.sleep(0.05)
    (tmp_path / "eve.json").rename(tmp_path / "eve.json.1")
    manager.submit(verdict_frame({"Destination IP": "10.0.0.7"}))
    manager.close()
    assert [line["dest_ip"] for line in _eve_lines(tmp_path)] == ["10.0.0.7"]
    assert len((tmp_path / "eve.json.1").read_text().splitlines()) == 1


def test_empty_and_benign_batches_take_nothing(tmp_path: Path) -> None:
    taken, lines, stats = _run(tmp_path, verdict_frame(), verdict_frame({"predicted": BENIGN}))
    assert taken == [0, 0]
    assert lines == []
    assert stats["eve"]["sent"] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"thresholds": {"default": 1.5}}, "thresholds.default must be between 0.0 and 1.0"),
        ({"thresholds": {"DoS": "high"}}, "thresholds.DoS must be a number"),
        ({"sinks": {"x": {"enabled": True, "type": "pigeon"}}}, "sinks.x has unknown type 'pigeon'"),
        ({"sinks": {"eve": {"enabled": True}}}, "sink option 'path' is required"),
        ({"rules": {"DoS": {"severity": 1}}}, "rules.DoS.sid is missing"),
        ({"aggregation": {"window_s": -1}}, "aggregation.window_s must be between"),
        ({"retry": {"attempts": 0}}, "retry.attempts must be between 1"),
        ({"sinks": {"syslog": {"enabled": True, "transport": "pigeon"}}}, "syslog transport must be udp"),
        ({"sinks": {"syslog": {"enabled": True, "facility": "local9"}}}, "unknown syslog facility 'local9'"),
        ({"sinks": {"syslog": {"enabled": True, "port": "abc"}}}, "sinks.syslog: invalid literal for int()"),
        ({"sinks": {"email": {"enabled": True, "to": []}}}, "sink option 'to' is required"),
        ({"sinks": {"email": {"enabled": True, "to": "a@b", "ssl": True, "starttls": True}}},
         "email starttls and ssl exclude each other"),
        ({"sinks": {"webhook": {"enabled": True, "url": "ftp://x/y"}}}, "webhook url must be http(s)://host/"),
        ({"sinks": {"webhook": {"enabled": True, "url": "file:///etc/passwd"}}}, "webhook url must be http(s)://"),
        ({"sinks": {"email": {"enabled": True, "rate_limit": {"max": 0}}}}, "sinks.email.rate_limit.max"),
    ],
)
def test_config_mistakes_are_one_clear_line(tmp_path: Path, change: dict, message: str) -> None:
    cfg = alerts_config(tmp_path)
    cfg.update(change)
    with pytest.raises(AlertConfigError, match=re.escape(message)) as info:
        AlertManager(cfg)
    assert "\n" not in str(info.value)


def test_unwritable_eve_path_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("")
    cfg = alerts_config(tmp_path)
    cfg["sinks"]["eve"]["path"] = str(tmp_path / "plain-file" / "eve.json")
    with pytest.raises(AlertConfigError, match=r"cannot write the EVE file .*plain-file/eve.json: "):
        AlertManager(cfg)


def test_committed_config_enables_only_eve(tmp_path: Path) -> None:
    manager = AlertManager(alerts_config(tmp_path))
    try:
        assert list(manager.stats()) == ["eve"]
    finally:
        manager.close()


def test_sensor_config_and_command_line_overrides_reach_the_alerts(tmp_path: Path) -> None:
    from serve.config import load_config

    cfg = load_config([
        "serve.alerts.thresholds.PortScan=0.9",
        "serve.alerts.thresholds={Brute Force: 0.8}",
        "+serve.alerts.thresholds.Cryptojacking=0.7",
        "serve.alerts.sinks.syslog.enabled=true",
        f"serve.alerts.sinks.eve.path={tmp_path / 'eve.json'}",
    ])
    manager = AlertManager(cfg["serve"]["alerts"])
    try:
        assert list(manager.stats()) == ["eve", "syslog"]
        groups = ("PortScan", "Brute Force", "Cryptojacking", "DoS")
        thresholds = {g: manager.settings.threshold(g) for g in groups}
        assert thresholds == {"PortScan": 0.9, "Brute Force": 0.8, "Cryptojacking": 0.7, "DoS": 0.5}
    finally:
        manager.close()


def test_a_flood_of_distinct_aggregates_is_written_whole_and_in_order(tmp_path: Path) -> None:
    """20,000 detections from 20,000 sources (a spoofed flood: no two fold) past max_open: the EVE
    sink takes what queued up in one write, so every alert arrives, once, in order, and each
    counter moves by alerts, not by writes."""
    n = 20_000
    frame = verdict_frame(*({"Source IP": f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"} for i in range(n)))
    cfg = alerts_config(tmp_path)
    cfg["aggregation"] = {"window_s": 3600, "max_open": 100}
    manager = AlertManager(cfg)
    for start in range(0, n, 1000):  # batches as the flow path submits them
        assert manager.submit(frame.iloc[start:start + 1000]) == 1000
    manager.close(timeout=30)
    lines = _eve_lines(tmp_path)
    assert [line["src_ip"] for line in lines] == frame["Source IP"].tolist()
    assert manager.stats()["eve"] == {"sent": n, "failed": 0, "retried": 0, "dropped": 0, "summarized": 0}


def test_a_failed_eve_write_counts_every_alert_it_held(tmp_path: Path) -> None:
    cfg = alerts_config(tmp_path)
    cfg["aggregation"] = {"window_s": 0}
    cfg["retry"] = {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.01}
    manager = AlertManager(cfg)
    (tmp_path / "eve.json").unlink()
    (tmp_path / "eve.json").mkdir()  # the path is now a folder: every write fails
    manager.submit(verdict_frame(*({"Destination IP": f"10.0.3.{i}"} for i in range(50))))
    manager.close(timeout=10)
    stats = manager.stats()["eve"]
    assert stats["sent"] == 0 and stats["failed"] == 50 and stats["retried"] == stats["failed"]
