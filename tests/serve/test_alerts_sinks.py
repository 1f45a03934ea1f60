"""The syslog, e-mail and webhook sinks against real servers on loopback, and failing sinks."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from serve.alerts import AlertConfigError, AlertManager
from serve.cli import sink_counts_text
from tests.serve.alert_data import alerts_config, verdict_frame
from tests.serve.alert_servers import (
    HOST,
    HttpCollector,
    SilentServer,
    SmtpServer,
    TcpCollector,
    UdpCollector,
    free_port,
    self_signed_cert,
    wait_for,
)

SYSLOG_LINE = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<version>\d) (?P<timestamp>\S+) (?P<hostname>\S+) (?P<app>\S+) "
    r"(?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|\[(?:[^\]\\]|\\.)*\]) (?P<msg>.*)$"
)
SD_PARAM = re.compile(r'(\S+?)="((?:[^"\\]|\\.)*)"')


def counts(**nonzero: int) -> dict[str, int]:
    """A sink's stats: the given counters, every other one 0."""
    return {k: nonzero.get(k, 0) for k in ("sent", "failed", "retried", "dropped", "summarized")}


def parse_syslog(line: bytes) -> dict[str, Any]:
    """Split an RFC 5424 message into its header fields, SD-ID, SD params and MSG."""
    match = SYSLOG_LINE.match(line.decode())
    assert match, f"not RFC 5424: {line!r}"
    fields: dict[str, Any] = match.groupdict()
    sd = fields.pop("sd")
    fields["sd_id"] = sd[1:].split(" ", 1)[0]
    fields["params"] = {k: re.sub(r"\\(.)", r"\1", v) for k, v in SD_PARAM.findall(sd)}
    return fields


def _flood(src: str = "10.0.0.66", flows: int = 10_000, destinations: int = 1000):
    """``flows`` PortScan detections from ``src`` spread over ``destinations`` addresses."""
    rows = [
        {"Source IP": src, "Destination IP": f"10.1.{(i % destinations) // 250}.{(i % destinations) % 250}",
         "Destination Port": 1 + i % 65000, "predicted": "PortScan", "probability": 0.97,
         "Timestamp": f"2017-07-07 10:{(i // 1000) % 60:02d}:{(i // 10) % 60:02d}.{i % 1000:06d}"}
        for i in range(flows)
    ]
    return [verdict_frame(*rows[i:i + 2000]) for i in range(0, flows, 2000)]


# --- syslog -----------------------------------------------------------------------------------

def test_syslog_udp_lines_are_rfc5424(tmp_path: Path) -> None:
    with UdpCollector() as collector:
        cfg = alerts_config(tmp_path, syslog={"host": HOST, "port": collector.port, "hostname": "sensor-1"})
        manager = AlertManager(cfg)
        manager.submit(verdict_frame(
            {}, {"Source Port": 40001}, {"predicted": "PortScan", "Destination IP": "10.0.0.9"}))
        manager.close()
        assert wait_for(lambda: len(collector.datagrams) == 2)
    assert manager.stats()["syslog"]["sent"] == 2
    lines = {parse_syslog(d)["params"]["group"]: parse_syslog(d) for d in collector.datagrams}
    dos = lines["DoS"]
    assert int(dos["pri"]) == 16 * 8 + 3  # local0, error (alert severity 2)
    assert int(lines["PortScan"]["pri"]) == 16 * 8 + 4  # severity 3 -> warning
    assert dos["version"] == "1"
    stamp = datetime.fromisoformat(dos["timestamp"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert dos["timestamp"].endswith("Z")
    header = (dos["hostname"], dos["app"], dos["procid"], dos["msgid"])
    assert header == ("sensor-1", "netsentry", str(os.getpid()), "ALERT")
    assert dos["sd_id"] == "netsentry@32473"
    assert dos["params"] | {} == {
        "group": "DoS", "src": "10.0.0.66", "dst": "10.0.0.2", "proto": "TCP", "count": "2",
        "probability": "0.9300", "sid": "1000002", "severity": "2", "flow_id": dos["params"]["flow_id"],
        "first_seen": "2017-07-06T13:40:07.419016+0000", "last_seen": "2017-07-06T13:40:08.919016+0000",
        "model": "netsentry", "version": "3",
    }
    assert int(dos["params"]["flow_id"]) > 0
    assert dos["msg"] == "DoS from 10.0.0.66 to 10.0.0.2 (2 flows, p=0.93, severity 2)"


def test_syslog_tcp_uses_octet_counting(tmp_path: Path) -> None:
    with TcpCollector() as collector:
        cfg = alerts_config(tmp_path, syslog={"host": HOST, "port": collector.port, "transport": "tcp",
                                              "facility": "daemon"})
        manager = AlertManager(cfg)
        manager.submit(verdict_frame({}, {"Destination IP": "10.0.0.5"}))
        manager.close()
        assert wait_for(lambda: collector.data.count(b"netsentry") >= 2)
    data = bytes(collector.data)
    frames = []
    while data:  # RFC 6587: MSG-LEN SP SYSLOG-MSG, nothing else between frames
        length, _, rest = data.partition(b" ")
        frames.append(rest[: int(length)])
        data = rest[int(length):]
    parsed = [parse_syslog(f) for f in frames]
    assert sorted(p["params"]["dst"] for p in parsed) == ["10.0.0.2", "10.0.0.5"]
    assert {int(p["pri"]) for p in parsed} == {3 * 8 + 3}


def test_rate_limited_syslog_and_webhook_send_a_summary(tmp_path: Path) -> None:
    limit = {"max": 1, "per_s": 3600}
    frame = verdict_frame(*({"Destination IP": f"10.0.2.{i}", "predicted": g}
                            for i, g in enumerate(["DoS", "DoS", "Bot", "DoS"])))
    with UdpCollector() as syslog, HttpCollector() as http:
        cfg = alerts_config(tmp_path, syslog={"host": HOST, "port": syslog.port, "rate_limit": limit},
                            webhook={"url": http.url(), "rate_limit": limit})
        manager = AlertManager(cfg)
        manager.submit(frame)
        manager.close(timeout=20)
        assert wait_for(lambda: len(syslog.datagrams) == 2)
    for sink in ("syslog", "webhook"):
        assert manager.stats()[sink] == counts(sent=2, summarized=3)
    first, summary = (parse_syslog(d) for d in syslog.datagrams)
    assert (first["msgid"], first["params"]["dst"]) == ("ALERT", "10.0.2.0")
    assert summary["msgid"] == "SUMMARY" and int(summary["pri"]) == 16 * 8 + 5  # notice
    assert summary["params"] == {"alerts": "3", "count": "3"}
    assert summary["msg"] == "3 more alert(s) held back by the rate limit: 3 flows (DoS 2, Bot 1)"
    alert, held = http.posts
    assert alert["event_type"] == "alert" and alert["dest_ip"] == "10.0.2.0"
    assert held["event_type"] == "netsentry_summary"
    assert held["netsentry"]["alerts"] == 3 and held["netsentry"]["count"] == 3
    assert held["netsentry"]["groups"] == {"DoS": 2, "Bot": 1}
    assert held["netsentry"]["top_sources"] == {"10.0.0.66": 3}


# --- e-mail -----------------------------------------------------------------------------------

def _email_cfg(tmp_path: Path, port: int, **extra: Any) -> dict:
    return alerts_config(tmp_path, email={"host": HOST, "port": port, "to": ["soc@example.org"],
                                          "from": "sensor@example.org", **extra})


def test_email_carries_the_aggregated_alert(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        manager = AlertManager(_email_cfg(tmp_path, smtp.port))
        manager.submit(verdict_frame({}, {"Timestamp": "2017-07-06 13:41:00.000000"}, {"probability": 0.99}))
        manager.close(timeout=20)
        assert manager.stats()["email"] == counts(sent=1)
        (msg,) = smtp.messages
        assert smtp.inbox.recipients == [["soc@example.org"]]
    # a subject longer than 78 characters is folded; unfolding leaves the folding space
    subject = msg["Subject"].strip()
    assert subject == "[netsentry] DoS from 10.0.0.66 to 10.0.0.2 (3 flows, p=0.99, severity 2)"
    assert msg["From"] == "sensor@example.org" and msg["To"] == "soc@example.org"
    text = msg.get_content()
    assert "Flows:        3\n" in text
    assert "First seen:   2017-07-06 13:40:07.419016 UTC" in text
    assert "Last seen:    2017-07-06 13:41:01.500000 UTC" in text
    assert "Signature:    NETSENTRY ML DoS [1:1000002:1]" in text
    assert "Model:        netsentry version 3" in text
    eve = json.loads(text.split("EVE record:\n", 1)[1])
    assert eve["event_type"] == "alert" and eve["netsentry"]["count"] == 3


def test_email_flood_yields_a_handful_that_accounts_for_every_flow(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        cfg = _email_cfg(tmp_path, smtp.port)
        cfg["sinks"]["email"]["rate_limit"] = {"max": 5, "per_s": 60}
        manager = AlertManager(cfg)
        taken = sum(manager.submit(frame) for frame in _flood())
        manager.close(timeout=60)
        messages = list(smtp.messages)
    assert taken == 10_000
    stats = manager.stats()["email"]
    assert stats == counts(sent=6, summarized=995)
    assert len(messages) == 6
    alerts = [m for m in messages if "PortScan from 10.0.0.66" in m["Subject"]]
    (summary,) = [m for m in messages if "held back by the rate limit" in m["Subject"]]
    assert len(alerts) == 5
    flows_alerted = sum(int(re.search(r"^Flows: +(\d+)$", m.get_content(), re.M).group(1)) for m in alerts)
    summary_text = summary.get_content()
    assert "Alerts held back: 995" in summary_text
    flows_summarized = int(re.search(r"^Flows: +(\d+)$", summary_text, re.M).group(1))
    assert flows_alerted + flows_summarized == 10_000
    assert "  10.0.0.66: " + str(flows_summarized) in summary_text
    assert "  PortScan: " + str(flows_summarized) in summary_text
    # and the EVE sink, not rate-limited, has one line per aggregate
    assert len((tmp_path / "eve.json").read_text().splitlines()) == 1000


def test_email_flood_to_one_destination_is_one_email(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        manager = AlertManager(_email_cfg(tmp_path, smtp.port))
        for frame in _flood(destinations=1):
            manager.submit(frame)
        manager.close(timeout=20)
        (msg,) = smtp.messages
    assert "(10000 flows," in msg["Subject"]


def test_email_starttls_and_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("NETSENTRY_SMTP_PASSWORD", "s3cret")
    with SmtpServer(tls=(cert, key), user=("sensor", "s3cret")) as smtp:
        cfg = _email_cfg(tmp_path, smtp.port, starttls=True, username="sensor", cafile=str(cert))
        manager = AlertManager(cfg)
        manager.submit(verdict_frame({}))
        manager.close(timeout=20)
        assert manager.stats()["email"]["sent"] == 1
        assert len(smtp.messages) == 1
        assert smtp.logins == [("sensor", True)]


def test_email_over_implicit_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with SmtpServer(tls=(cert, key), implicit_tls=True) as smtp:
        manager = AlertManager(_email_cfg(tmp_path, smtp.port, ssl=True, cafile=str(cert)))
        manager.submit(verdict_frame({}))
        manager.close(timeout=20)
        assert manager.stats()["email"] == counts(sent=1)
        (msg,) = smtp.messages
    assert "DoS from 10.0.0.66 to 10.0.0.2" in msg["Subject"]


def test_email_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with SmtpServer(tls=(cert, key)) as smtp:
        manager = AlertManager(_email_cfg(tmp_path, smtp.port, starttls=True))  # no cafile: not trusted
        manager.submit(verdict_frame({}))
        manager.close(timeout=20)
        assert smtp.messages == []
    assert manager.stats()["email"] == counts(failed=1, retried=2)


def test_email_wrong_password_is_retried_then_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("NETSENTRY_SMTP_PASSWORD", "wrong")
    with SmtpServer(tls=(cert, key), user=("sensor", "s3cret")) as smtp:
        cfg = _email_cfg(tmp_path, smtp.port, starttls=True, username="sensor", cafile=str(cert))
        manager = AlertManager(cfg)
        manager.submit(verdict_frame({}))
        manager.close(timeout=20)
        assert smtp.messages == []
        # smtplib tries each mechanism the server offers (PLAIN, LOGIN) on each of the 3 attempts
        assert smtp.logins == [("sensor", False)] * 6
    assert manager.stats()["email"] == counts(failed=1, retried=2)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the careless relay
def test_email_login_without_tls_is_refused_before_any_auth(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that would take AUTH in clear: the sensor refuses the config, no password goes out."""
    monkeypatch.setenv("NETSENTRY_SMTP_PASSWORD", "s3cret")
    with SmtpServer(user=("sensor", "s3cret"), plaintext_auth=True) as smtp:
        with pytest.raises(AlertConfigError, match=r"email username is set without starttls or ssl") as info:
            AlertManager(_email_cfg(tmp_path, smtp.port, username="sensor"))
        assert "\n" not in str(info.value) and "allow_plaintext_auth" in str(info.value)
        assert smtp.logins == [] and smtp.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the careless relay
def test_email_plaintext_login_when_explicitly_allowed(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``allow_plaintext_auth: true`` (a loopback relay) logs in without TLS."""
    monkeypatch.setenv("NETSENTRY_SMTP_PASSWORD", "s3cret")
    with SmtpServer(user=("sensor", "s3cret"), plaintext_auth=True) as smtp:
        cfg = _email_cfg(tmp_path, smtp.port, username="sensor", allow_plaintext_auth=True)
        manager = AlertManager(cfg)
        manager.submit(verdict_frame({}))
        manager.close(timeout=20)
        assert smtp.logins == [("sensor", True)] and len(smtp.messages) == 1
    assert manager.stats()["email"] == counts(sent=1)


@pytest.mark.parametrize("flag", ["yes", 1, "true"])
def test_email_allow_plaintext_auth_must_be_a_boolean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      flag: object) -> None:
    monkeypatch.setenv("NETSENTRY_SMTP_PASSWORD", "s3cret")
    cfg = _email_cfg(tmp_path, 25, username="sensor", allow_plaintext_auth=flag)
    with pytest.raises(AlertConfigError, match=r"sinks\.email\.allow_plaintext_auth must be true or false"):
        AlertManager(cfg)


def test_email_login_without_password_in_environment_is_a_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETSENTRY_SMTP_PASSWORD", raising=False)
    with pytest.raises(AlertConfigError, match=r"\$NETSENTRY_SMTP_PASSWORD is not"):
        AlertManager(_email_cfg(tmp_path, 25, username="sensor", starttls=True))


# --- webhook ----------------------------------------------------------------------------------

def test_webhook_posts_the_eve_record(tmp_path: Path) -> None:
    with HttpCollector() as http:
        cfg = alerts_config(tmp_path, webhook={"url": http.url("/hooks/ids?token=abc"),
                                               "headers": {"Authorization": "Bearer t0ken"}})
        manager = AlertManager(cfg)
        manager.submit(verdict_frame({}, {"predicted": "Bot", "Destination IP": "10.0.0.8"}))
        manager.close(timeout=20)
    assert manager.stats()["webhook"]["sent"] == 2
    eve_lines = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    assert sorted(http.posts, key=lambda r: r["dest_ip"]) == sorted(eve_lines, key=lambda r: r["dest_ip"])
    assert {p["alert"]["signature"] for p in http.posts} == {"NETSENTRY ML DoS", "NETSENTRY ML Bot"}
    assert http.paths == ["/hooks/ids?token=abc"] * 2
    assert all(h["Authorization"] == "Bearer t0ken" and h["Content-Type"] == "application/json"
               for h in http.headers)


def test_webhook_retries_until_the_server_answers(tmp_path: Path) -> None:
    with HttpCollector(fail_first=2) as http:
        manager = AlertManager(alerts_config(tmp_path, webhook={"url": http.url()}))
        manager.submit(verdict_frame({}))
        manager.close(timeout=20)
    assert http.requests == 3 and len(http.posts) == 1
    assert manager.stats()["webhook"] == counts(sent=1, retried=2)


def test_webhook_server_down_is_retried_and_counted_failed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there
    manager = AlertManager(alerts_config(tmp_path, webhook={"url": f"http://{HOST}:{port}/hook"}))
    manager.submit(verdict_frame({}))
    manager.close(timeout=20)
    assert manager.stats()["webhook"] == counts(failed=1, retried=2)
    assert manager.stats()["eve"]["sent"] == 1  # the other sink is not affected
    failures = [r.getMessage() for r in caplog.records if "alert sink webhook" in r.getMessage()]
    assert len(failures) == 3 and "giving up" in failures[-1] and f"{HOST}:{port}" in failures[-1]


def test_close_cuts_retries_short(tmp_path: Path) -> None:
    cfg = alerts_config(tmp_path, webhook={"url": f"http://{HOST}:{free_port()}/hook"})
    cfg["retry"] = {"attempts": 10, "backoff_s": 30, "max_backoff_s": 60}  # minutes of retrying ...
    manager = AlertManager(cfg)
    manager.submit(verdict_frame({}))
    manager.close(timeout=1)  # ... but shutdown allows one second
    assert manager.stats()["webhook"] == counts(failed=1)
    assert not any(t.name == "alert-sink-webhook" and t.is_alive() for t in threading.enumerate())


def test_stuck_sink_never_blocks_submit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """... and what it drops is told: one warning a minute, and in classify's summary line."""
    with SilentServer() as silent, caplog.at_level(logging.WARNING, logger="serve.alerts.worker"):
        cfg = _email_cfg(tmp_path, silent.port, timeout_s=60)
        cfg["sinks"]["email"]["queue_size"] = 2
        cfg["aggregation"] = {"window_s": 0}
        manager = AlertManager(cfg)
        assert manager.submit(verdict_frame({"Destination IP": "10.9.0.0"})) == 1
        # the e-mail worker is now waiting for a greeting that never comes
        assert wait_for(lambda: len(silent.connections) == 1)
        taken = [manager.submit(verdict_frame({"Destination IP": f"10.9.0.{i}"})) for i in range(1, 5)]
        assert taken == [1, 1, 1, 1]  # submit returned every time while the sink is stuck
        stats = manager.stats()
        assert stats["email"]["dropped"] == 2  # 1 in flight, 2 queued, 2 dropped
        assert stats["email"]["sent"] == 0
        warned = [r.getMessage() for r in caplog.records if "cannot keep up" in r.getMessage()]
        assert len(warned) == 1 and "alert sink email" in warned[0]  # once, not per alert
        assert sink_counts_text(stats["email"]) == (
            "0 sent, 0 failed, 2 dropped (sink queue full: the sink could not keep up)")
        assert wait_for(lambda: manager.stats()["eve"]["sent"] == 5)  # other sinks keep going
        manager.close(timeout=0.5)
        assert manager.stats()["email"]["dropped"] == 4  # the 2 still queued at close, too


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_webhook_redirect_is_a_failure_never_followed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int) -> None:
    """A hook answering a redirect to another server: that server gets nothing (not the alert, not
    the Authorization header), the answer counts as a failure and is retried as one."""
    with HttpCollector() as elsewhere, HttpCollector(redirect=(status, elsewhere.url("/steal"))) as hook:
        cfg = alerts_config(tmp_path, webhook={"url": hook.url(),
                                               "headers": {"Authorization": "Bearer SECRET123"}})
        manager = AlertManager(cfg)
        manager.submit(verdict_frame({}))
        manager.close(timeout=20)
    assert elsewhere.seen == []
    assert [method for method, _, _ in hook.seen] == ["POST"] * 3  # one per attempt, none followed
    assert manager.stats()["webhook"] == counts(failed=1, retried=2)
    failures = [r.getMessage() for r in caplog.records if "alert sink webhook" in r.getMessage()]
    assert len(failures) == 3 and all(f"HTTP {status}" in f and "redirect" in f for f in failures)
