"""Real MLflow tracking servers and pipeline-shaped registered models, for the sensor's tests.

Fixtures (session-scoped: each server starts once per test session):

- ``mlflow_sqlite_server``: ``mlflow server`` on a free loopback port, SQLite backend store,
  proxied artifacts in a tmp folder.
- ``mlflow_postgres_server``: the same on a PostgreSQL backend store (Debian's ``postgresql``:
  a private cluster made with initdb and started with pg_ctl as user ``postgres`` in a tmp folder
  on a free port), as a fleet of sensors would share it.  Skips when PostgreSQL is not installed.
- ``mlflow_basic_auth_server``: ``mlflow server --app-name basic-auth`` (every API call needs
  HTTP basic auth; user :data:`AUTH_USER`, password :data:`AUTH_PASSWORD`).  Skips when Flask-WTF,
  which MLflow's auth app needs, is not installed.  Not in conftest: import it where used.

Each yields an :class:`MlflowServer` (``.uri`` = ``http://127.0.0.1:PORT``; ``.stop()`` /
``.start()`` take it away and bring it back on the same port and store, e.g. to test the cache:
a test that stops it starts it again in a ``finally``).  Every test registers its own model name
(:func:`unique_name`), so tests sharing a server do not see each other's versions.

``tests/serve/conftest.py`` imports the two fixtures, so every test under ``tests/serve`` can
name them as arguments and the whole session shares one server of each kind.

Helpers:

- :func:`register_model` fits a small model on synthetic data with the pipeline's own
  ``fit_inference_model`` and registers it through ``pipeline.tracking.log_and_register`` (the same
  skops file, ONNX forest, signature, tags ``flow_profile``/``features`` and alias as
  ``pipeline.train``), and returns the new version.  ``alias`` moves to it.  It also works on a
  local store (``sqlite:///...`` + ``artifact_location``).
- :func:`move_alias` points an alias at another version.
- :func:`unique_name` a fresh registered-model name for one test.
- :func:`mlflow_uris` points MLflow's global tracking/registry URIs somewhere for a block.

Example::

    from tests.serve.mlflow_servers import register_model, unique_name

    def test_swap(mlflow_sqlite_server):
        name = unique_name("swap")
        v1 = register_model(mlflow_sqlite_server.uri, name, seed=1)
        ...                                   # serve models:/{name}@champion
        v2 = register_model(mlflow_sqlite_server.uri, name, seed=2)   # the alias moves to v2
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.schema import LABEL_COLUMN, feature_columns

#: The features of the test models: a few columns every meter profile writes.
TEST_FEATURES: tuple[str, ...] = tuple(feature_columns(False)[:4])
TEST_CLASSES: tuple[str, ...] = ("BENIGN", "DoS", "PortScan")
_names = itertools.count()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen | None, timeout: float, log: Path | None = None) -> None:
    """Wait until ``url`` answers 200 (fail early if ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}\n{tail}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class MlflowServer:
    """One ``mlflow server`` process on loopback; stop()/start() keep its store and port."""

    def __init__(self, backend_uri: str, folder: Path, app_name: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        """``app_name``: MLflow's ``--app-name`` (e.g. ``basic-auth``); ``env``: variables it needs."""
        self.backend_uri = backend_uri
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.app_name = app_name
        self.env = dict(env or {})

    def start(self, timeout: float = 90) -> None:
        """Start the server (if stopped) and wait until /health answers."""
        if self.proc is not None and self.proc.poll() is None:
            return
        log = self.folder / "server.log"
        cmd = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            self.backend_uri,
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            *(["--app-name", self.app_name] if self.app_name else []),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | self.env
        with log.open("ab") as out:
            # own process group: stop() ends the server and its workers, nothing else
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        wait_http(f"{self.uri}/health", self.proc, timeout, log)

    def stop(self) -> None:
        """Stop the server process group (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def mlflow_sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A running ``mlflow server`` with a SQLite backend store (one per test session)."""
    folder = tmp_path_factory.mktemp("mlflow-sqlite")
    server = MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", folder)
    server.start()
    yield server
    server.stop()


#: The account of ``mlflow_basic_auth_server`` (MLflow wants an admin password of 12+ characters).
AUTH_USER = "admin"
AUTH_PASSWORD = "S3cret-Auth-PW"


@pytest.fixture(scope="session")
def mlflow_basic_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A running ``mlflow server --app-name basic-auth`` (SQLite stores); credentials in the module."""
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs Flask-WTF (not installed)")
    folder = tmp_path_factory.mktemp("mlflow-auth")
    config = folder / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\n"
        f"admin_username = {AUTH_USER}\nadmin_password = {AUTH_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex()}
    server = MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", folder, app_name="basic-auth", env=env)
    server.start()
    yield server
    server.stop()


def with_credentials(uri: str, user: str, password: str) -> str:
    """``http://HOST:PORT`` -> ``http://USER:PASSWORD@HOST:PORT``."""
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{user}:{password}@{rest}"


def _pg_bin(tool: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return found[-1] if found else shutil.which(tool)


class PostgresCluster:
    """A private PostgreSQL cluster in a tmp folder, run as user ``postgres`` on a free port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.port = free_port()
        self.user = "postgres"

    def _run(self, *cmd: str) -> None:
        as_user = ["runuser", "-u", self.user, "--"] if os.geteuid() == 0 else []
        proc = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {proc.stderr.strip()[-1500:]}")

    def start(self) -> str:
        """initdb + pg_ctl start; return the SQLAlchemy URI of a fresh ``mlflow`` database."""
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            pytest.skip("PostgreSQL is not installed (Debian package postgresql; scripts/bootstrap.sh test)")
        if os.geteuid() == 0:
            uid = pwd.getpwnam(self.user).pw_uid
            os.chown(self.folder, uid, -1)
        self._run(initdb, "-D", str(self.data), "-U", self.user, "-A", "trust", "--no-sync")
        sock = self.folder  # the socket lives here, not in /var/run/postgresql
        opts = f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.folder / "pg.log"), "-o", opts, "-w", "start")
        self._run(
            _pg_bin("createdb") or "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "mlflow",
        )
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/mlflow"

    def stop(self) -> None:
        """pg_ctl stop (fast)."""
        pg_ctl = _pg_bin("pg_ctl")
        if pg_ctl and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self._run(pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="session")
def mlflow_postgres_server() -> Iterator[MlflowServer]:
    """A running ``mlflow server`` with a PostgreSQL backend store (one per test session)."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user (install Debian's postgresql: scripts/bootstrap.sh test)")
    # not under pytest's tmp root: the postgres user must be able to reach the folder
    folder = Path(tempfile.mkdtemp(prefix="netsentry-pg-"))
    folder.chmod(0o755)
    cluster = PostgresCluster(folder)
    server = None
    try:
        backend = cluster.start()
        mlflow_folder = folder / "mlflow"
        mlflow_folder.mkdir()
        server = MlflowServer(backend, mlflow_folder)
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def unique_name(prefix: str = "netsentry-test") -> str:
    """A registered-model name no other test in this session uses."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


def synthetic_flows(features: Sequence[str], n_per_class: int = 80, seed: int = 0) -> pd.DataFrame:
    """Labelled rows (classes :data:`TEST_CLASSES`) whose first two features carry the class."""
    rng = np.random.default_rng(seed)
    parts = []
    for c, label in enumerate(TEST_CLASSES):
        x = rng.normal(size=(n_per_class, len(features))) * 10 + 100
        x[:, :2] += 200 * c
        part = pd.DataFrame(np.abs(x), columns=list(features))
        part[LABEL_COLUMN] = label
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@contextlib.contextmanager
def mlflow_uris(uri: str) -> Iterator[None]:
    """Point MLflow's global tracking and registry URIs at ``uri`` for the block, then restore.

    ``mlflow.set_registry_uri`` also exports ``MLFLOW_REGISTRY_URI`` (for subprocesses), and
    ``get_registry_uri`` reports the tracking URI when none was set: restoring through the public
    calls would leave a registry pinned to this block's store, in this process and in every
    sensor it starts later.  So the module state and the variables are restored exactly.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry

    env_before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    tracking_before, registry_before = mlflow.get_tracking_uri(), registry._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking_before)
        registry._registry_uri = registry_before
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register_model(
    tracking_uri: str,
    name: str,
    *,
    alias: str = "champion",
    seed: int = 0,
    features: Sequence[str] = TEST_FEATURES,
    profile: str = "engelen",
    n_estimators: int = 5,
    max_depth: int = 4,
    model_transform: object = None,
    extra_trusted: Sequence[str] = (),
    artifact_location: Path | None = None,
    frame: pd.DataFrame | None = None,
) -> str:
    """Fit and register a pipeline-shaped model; move ``alias`` to it; return the new version.

    ``model_transform`` (callable taking and returning the fitted Pipeline) changes the model before
    it is logged (e.g. to plant a type the sensor must refuse; list it in ``extra_trusted`` so MLflow
    logs it).  ``artifact_location``: where a SQLite store keeps artifacts (servers pick their own).
    ``frame``: training rows (``features`` + ``Label``) instead of the synthetic ones.
    """
    import mlflow

    from pipeline import tracking
    from pipeline.forest import forest
    from pipeline.model import TRUSTED_TYPES, fit_inference_model

    frame = synthetic_flows(features, seed=seed) if frame is None else frame
    medians = {f: float(frame[f].median()) for f in features}
    model = fit_inference_model(
        frame, frame[LABEL_COLUMN], list(features), medians, forest(n_estimators, max_depth, seed, n_jobs=1)
    )
    if model_transform is not None:
        model = model_transform(model)
    params = {"registered_model": name, "alias": alias}
    tags = {"flow_profile": profile, "features": ",".join(features)}
    with mlflow_uris(tracking_uri):
        experiment = f"{name}-exp"
        if mlflow.get_experiment_by_name(experiment) is None:
            location = artifact_location.as_uri() if artifact_location else None
            mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment)
        with mlflow.start_run():
            info = tracking.log_and_register(
                model,
                frame[list(features)].head(5),
                tags,
                params,
                list(TRUSTED_TYPES) + list(extra_trusted),
            )
    return info["version"]


def move_alias(tracking_uri: str, name: str, version: str, alias: str = "champion") -> None:
    """Point ``models:/name@alias`` at ``version``."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        name, alias, version
    )
