"""The one interface every alert sink implements.

A sink knows only its own transport: it turns an :class:`Alert` (or a :class:`Summary` of the
alerts a rate limit held back) into bytes on its wire and raises on failure.  Threads, queues,
retries and rate limits belong to :mod:`serve.alerts.worker`, so no sink can stall the flow path.
"""

from __future__ import annotations

import ssl
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from serve.alerts.alert import Alert, Summary
from serve.alerts.settings import AlertConfigError


class SinkError(Exception):
    """A delivery failed (the worker retries it); the message says why in one line."""


class Sink(ABC):
    """One alert transport (EVE file, syslog, e-mail, webhook)."""

    #: The sink type as written in the config (``type:`` or the sink's key).
    kind: str = ""
    #: Whether :meth:`send_many` delivers a list of alerts all at once or not at all (so a failed
    #: list can be retried whole); the worker then hands over what queued up in one call.
    atomic_batches: bool = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = options

    @abstractmethod
    def send(self, alert: Alert) -> None:
        """Deliver one alert; raise on failure."""

    def send_many(self, alerts: list[Alert]) -> None:
        """Deliver several alerts; raise on failure.  Only called on sinks with ``atomic_batches``."""
        for alert in alerts:
            self.send(alert)

    @abstractmethod
    def send_summary(self, summary: Summary) -> None:
        """Deliver a summary of alerts held back by the rate limit; raise on failure."""

    def close(self) -> None:  # noqa: B027 - most sinks hold nothing open
        """Release connections and files."""

    def describe(self) -> str:
        """Where this sink delivers, for log lines (no secrets)."""
        return self.kind


def option(options: Mapping[str, Any], key: str, default: Any = None, *, required: bool = False) -> Any:
    """``options[key]``, or ``default`` when it is missing or null; a missing required option is an error."""
    value = options.get(key)
    if value is None:
        value = default
    if required and value in (None, "", []):
        raise AlertConfigError(f"alerts config: sink option {key!r} is required")
    return value


def tls_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """A verifying TLS context; the ``cafile`` option adds a private CA (e.g. the SOC's own)."""
    return ssl.create_default_context(cafile=option(options, "cafile"))
