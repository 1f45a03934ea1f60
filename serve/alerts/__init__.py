"""Alerts: detections folded per source, destination and group, delivered by independent sinks.

The sensor uses one object: ``AlertManager(cfg)`` with ``submit(verdicts)``, ``flush()``,
``close()`` and ``stats()``.  Sinks: EVE JSON lines (Suricata's alert shape), syslog (RFC 5424),
e-mail (SMTP) and webhook (HTTP POST JSON); ``conf/serve/alerts/default.yaml`` configures them.
"""

from serve.alerts.manager import AlertManager
from serve.alerts.settings import AlertConfigError

__all__ = ["AlertConfigError", "AlertManager"]
