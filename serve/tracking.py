"""The tracking URI the sensor reads its model from: checked, shown without secrets, probed.

A URI may carry credentials (``http://user:password@host:5000``, ``postgresql://user:password@db/x``);
MLflow's HTTP stack sends them as basic auth, as it does ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``.  Nothing the sensor prints may show them: :func:`redact` masks the
password part of every URL in a text and the literal secrets the sensor knows of.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

from serve.config import ConfigError
from serve.model_error import ModelError

#: URI schemes (before any ``+driver``) whose MLflow store can hold a model registry for the sensor.
SCHEMES: Final[tuple[str, ...]] = ("http", "https", "sqlite", "postgresql", "mysql", "mssql")

#: Environment variables whose values are secrets MLflow sends to the tracking server.
SECRET_VARIABLES: Final[tuple[str, ...]] = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")

#: ``scheme://userinfo@`` in any text; greedy up to the last ``@`` before the path, as URL parsers do.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s'\"]*)@")

_MASK = "***"


class TrackingUriError(ModelError, ConfigError):
    """A tracking URI the sensor cannot use (unsupported scheme, driver missing): a config error."""


class Unreachable(Exception):
    """The tracking server or store cannot be reached (network, server down, store file absent)."""


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    # a lone userinfo may be a token: hide it all; otherwise keep the user name, it helps
    return f"{match['scheme']}{user}:{_MASK}@" if colon else f"{match['scheme']}{_MASK}@"


def _secrets(uri: str | None) -> set[str]:
    """The literal secrets to hide: the URI's password (as written and decoded) and MLflow's variables."""
    found = {os.environ.get(name, "") for name in SECRET_VARIABLES}
    if uri:
        password = urlsplit(uri).password or ""
        found |= {password, unquote(password)}
    return {s for s in found if len(s) >= 3}  # a one- or two-letter "secret" would garble every line


def redact(text: str, uri: str | None = None) -> str:
    """``text`` with the password of every URL in it masked, and the known secrets of ``uri`` too."""
    text = _USERINFO.sub(_mask_userinfo, text)
    for secret in sorted(_secrets(uri), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def _scheme(uri: str) -> str:
    return urlsplit(uri).scheme.lower().partition("+")[0]


def check(uri: str) -> str:
    """``uri`` if the sensor can read a registry there; :class:`TrackingUriError` (one line) else.

    MLflow 3 keeps its file store (``file:///...``, a plain folder) in maintenance mode behind
    ``MLFLOW_ALLOW_FILE_STORE``, and its file registry opens a second store, ``mlflow.db`` in the
    working directory, on every read: the sensor refuses it rather than scatter stores.
    """
    shown = redact(uri, uri)
    scheme = _scheme(uri)
    if scheme in ("", "file"):
        raise TrackingUriError(
            f"tracking URI {shown!r}: MLflow's file store is not supported by the sensor; use "
            "sqlite:///PATH (`mlflow migrate-filestore` converts one) or http(s)://HOST:PORT"
        )
    if scheme not in SCHEMES:
        known = ", ".join(SCHEMES)
        raise TrackingUriError(f"tracking URI {shown!r}: unsupported scheme {scheme!r} ({known})")
    if scheme in ("http", "https"):
        try:
            host, _port = urlsplit(uri).hostname, urlsplit(uri).port
        except ValueError as exc:  # a port that is not a number, or out of range
            raise TrackingUriError(f"tracking URI {shown!r}: {redact(str(exc), uri)}") from exc
        if not host:
            raise TrackingUriError(f"tracking URI {shown!r} names no host")
    elif scheme == "sqlite":
        if not sqlite_path(uri):
            raise TrackingUriError(f"tracking URI {shown!r} names no database file (sqlite:///PATH)")
    else:
        _check_driver(uri, shown)
    return uri


def _check_driver(uri: str, shown: str) -> None:
    """A database URI whose Python driver is missing is a config error, not a traceback at load."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(uri).get_dialect().import_dbapi()
    except ImportError as exc:
        raise TrackingUriError(
            f"tracking URI {shown!r} needs the Python module {exc.name!r}, which is not installed "
            "(psycopg2 is: postgresql+psycopg2://...)"
        ) from exc
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise TrackingUriError(f"tracking URI {shown!r}: {redact(str(exc), uri).splitlines()[0]}") from exc


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI (relative to the working directory), else None."""
    if not uri.lower().startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].partition("?")[0]
    return Path(path) if path else None


def identity(uri: str) -> str:
    """The registry ``uri`` names, without credentials: the same store however one logs in to it."""
    path = sqlite_path(uri)
    if path is not None:
        return f"sqlite:///{path.resolve()}"
    parts = urlsplit(uri)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))


def digest(uri: str) -> str:
    """A short, stable name for the registry of ``uri`` (cache folders are keyed by it)."""
    return hashlib.sha256(identity(uri).encode()).hexdigest()[:16]


def probe(uri: str) -> None:
    """Raise :class:`Unreachable` when the server does not answer or the SQLite store file is absent.

    An HTTP server is asked ``/health`` through MLflow's own HTTP stack (requests), with the
    credentials MLflow would send (the URI's ``user:password@``, ``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``, TLS settings).  Any HTTP answer counts as
    up: an auth or proxy problem is then reported by the client's own call.
    """
    scheme = _scheme(uri)
    if scheme in ("http", "https"):
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        try:
            http_request(get_default_host_creds(uri), "/health", "GET", max_retries=0, backoff_factor=0,
                         timeout=5, raise_on_status=False, allow_redirects=False)
        except Exception as exc:  # requests wraps every network failure differently
            why = one_line(exc, uri)
            raise Unreachable(f"tracking server {redact(uri, uri)} unreachable ({why})") from exc
    elif scheme == "sqlite":
        path = sqlite_path(uri)
        if path is None or not path.is_file():  # MLflow would silently create an empty store here
            raise Unreachable(f"no tracking store at {path}")


def one_line(exc: BaseException, uri: str | None = None) -> str:
    """The first line of ``exc``'s message (at most 300 characters), secrets masked."""
    text = redact(str(exc).strip(), uri)
    return text.splitlines()[0][:300] if text else type(exc).__name__
