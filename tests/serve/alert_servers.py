"""Real servers on loopback for the alert sink tests: SMTP (aiosmtpd), HTTP, syslog, a silent one.

Each is a context manager that starts the server on a free port and stops it on exit; what it
received is kept in a list the test asserts on.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.serve.mlflow_servers import free_port

HOST = "127.0.0.1"


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; return whether it held."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, written under ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )
    return cert_path, key_path


class _Inbox:
    """aiosmtpd handler: keeps every delivered message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        # SMTP carries CRLF line ends; parse with the local ones so bodies compare as text
        content = envelope.content.replace(b"\r\n", b"\n")
        self.messages.append(message_from_bytes(content, policy=policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on loopback; optional STARTTLS and AUTH (one user)."""

    def __init__(self, tls: tuple[Path, Path] | None = None, user: tuple[str, str] | None = None,
                 implicit_tls: bool = False, plaintext_auth: bool = False) -> None:
        """``tls``: certificate and key for STARTTLS (or, with ``implicit_tls``, TLS from the start);
        ``plaintext_auth``: offer AUTH without TLS too (a careless relay); ``logins`` records AUTH."""
        self.inbox = _Inbox()
        self.port = free_port()
        self.logins: list[tuple[str, bool]] = []
        kwargs: dict[str, Any] = {}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            if implicit_tls:
                kwargs.update(ssl_context=context, server_hostname="localhost")
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if user is not None:
            kwargs.update(authenticator=self._authenticator(user), auth_required=True,
                          auth_require_tls=not plaintext_auth)
        self._controller = Controller(self.inbox, hostname=HOST, port=self.port, **kwargs)

    def _authenticator(self, user: tuple[str, str]) -> Callable[..., AuthResult]:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            login = auth_data.login.decode()
            ok = (login, auth_data.password.decode()) == user
            self.logins.append((login, ok))
            return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

        return check

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


class HttpCollector:
    """A real HTTP server on loopback that keeps every POSTed JSON body.

    ``fail_first`` requests are answered 503 (to exercise retries), the rest 200; with
    ``redirect`` = (status, location) every request is answered with that redirect instead.
    ``seen`` keeps (method, path, headers) of every request, whatever its method.
    """

    def __init__(self, fail_first: int = 0, redirect: tuple[int, str] | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.requests = 0
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                collector.requests += 1
                collector.seen.append((self.command, self.path, dict(self.headers)))
                if redirect is not None:
                    self.send_response(redirect[0])
                    self.send_header("Location", redirect[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if collector.requests <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                collector.posts.append(json.loads(raw))
                collector.headers.append(dict(self.headers))
                collector.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = do_PUT = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def __enter__(self) -> HttpCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class UdpCollector:
    """A UDP socket on loopback that keeps every datagram (a syslog collector)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self._sock.recv(65535))
            except TimeoutError:
                continue

    def __enter__(self) -> UdpCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


class TcpCollector:
    """A TCP listener on loopback that keeps every byte received (syslog over TCP)."""

    def __init__(self) -> None:
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.data = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(0.1)
            with conn:
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(65535)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    self.data.extend(chunk)

    def __enter__(self) -> TcpCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


class SilentServer:
    """Accepts TCP connections and never says a word: a stuck SMTP server."""

    def __init__(self) -> None:
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        for conn in self.connections:
            conn.close()
