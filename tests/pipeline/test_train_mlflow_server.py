"""The train stage against a real ``mlflow server`` on loopback, then loading the champion through it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline.model_fixtures import load_in_fresh_process, make_project, run_stage, stage_env

pytestmark = pytest.mark.slow

MLFLOW = Path(sys.executable).with_name("mlflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real tracking server (SQLite backend, artifacts in tmp_path); killed in teardown."""
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=stage_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited early:\n{(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not ready:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (gunicorn/uvicorn workers)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_train_registers_in_a_tracking_server(tmp_path: Path, mlflow_server: str) -> None:
    root = make_project(
        tmp_path / "proj",
        [
            "select.n_features=3",
            "select.estimator.n_estimators=5",
            "sweep.enabled=false",
            "model.max_depth=8",
            "model.n_estimators=10",
            "data=engelen_sample",
        ],
    )
    env = stage_env({"MLFLOW_TRACKING_URI": mlflow_server})
    for stage in ("pipeline.select", "pipeline.sweep", "pipeline.train"):
        run_stage(root, stage, env=env)
    # nothing went to the embedded store: the environment's URI won
    assert not (root / "mlflow.db").exists()
    info = json.loads((root / "data/train/model.json").read_text())
    assert info["tracking_uri"] == mlflow_server and info["version"] == "1"
    metrics = json.loads((root / "metrics/train.json").read_text())
    selected = json.loads((root / "data/select/features.json").read_text())["selected"]

    other = tmp_path / "elsewhere"  # a directory with no project in it
    other.mkdir()
    loaded = load_in_fresh_process(mlflow_server, root / "data/prune/test.parquet", selected[0], other)
    assert loaded["accuracy"] == pytest.approx(metrics["accuracy"])
    assert loaded["same"] is True
    assert loaded["tags"]["features"] == ",".join(selected)
    assert loaded["tags"]["flow_profile"] == "engelen"
    assert set(loaded["tags"]) >= {"dataset_fingerprint", "params_fingerprint"}
    # the model's files live in the server's artifact store, not in the project
    assert any((tmp_path / "artifacts").rglob("MLmodel"))
    assert not (root / "mlartifacts").exists()
