"""The tracking URI (issue 20 items 4 and 14): credentials work and never show; unusable URIs are one line.

Against real ``mlflow server`` processes: the shared SQLite one (no auth: a credentialed URI must
still be treated as up), and one running MLflow's ``basic-auth`` app (every API call needs the
credentials, from the URI's ``user:password@`` or ``MLFLOW_TRACKING_USERNAME/PASSWORD``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from serve import model_figures
from serve.config import ConfigError
from serve.model_source import ModelError, ModelSource
from serve.tracking import TrackingUriError, check, redact
from tests.serve.mlflow_servers import (
    AUTH_PASSWORD,
    AUTH_USER,
    MlflowServer,
    free_port,
    mlflow_basic_auth_server,  # noqa: F401 - a fixture
    register_model,
    unique_name,
    with_credentials,
)
from tests.serve.registered_model import METER
from tests.serve.sensor_run import Store, assert_one_clear_line, netsentry

SECRET = "S3cretPW-zq"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("tracking server http://alice:S3cretPW-zq@127.0.0.1:5000 unreachable",
         "tracking server http://alice:***@127.0.0.1:5000 unreachable"),
        ("API request to https://alice:p@ss:S3cretPW-zq@h:1/api/2.0 failed",
         "API request to https://alice:***@h:1/api/2.0 failed"),
        ("'postgresql+psycopg2://u:S3cretPW-zq@db:5432/x'", "'postgresql+psycopg2://u:***@db:5432/x'"),
        ("https://S3cretPW-zq@host/path and http://127.0.0.1:5000/x",
         "https://***@host/path and http://127.0.0.1:5000/x"),
        ("the header carried S3cretPW-zq", "the header carried ***"),  # the URI's secret, anywhere
    ],
)
def test_redact_masks_every_password(text: str, shown: str) -> None:
    assert redact(text, f"http://alice:{SECRET}@127.0.0.1:5000") == shown


def test_redact_masks_mlflow_password_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-Secret-1")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-Secret-2")
    assert redact("a env-Secret-1 b tok-Secret-2 c") == "a *** b *** c"


UNUSABLE = {
    "file:///var/lib/mlruns": "MLflow's file store is not supported",
    "mlruns": "MLflow's file store is not supported",
    "foo://x": "unsupported scheme 'foo'",
    "sqlite://": "names no database file",
    "http://:5000": "names no host",
    f"http://alice:{SECRET}@127.0.0.1:99999": "out of range",
    f"postgresql://alice:{SECRET}@127.0.0.1:1/db": "needs the Python module 'psycopg'",
}


@pytest.mark.parametrize("uri", list(UNUSABLE))
def test_unusable_tracking_uris_are_one_line_config_errors(uri: str) -> None:
    if uri.startswith("postgresql://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("psycopg is installed: postgresql:// is usable here")
    with pytest.raises(TrackingUriError) as info:
        check(uri)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ModelError)
    line = str(info.value)
    assert UNUSABLE[uri] in line and "\n" not in line and SECRET not in line


@pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)")
@pytest.mark.parametrize("uri", ["file:///var/lib/mlruns", f"postgresql://alice:{SECRET}@127.0.0.1:1/db"])
def test_an_unusable_tracking_uri_ends_the_command_with_one_line_and_status_2(
    uri: str, tmp_path: Path, pcaps: Path
) -> None:
    store = Store("sqlite:///unused.db", tmp_path / "cache", tmp_path)
    proc = netsentry(store, tmp_path / "out", "classify", str(pcaps / "protocols/dhcp.pcap"),
                     f"serve.model.tracking_uri={uri}")
    line = assert_one_clear_line(proc, "netsentry classify: tracking URI ")
    assert proc.returncode == 2 and SECRET not in proc.stderr, line


def test_a_credentialed_uri_of_a_running_server_is_up(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    """The server takes no auth here: what matters is that the probe does not turn the URI's
    user:password@ into a host name and call a running server down."""
    name = unique_name("creds-up")
    register_model(mlflow_sqlite_server.uri, name, seed=1)
    uri = with_credentials(mlflow_sqlite_server.uri, "alice", SECRET)
    model = ModelSource(f"models:/{name}@champion", tracking_uri=uri, cache_dir=tmp_path).load()
    assert (model.version, model.from_cache) == ("1", False)


def test_a_credentialed_uri_of_a_closed_port_never_shows_the_password(tmp_path: Path) -> None:
    uri = f"http://alice:{SECRET}@127.0.0.1:{free_port()}"
    with pytest.raises(ModelError) as info:
        ModelSource("models:/netsentry@champion", tracking_uri=uri, cache_dir=tmp_path).load()
    line = str(info.value)
    assert line.startswith(f"tracking server http://alice:***@127.0.0.1:{uri.rsplit(':', 1)[1]} unreachable")
    assert "no cached model" in line and SECRET not in line and "\n" not in line


@pytest.mark.skipif(not METER.is_file(), reason="capture/flowmeter not built (make meter)")
def test_the_command_never_prints_the_password_even_in_debug(tmp_path: Path, pcaps: Path) -> None:
    uri = f"http://alice:{SECRET}@127.0.0.1:{free_port()}"
    store = Store(uri, tmp_path / "cache", tmp_path)
    proc = netsentry(store, tmp_path / "out", "classify", "-v", str(pcaps / "protocols/dhcp.pcap"),
                     "log.level=DEBUG")
    assert proc.returncode == 1, proc.stderr
    assert "netsentry classify: tracking server http://alice:***@127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


# -- a server that wants the credentials ------------------------------------------------------------

@pytest.mark.slow
def test_basic_auth_from_the_uri_and_from_the_variables(
    mlflow_basic_auth_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    server = mlflow_basic_auth_server
    good = with_credentials(server.uri, AUTH_USER, AUTH_PASSWORD)
    name = unique_name("auth")
    register_model(good, name, seed=1)
    uri = f"models:/{name}@champion"

    src = ModelSource(uri, tracking_uri=good, cache_dir=tmp_path / "a")
    assert (src.load().version, src.current.from_cache) == ("1", False)
    register_model(good, name, seed=2)
    assert src.poll().version == "2"  # polls and downloads carry the credentials too

    for user, password in (("admin", "Wrong-Password-1"), ("nobody", AUTH_PASSWORD)):
        with pytest.raises(ModelError) as info:
            ModelSource(uri, tracking_uri=with_credentials(server.uri, user, password),
                        cache_dir=tmp_path / "b").load()
        line = str(info.value)
        assert line.startswith(f"tracking server http://{user}:***@127.0.0.1:{server.port} refused the "
                               "credentials (UNAUTHENTICATED)"), line
        assert password not in line
    with pytest.raises(ModelError, match=r"refused the credentials \(UNAUTHENTICATED\)"):
        ModelSource(uri, tracking_uri=server.uri, cache_dir=tmp_path / "c").load()

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", AUTH_USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", AUTH_PASSWORD)
    by_env = ModelSource(uri, tracking_uri=server.uri, cache_dir=tmp_path / "d").load()
    assert (by_env.version, by_env.from_cache) == ("2", False)


def test_the_test_figures_log_line_never_shows_the_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://alice:{SECRET}@127.0.0.1:{free_port()}"
    with caplog.at_level(logging.INFO, logger="serve.model_figures"):
        assert model_figures.test_figures(uri, "netsentry", "1") is None
    (line,) = [r.getMessage() for r in caplog.records if r.name == "serve.model_figures"]
    assert line.startswith("no test figures for netsentry v1: ") and "alice:***@" in line, line
    assert SECRET not in line
