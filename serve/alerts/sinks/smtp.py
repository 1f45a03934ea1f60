"""E-mail over SMTP (the original study's alert channel): one message per alert or summary.

Plain SMTP, STARTTLS (``starttls: true``) or SMTP over TLS (``ssl: true``), with optional login;
the password is read from the environment variable ``password_env`` names, never from config
files.  A login needs STARTTLS or TLS (the password would go out in clear) unless
``allow_plaintext_auth: true`` says the relay is on loopback.  Rate-limit this sink (the default
config allows 5 messages a minute).
"""

from __future__ import annotations

import json
import os
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from serve.alerts.alert import Alert, Summary
from serve.alerts.render import body, eve_record, headline, summary_body, summary_headline
from serve.alerts.settings import AlertConfigError
from serve.alerts.sink import Sink, option, tls_context


class EmailSink(Sink):
    """Send each alert as an e-mail."""

    kind = "email"

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.host = str(option(options, "host", "localhost"))
        self.port = int(option(options, "port", 25))
        self.starttls = bool(option(options, "starttls", False))
        self.ssl = bool(option(options, "ssl", False))
        if self.starttls and self.ssl:
            raise AlertConfigError("alerts config: email starttls and ssl exclude each other (pick one)")
        self.sender = str(option(options, "from", "netsentry@localhost"))
        recipients = option(options, "to", required=True)
        self.recipients = [recipients] if isinstance(recipients, str) else [str(r) for r in recipients]
        self.prefix = str(option(options, "subject_prefix", "[netsentry]"))
        self.timeout = float(option(options, "timeout_s", 10))
        self.username = option(options, "username")
        self.password_env = str(option(options, "password_env", "NETSENTRY_SMTP_PASSWORD"))
        allow_plain = option(options, "allow_plaintext_auth", False)
        if not isinstance(allow_plain, bool):
            raise AlertConfigError(f"alerts config: sinks.{name}.allow_plaintext_auth must be true or false, "
                                   f"not {allow_plain!r}")
        if self.username and not (self.starttls or self.ssl or allow_plain):
            # the password would cross the network in clear (AUTH PLAIN/LOGIN are base64 only)
            raise AlertConfigError(
                f"alerts config: email username is set without starttls or ssl: the password would go "
                f"out in clear (set sinks.{name}.allow_plaintext_auth: true only for a loopback relay)")
        if self.username and self.password_env not in os.environ:
            raise AlertConfigError(f"alerts config: email username is set but ${self.password_env} is not")

    def describe(self) -> str:
        mode = " ssl" if self.ssl else " starttls" if self.starttls else ""
        return f"email smtp://{self.host}:{self.port}{mode} to {', '.join(self.recipients)}"

    def message(self, subject: str, text: str) -> EmailMessage:
        """The e-mail: headers and a plain-text body."""
        msg = EmailMessage()
        msg["Subject"] = f"{self.prefix} {subject}".strip()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg.set_content(text)
        return msg

    def send(self, alert: Alert) -> None:
        text = body(alert) + "\nEVE record:\n" + json.dumps(eve_record(alert), indent=2) + "\n"
        self._deliver(self.message(headline(alert), text))

    def send_summary(self, summary: Summary) -> None:
        self._deliver(self.message(summary_headline(summary), summary_body(summary)))

    def _deliver(self, msg: EmailMessage) -> None:
        context = tls_context(self.options) if (self.ssl or self.starttls) else None
        if self.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(str(self.username), os.environ.get(self.password_env, ""))
            smtp.send_message(msg)
