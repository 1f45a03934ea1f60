"""Webhook: each alert POSTed as JSON (the EVE record) to a URL; any 2xx answer is success.

Redirects are never followed: urllib's default handler would re-send the configured headers
(``Authorization``) to whatever host the answer names, as a GET without the alert.  A 3xx is a
failed delivery, retried and counted like any other; fix the URL instead.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from serve.alerts.alert import Alert, Summary
from serve.alerts.render import eve_record, summary_record
from serve.alerts.settings import AlertConfigError
from serve.alerts.sink import Sink, SinkError, option, tls_context


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect, so that urllib raises the 3xx as an :class:`urllib.error.HTTPError`."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSink(Sink):
    """POST each alert's EVE record to ``url``."""

    kind = "webhook"

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.url = str(option(options, "url", required=True))
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AlertConfigError(f"alerts config: webhook url must be http(s)://host/..., not {self.url!r}")
        self._where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self.headers = {str(k): str(v) for k, v in (option(options, "headers") or {}).items()}
        self.timeout = float(option(options, "timeout_s", 5))
        context = tls_context(options) if parts.scheme == "https" else None
        https = urllib.request.HTTPSHandler(context=context)
        self._opener = urllib.request.build_opener(_NoRedirects(), https)

    def describe(self) -> str:
        return f"webhook {self._where}"  # no query string or credentials in logs

    def post(self, record: Mapping[str, Any]) -> None:
        """POST ``record`` as JSON; raise :class:`SinkError` unless the answer is 2xx."""
        data = json.dumps(record, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "netsentry", **self.headers}
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                answer.read()
                status = answer.status
        except urllib.error.HTTPError as exc:
            moved = " (a redirect: not followed, fix the url)" if 300 <= exc.code < 400 else ""
            raise SinkError(f"HTTP {exc.code} {exc.reason}{moved}") from None
        except urllib.error.URLError as exc:
            raise SinkError(f"cannot reach {self._where}: {exc.reason}") from None
        if not 200 <= status < 300:
            raise SinkError(f"HTTP {status}")

    def send(self, alert: Alert) -> None:
        self.post(eve_record(alert))

    def send_summary(self, summary: Summary) -> None:
        self.post(summary_record(summary))
