"""Syslog (RFC 5424) over UDP (RFC 5426) or TCP with octet-counting framing (RFC 6587).

One message per alert: ``<PRI>1 TIMESTAMP HOSTNAME netsentry PROCID ALERT [SD] MSG``, the alert's
fields as structured data (what SIEM parsers read) and a one-line headline as MSG (what people
read).  The syslog severity follows the alert's: 1 -> critical, 2 -> error, 3 -> warning.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from serve.alerts.alert import Alert, Summary, eve_time
from serve.alerts.render import headline, summary_headline
from serve.alerts.settings import AlertConfigError
from serve.alerts.sink import Sink, option

APP_NAME = "netsentry"

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
_SEVERITY = {1: 2, 2: 3, 3: 4}  # alert severity -> syslog severity (crit, err, warning)
_NOTICE = 5


def _sd_value(value: object) -> str:
    # RFC 5424 section 6.3.3: '"', '\' and ']' are escaped inside PARAM-VALUE
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(text: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces (RFC 5424 PRINTUSASCII), at most ``limit``."""
    cleaned = "".join(c for c in text if 33 <= ord(c) <= 126)
    return cleaned[:limit] or "-"


class SyslogSink(Sink):
    """Send RFC 5424 lines to a syslog collector."""

    kind = "syslog"

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.host = str(option(options, "host", "127.0.0.1"))
        self.port = int(option(options, "port", 514))
        self.transport = str(option(options, "transport", "udp")).lower()
        if self.transport not in ("udp", "tcp"):
            raise AlertConfigError(f"alerts config: syslog transport must be udp or tcp: {self.transport!r}")
        facility = str(option(options, "facility", "local0")).lower()
        if facility not in FACILITIES:
            raise AlertConfigError(f"alerts config: unknown syslog facility {facility!r} (e.g. local0)")
        self.facility = FACILITIES[facility]
        self.hostname = _token(str(option(options, "hostname") or socket.gethostname()), 255)
        self.sd_id = str(option(options, "sd_id", "netsentry@32473"))
        self.timeout = float(option(options, "timeout_s", 5))
        self._socket: socket.socket | None = None

    def describe(self) -> str:
        return f"syslog {self.transport}://{self.host}:{self.port}"

    def line(self, severity: int, msgid: str, params: Mapping[str, object], text: str) -> bytes:
        """One RFC 5424 message (without transport framing)."""
        pri = self.facility * 8 + severity
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        sd = "[" + self.sd_id + "".join(f' {k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
        header = f"<{pri}>1 {stamp} {self.hostname} {APP_NAME} {os.getpid()} {_token(msgid, 32)}"
        return f"{header} {sd} {text}".encode()

    def send(self, alert: Alert) -> None:
        assert alert.first_seen is not None and alert.last_seen is not None
        params = {
            "group": alert.group, "src": alert.src_ip, "dst": alert.dest_ip, "proto": alert.proto,
            "count": alert.count, "probability": f"{alert.probability:.4f}",
            "sid": alert.rule.signature_id, "severity": alert.rule.severity, "flow_id": alert.flow_id,
            "first_seen": eve_time(alert.first_seen), "last_seen": eve_time(alert.last_seen),
            "model": alert.model_name, "version": alert.model_version,
        }
        self._emit(self.line(_SEVERITY.get(alert.rule.severity, _NOTICE), "ALERT", params, headline(alert)))

    def send_summary(self, summary: Summary) -> None:
        params = {"alerts": summary.alerts, "count": summary.detections}
        self._emit(self.line(_NOTICE, "SUMMARY", params, summary_headline(summary)))

    def _connect(self) -> socket.socket:
        if self._socket is None:
            if self.transport == "udp":
                family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0][0]
                self._socket = socket.socket(family, socket.SOCK_DGRAM)
            else:
                self._socket = socket.create_connection((self.host, self.port), timeout=self.timeout)
        return self._socket

    def _emit(self, message: bytes) -> None:
        sock = self._connect()
        try:
            if self.transport == "udp":
                sock.sendto(message, (self.host, self.port))
            else:
                sock.sendall(str(len(message)).encode() + b" " + message)
        except OSError:
            self.close()  # reconnect on the retry
            raise

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
