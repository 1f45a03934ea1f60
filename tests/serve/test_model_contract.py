"""The registered model's contract with the meter: MLflow's own consumers take the meter's rows.

The signature types each input column as the meter writes it (int -> long, float -> double), so
``mlflow.pyfunc`` and ``mlflow models serve`` accept a meter CSV read by ``flows.meter_csv``, and
they agree with the sensor's own loader.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from flows.meter_csv import read_meter_csv
from serve.model_source import ModelSource, verdicts
from serve.verdict import VERDICT_COLUMNS
from tests.serve.mlflow_servers import free_port, mlflow_uris, register_model, unique_name, wait_http
from tests.serve.registered_model import METER

#: int and float columns of the schema, and Destination Port (an identifier the meter writes as int).
MIXED_FEATURES = (
    "Destination Port",
    "Flow Duration",
    "Flow Bytes/s",
    "Fwd Packet Length Mean",
    "Total Fwd Packets",
)


@pytest.fixture(scope="module")
def meter_rows(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The shared SQL-injection capture metered in the engelen profile, read with the meter's types."""
    if not METER.exists():
        pytest.skip("capture/flowmeter is not built (make meter)")
    out = tmp_path_factory.mktemp("meter") / "flows.csv"
    capture = pcaps / "cicids2017" / "WebattackSQLinj.pcap"
    subprocess.run([str(METER), "-r", str(capture), "--profile", "engelen", "-q", "-o", str(out)], check=True)
    rows = read_meter_csv(out)
    assert len(rows) > 0 and rows["Flow Duration"].dtype == np.int64
    return rows


#: Real captures metered for the runtime-agreement test, and the label their flows get.
LABELLED_CAPTURES = {"ddos": "DDoS", "attacks": "Attack", "cicids2017": "Web Attack"}


@pytest.fixture(scope="module")
def real_rows(pcaps: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Meter rows of every shared DDoS/attack capture (~70k flows), labelled by folder."""
    if not METER.exists():
        pytest.skip("capture/flowmeter is not built (make meter)")
    folder = tmp_path_factory.mktemp("real")
    parts = []
    for sub, label in LABELLED_CAPTURES.items():
        for capture in sorted((pcaps / sub).glob("*.pcap*")):
            out = folder / f"{capture.name}.csv"
            subprocess.run(
                [str(METER), "-r", str(capture), "--profile", "engelen", "-q", "-o", str(out)], check=True
            )
            rows = read_meter_csv(out)
            parts.append(rows.assign(Label=label))
    rows = pd.concat(parts, ignore_index=True)
    assert rows["Label"].nunique() == len(LABELLED_CAPTURES) and len(rows) > 10_000
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A local store holding one model over mixed int/float meter columns: (tracking URI, name)."""
    folder = tmp_path_factory.mktemp("contract")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    name = unique_name("contract")
    register_model(uri, name, features=MIXED_FEATURES, artifact_location=folder / "artifacts")
    return uri, name


def test_pyfunc_predicts_meter_rows_like_the_sensor(
    store: tuple[str, str], meter_rows: pd.DataFrame, tmp_path: Path
) -> None:
    uri, name = store
    with mlflow_uris(uri):
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    schema = {c.name: str(c.type) for c in pyfunc.metadata.get_input_schema().inputs}
    assert schema["Flow Duration"].endswith("long") and schema["Flow Bytes/s"].endswith("double")
    predicted = np.asarray(pyfunc.predict(meter_rows))  # the meter's int64 columns pass enforcement
    sensor = ModelSource(f"models:/{name}@champion", tracking_uri=uri, cache_dir=tmp_path).load()
    np.testing.assert_array_equal(predicted, sensor.predict(meter_rows)[0])


@pytest.mark.slow
def test_mlflow_models_serve_answers_meter_rows(
    store: tuple[str, str], meter_rows: pd.DataFrame, tmp_path: Path
) -> None:
    uri, name = store
    port = free_port()
    bin_dir = Path(sys.executable).parent  # `mlflow models serve` execs `uvicorn` from PATH
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=uri, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{name}@champion"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc, timeout=120, log=log)
        body = {"dataframe_split": json.loads(meter_rows.to_json(orient="split", index=False))}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    with mlflow_uris(uri):
        local = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(meter_rows)
    assert answer["predictions"] == list(local)
    assert len(answer["predictions"]) == len(meter_rows)


def test_onnx_forest_gives_the_same_predictions_as_sklearn_on_real_meter_rows(
    real_rows: pd.DataFrame, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = unique_name("runtimes")
    features = (
        "Destination Port",
        "Flow Duration",
        "Flow Bytes/s",
        "Fwd Packet Length Max",
        "Init_Win_bytes_forward",
        "Bwd Packet Length Mean",
        "Flow IAT Max",
        "SYN Flag Count",
        "Packet Length Std",
        "Total Fwd Packets",
    )
    register_model(
        uri,
        name,
        features=features,
        frame=real_rows,
        n_estimators=30,
        max_depth=12,
        artifact_location=tmp_path / "artifacts",
    )
    onnx = ModelSource(f"models:/{name}@champion", tracking_uri=uri, cache_dir=tmp_path / "a").load()
    sklearn = ModelSource(
        f"models:/{name}@champion", tracking_uri=uri, cache_dir=tmp_path / "b", runtime="sklearn"
    ).load()
    assert (onnx.runtime, sklearn.runtime) == ("onnx", "sklearn")
    flows = real_rows.drop(columns="Label")
    onnx_labels, onnx_probability = onnx.predict(flows)
    sk_labels, sk_probability = sklearn.predict(flows)
    assert len(set(sk_labels)) == len(LABELLED_CAPTURES)  # the forest really separates the captures
    np.testing.assert_array_equal(onnx_labels, sk_labels)
    np.testing.assert_allclose(onnx_probability, sk_probability, atol=1e-5)

    frame = verdicts(onnx, flows)  # the hot path on parsed meter rows (Arrow-backed strings)
    assert tuple(frame.columns) == VERDICT_COLUMNS and len(frame) == len(flows)
    assert frame["Flow ID"].tolist() == flows["Flow ID"].tolist()
    assert frame["predicted"].tolist() == onnx_labels.tolist()
    assert set(frame["model_name"]) == {name} and set(frame["model_version"]) == {"1"}


def test_the_sensor_trusts_exactly_what_the_pipeline_pickles() -> None:
    """serve keeps its own allow-list (it never imports pipeline); the two must not drift apart:
    one fewer and the sensor refuses every registered model, one more is trust nobody asked for."""
    from pipeline.model import TRUSTED_TYPES as PIPELINE_TYPES
    from serve.trust import TRUSTED_TYPES as SENSOR_TYPES

    assert sorted(SENSOR_TYPES) == sorted(PIPELINE_TYPES)
