"""Alerts under faults: crafted flow times, a full disk under the EVE sink, the EVE file's mode.

Everything real: a small tmpfs mounted for the test (filled mid-run, then freed), /dev/full, and
the alert manager with its committed config.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from serve.alerts import AlertConfigError, AlertManager
from serve.alerts.aggregate import batch_alerts
from serve.alerts.settings import parse_settings
from tests.disk import fill, small_tmpfs
from tests.serve.alert_data import ALERTS_CONFIG, alerts_config, verdict_frame
from tests.serve.alert_servers import wait_for

INT64_MAX = 2**63 - 1
LAST_MOMENT = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _eve_texts(path: Path) -> list[str]:
    """The EVE file's lines, as text (a torn last line shows as a line without its end)."""
    return path.read_bytes().decode().split("\n")[:-1] if path.exists() else []


def _frames(prefix: str, n: int):
    """One verdict frame of ``n`` DoS detections, each to its own destination (no two fold)."""
    return verdict_frame(*({"Destination IP": f"{prefix}.{i}"} for i in range(n)))


# --- crafted times (issue 20, item 15) ----------------------------------------------------------

def test_times_past_year_9999_are_clamped_and_counted() -> None:
    settings = parse_settings(yaml.safe_load(ALERTS_CONFIG.read_text()), {"eve"})
    detections = verdict_frame(
        {"Flow Duration": INT64_MAX, "Destination IP": "10.0.9.1"},            # int64 add overflows
        {"Timestamp": "9999-12-31 23:59:59.999000", "Destination IP": "10.0.9.2"},  # crosses 10000
        {"Timestamp": "0001-01-01 00:00:00.000000", "Flow Duration": INT64_MAX,
         "Destination IP": "10.0.9.3"},                                          # the widest span
        {"Destination IP": "10.0.9.4"},                                         # an ordinary flow
    )
    alerts, bad = batch_alerts(detections, settings)
    assert bad == 3
    by_dest = {a.dest_ip: a for a in alerts}
    assert by_dest["10.0.9.1"].flow_start == datetime(2017, 7, 6, 13, 40, 7, 419016, tzinfo=UTC)
    assert by_dest["10.0.9.1"].flow_end == by_dest["10.0.9.1"].last_seen == LAST_MOMENT
    assert by_dest["10.0.9.2"].flow_start == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert by_dest["10.0.9.2"].flow_end == LAST_MOMENT
    assert by_dest["10.0.9.3"].flow_start == datetime(1, 1, 1, tzinfo=UTC)
    assert by_dest["10.0.9.3"].flow_end == LAST_MOMENT
    assert by_dest["10.0.9.4"].flow_end == datetime(2017, 7, 6, 13, 40, 8, 919016, tzinfo=UTC)


def test_crafted_times_never_stop_the_alerts(tmp_path: Path) -> None:
    """Through the manager: every flow alerted, the EVE lines readable, the bad times counted."""
    manager = AlertManager(alerts_config(tmp_path))
    taken = [
        manager.submit(verdict_frame({"Flow Duration": INT64_MAX}, {"Destination IP": "10.0.9.9"})),
        manager.submit(verdict_frame({"Timestamp": "9999-12-31 23:59:59.999999",
                                      "Flow Duration": 2, "Source IP": "10.0.0.7"})),
    ]
    manager.close()
    assert taken == [2, 1]
    assert manager.bad_times == 2
    lines = [json.loads(t) for t in _eve_texts(tmp_path / "eve.json")]
    by_pair = {(e["src_ip"], e["dest_ip"]): e for e in lines}
    assert len(lines) == 3
    assert by_pair[("10.0.0.66", "10.0.0.2")]["flow"]["end"] == "9999-12-31T23:59:59.999999+0000"
    assert by_pair[("10.0.0.7", "10.0.0.2")]["netsentry"]["last_seen"] == "9999-12-31T23:59:59.999999+0000"
    assert by_pair[("10.0.0.66", "10.0.9.9")]["flow"]["end"] == "2017-07-06T13:40:08.919016+0000"
    assert manager.stats()["eve"]["sent"] == 3


# --- the EVE file's mode (issue 20, item 6) -----------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_eve_file_is_0640_by_default_and_after_rotation(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which gave 0644 before
    try:
        cfg = alerts_config(tmp_path)
        cfg["aggregation"] = {"window_s": 0}
        manager = AlertManager(cfg)
        eve = tmp_path / "eve.json"
        assert _mode(eve) == 0o640  # created at start, before any alert
        manager.submit(verdict_frame({}))
        assert wait_for(lambda: manager.stats()["eve"]["sent"] == 1)
        eve.rename(tmp_path / "eve.json.1")  # logrotate moves it away; the sink makes a new one
        manager.submit(verdict_frame({"Destination IP": "10.0.0.7"}))
        manager.close()
    finally:
        os.umask(old)
    assert _mode(eve) == 0o640 and _mode(tmp_path / "eve.json.1") == 0o640
    assert len(_eve_texts(eve)) == 1


@pytest.mark.parametrize(("configured", "expected"), [("0600", 0o600), ("0o644", 0o644), (0o600, 0o600)])
def test_eve_file_mode_is_configurable(tmp_path: Path, configured: object, expected: int) -> None:
    old = os.umask(0o077)  # the configured mode is what the file gets, whatever the umask
    try:
        cfg = alerts_config(tmp_path)
        cfg["sinks"]["eve"]["mode"] = configured
        manager = AlertManager(cfg)
        manager.close()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "eve.json") == expected


def test_an_existing_eve_file_keeps_its_mode(tmp_path: Path) -> None:
    """An admin's choice (logrotate's ``create 0644 ...``) is not overridden."""
    eve = tmp_path / "eve.json"
    eve.write_text("")
    eve.chmod(0o604)
    AlertManager(alerts_config(tmp_path)).close()
    assert _mode(eve) == 0o604


@pytest.mark.parametrize("mode", ["0999", "rw-r-----", "01640", 0o4750, "0440", True])
def test_a_bad_eve_mode_is_one_config_line(tmp_path: Path, mode: object) -> None:
    cfg = alerts_config(tmp_path)
    cfg["sinks"]["eve"]["mode"] = mode
    with pytest.raises(AlertConfigError, match=r"^alerts config: sinks\.eve\.mode must be") as info:
        AlertManager(cfg)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "eve.json").exists()


# --- a full disk under the EVE sink (issue 20, item 8) ------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for the test, unmounted after it."""
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        yield disk


def _disk_cfg(tmp_path: Path, disk: Path, attempts: int) -> dict:
    cfg = alerts_config(tmp_path)
    cfg["sinks"]["eve"]["path"] = str(disk / "eve.json")
    cfg["aggregation"] = {"window_s": 0}
    cfg["retry"] = {"attempts": attempts, "backoff_s": 0.02, "max_backoff_s": 0.05}
    return cfg


def test_a_disk_full_for_a_while_loses_and_repeats_no_alert(tmp_path: Path, small_disk: Path) -> None:
    """The disk fills mid-run with one page left (a batch is written in part), then is freed: every
    alert is in the file once, every line whole, and the counters say sent and retried."""
    manager = AlertManager(_disk_cfg(tmp_path, small_disk, attempts=1000))
    try:
        manager.submit(_frames("10.0.4", 10))
        assert wait_for(lambda: manager.stats()["eve"]["sent"] == 10)
        filler = fill(small_disk, leave=4096)
        manager.submit(_frames("10.0.5", 30))  # ~20 KB of lines for 4 KB of room
        assert wait_for(lambda: manager.stats()["eve"]["retried"] >= 30)  # several failed rounds
        filler.unlink()
        assert wait_for(lambda: manager.stats()["eve"]["sent"] == 40)
    finally:
        manager.close()
    texts = _eve_texts(small_disk / "eve.json")
    assert (small_disk / "eve.json").read_bytes().endswith(b"\n")
    assert len(texts) == len(set(texts)) == 40  # no alert written twice
    dests = sorted(json.loads(t)["dest_ip"] for t in texts)  # every line whole JSON
    assert dests == sorted([f"10.0.4.{i}" for i in range(10)] + [f"10.0.5.{i}" for i in range(30)])
    stats = manager.stats()["eve"]
    assert stats["sent"] == 40 and stats["failed"] == 0 and stats["dropped"] == 0
    assert stats["retried"] >= 30


def test_a_disk_that_stays_full_counts_what_failed(tmp_path: Path, small_disk: Path) -> None:
    manager = AlertManager(_disk_cfg(tmp_path, small_disk, attempts=3))
    manager.submit(_frames("10.0.4", 5))
    assert wait_for(lambda: manager.stats()["eve"]["sent"] == 5)
    fill(small_disk, leave=4096)
    manager.submit(_frames("10.0.5", 30))
    assert wait_for(lambda: sum(manager.stats()["eve"][k] for k in ("sent", "failed")) == 35)
    manager.close()
    stats = manager.stats()["eve"]
    texts = _eve_texts(small_disk / "eve.json")
    assert len(texts) == len(set(texts)) == stats["sent"]  # what is counted sent is in the file, once
    assert all(json.loads(t)["event_type"] == "alert" for t in texts)
    assert stats["failed"] > 0 and stats["sent"] + stats["failed"] == 35


def test_dev_full_fails_every_alert_and_closes_cleanly(tmp_path: Path) -> None:
    cfg = alerts_config(tmp_path)
    cfg["sinks"]["eve"]["path"] = "/dev/full"
    cfg["retry"] = {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.01}
    cfg["aggregation"] = {"window_s": 0}
    manager = AlertManager(cfg)
    for i in range(7):  # one small alert at a time: each would sit in a write buffer never flushed
        assert manager.submit(_frames(f"10.0.6.{i}", 1)) == 1
        assert wait_for(lambda n=i + 1: manager.stats()["eve"]["failed"] == n)
    manager.close()  # nothing left in a buffer for close() to trip over
    assert manager.stats()["eve"] == {"sent": 0, "failed": 7, "retried": 7, "dropped": 0, "summarized": 0}
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device, not replaced by a file
