"""serve.model_source against real ``mlflow server`` processes (SQLite and PostgreSQL backend stores)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from serve.model_source import ModelError, ModelSource
from tests.serve.mlflow_servers import (
    TEST_FEATURES,
    MlflowServer,
    mlflow_uris,
    register_model,
    synthetic_flows,
    unique_name,
)
from tests.serve.test_model_source import meter_like

SERVERS = ["mlflow_sqlite_server", "mlflow_postgres_server"]


@pytest.mark.parametrize("server_fixture", SERVERS)
def test_load_by_alias_and_follow_it(
    server_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: MlflowServer = request.getfixturevalue(server_fixture)
    name = unique_name("srv")
    register_model(server.uri, name, seed=1)
    src = ModelSource(f"models:/{name}@champion", tracking_uri=server.uri, cache_dir=tmp_path)
    first = src.load()
    assert (first.name, first.version, first.profile, first.from_cache) == (name, "1", "engelen", False)
    assert first.features == list(TEST_FEATURES)
    assert src.poll() is None

    register_model(server.uri, name, seed=2)  # v2 takes the alias
    moved = src.poll()
    assert moved is not None and moved.version == "2"
    flows = meter_like(synthetic_flows(TEST_FEATURES, seed=9))
    # different seeds give different forests: the swap is visible in the probabilities
    assert not np.array_equal(first.predict(flows)[1], moved.predict(flows)[1])
    assert src.poll() is None


def test_server_stopped_starts_from_cache_and_poll_waits_for_it(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = mlflow_sqlite_server
    name = unique_name("away")
    register_model(server.uri, name, seed=1)
    uri = f"models:/{name}@champion"
    online = ModelSource(uri, tracking_uri=server.uri, cache_dir=tmp_path).load()
    server.stop()
    try:
        sensor = ModelSource(uri, tracking_uri=server.uri, cache_dir=tmp_path)
        with caplog.at_level(logging.WARNING, logger="serve.model_source"):
            cached = sensor.load()
            assert sensor.poll() is None and sensor.poll() is None  # never raises while away
        assert (cached.version, cached.from_cache) == (online.version, True)
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(messages) == 2  # one for the start from cache, one for the outage seen by poll
        assert "unreachable" in messages[0] and f"{name} v1" in messages[0]
        flows = meter_like(synthetic_flows(TEST_FEATURES, seed=3))
        np.testing.assert_array_equal(cached.predict(flows)[1], online.predict(flows)[1])

        elsewhere = ModelSource(uri, tracking_uri=server.uri, cache_dir=tmp_path / "empty")
        with pytest.raises(ModelError, match="unreachable.*no cached model"):
            elsewhere.load()
    finally:
        server.start()
    register_model(server.uri, name, seed=2)
    back = sensor.poll()  # the server is back: the sensor catches up with the alias
    assert back is not None and (back.version, back.from_cache) == ("2", False)


def test_missing_model_and_unknown_alias_over_http(
    mlflow_sqlite_server: MlflowServer, tmp_path: Path
) -> None:
    server = mlflow_sqlite_server
    name = unique_name("http-refusals")
    register_model(server.uri, name, seed=1)
    cases = {
        f"models:/{name}-absent@champion": f"no registered model '{name}-absent' at {server.uri}",
        f"models:/{name}@staging": f"model '{name}' has no alias @staging (aliases: champion)",
        f"models:/{name}/7": f"model '{name}' has no version 7",
    }
    for uri, message in cases.items():
        with pytest.raises(ModelError) as info:
            ModelSource(uri, tracking_uri=server.uri, cache_dir=tmp_path).load()
        assert str(info.value) == message


def test_mlflow_uris_leaves_no_registry_behind(tmp_path: Path) -> None:
    """The helper restores MLflow's registry exactly: a pinned registry once sent test models into
    the project's own mlflow.db (their artifacts in deleted tmp folders: pyfunc "No such artifact")."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry

    def state() -> tuple:
        return registry._registry_uri, os.environ.get("MLFLOW_REGISTRY_URI"), mlflow.get_tracking_uri()

    before = state()
    with mlflow_uris(f"sqlite:///{tmp_path}/a.db"):
        assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path}/a.db"
    assert state() == before
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/b.db")
    try:  # with nothing pinned, the registry follows the tracking store again
        assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path}/b.db"
    finally:
        mlflow.set_tracking_uri(before[2])
