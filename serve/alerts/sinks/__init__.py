"""The alert sinks, one module each, by the ``type`` the config names them with."""

from __future__ import annotations

from serve.alerts.sink import Sink
from serve.alerts.sinks.eve import EveSink
from serve.alerts.sinks.smtp import EmailSink
from serve.alerts.sinks.syslog import SyslogSink
from serve.alerts.sinks.webhook import WebhookSink

#: Sink type (config) -> class.
SINK_TYPES: dict[str, type[Sink]] = {cls.kind: cls for cls in (EveSink, SyslogSink, EmailSink, WebhookSink)}
