"""A small pipeline-shaped model, registered in a tracking store, for the sensor's tests.

Trained on real meter rows: the flows of the shared ``synscan.pcap`` labelled ``PortScan``, the
flows of a few ordinary protocol captures labelled ``BENIGN``.  It goes through the pipeline's
own ``fit_inference_model`` + ``log_and_register``, with the version tags the sensor reads
(``flow_profile``, ``features``), so the sensor loads it exactly like a ``dvc repro`` model.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from flows.meter_csv import read_meter_csv
from flows.novelty import GUARD_FILE, GUARD_TAG, NoveltyGuard
from flows.schema import feature_columns
from pipeline.model import TRUSTED_TYPES, fit_inference_model
from pipeline.tracking import log_and_register
from tests.serve.mlflow_servers import mlflow_uris
from tests.serve.sensor_run import Store

METER = Path(__file__).resolve().parents[2] / "capture" / "flowmeter"

#: Ordinary traffic (BENIGN) from the shared protocol captures.
BENIGN_CAPTURES = ("iphone.pcap", "android.pcap", "http_ipv6.pcap", "1kxun.pcap", "facebook.pcap",
                   "dhcp.pcap", "ssh.pcap", "instagram.pcap", "mdns.pcap", "skype.pcap")

#: What the model reads: the first canonical features (no Destination Port shortcut).
FEATURES: tuple[str, ...] = tuple(feature_columns(False)[:16])


def meter(capture: Path, out: Path, profile: str = "clean") -> pd.DataFrame:
    """Run the meter on ``capture`` and read its rows."""
    subprocess.run([str(METER), "-r", str(capture), "--profile", profile, "-q", "-o", str(out)],
                   check=True, timeout=120)
    return read_meter_csv(out)


@cache
def _training_rows(pcaps: Path, work: Path, profile: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    work.mkdir(parents=True, exist_ok=True)
    frames, labels = [], []
    for name, label in [("synscan.pcap", "PortScan")] + [(n, "BENIGN") for n in BENIGN_CAPTURES]:
        rows = meter(pcaps / "protocols" / name, work / f"{name}.{profile}.csv", profile)
        frames.append(rows)
        labels += [label] * len(rows)
    return pd.concat(frames, ignore_index=True), tuple(labels)


def fit_model(pcaps: Path, work: Path, profile: str = "clean", seed: int = 0,
              features: tuple[str, ...] = FEATURES) -> tuple[Any, pd.DataFrame, tuple[str, ...]]:
    """The fixture's model (deterministic for a seed), its training rows and their labels."""
    rows, labels = _training_rows(pcaps, work, profile)
    train = rows[list(features)]
    medians = {f: float(pd.to_numeric(train[f], errors="coerce").replace([float("inf"), -float("inf")],
                                                                          float("nan")).median())
               for f in features}
    medians = {f: (0.0 if v != v else v) for f, v in medians.items()}  # noqa: PLR0124 - NaN check
    forest = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=seed, n_jobs=1)
    return fit_inference_model(train, list(labels), list(features), medians, forest), train, labels


def register_model(tracking_uri: str, pcaps: Path, work: Path, *, name: str = "netsentry",
                   alias: str = "champion", profile: str = "clean", seed: int = 0,
                   features: tuple[str, ...] = FEATURES, tags: dict[str, str] | None = None,
                   guard_coverage: float | None = None) -> str:
    """Train, log and register a version of ``name``, point ``alias`` at it; returns the version.

    ``guard_coverage``: also fit a novelty guard (``flows.novelty``) on the training rows, as
    ``pipeline.train`` does."""
    model, train, labels = fit_model(pcaps, work, profile, seed, features)
    with mlflow_uris(tracking_uri):  # tracking and registry: never a registry left from before
        experiment = mlflow.get_experiment_by_name("netsentry-serve-tests")
        if experiment is not None:
            exp_id = experiment.experiment_id
        else:  # an embedded store keeps artifacts in `work`; a server chooses its own place
            location = None if tracking_uri.startswith("http") else (work / "artifacts").as_uri()
            exp_id = mlflow.create_experiment("netsentry-serve-tests", artifact_location=location)
        all_tags = {"flow_profile": profile, "features": ",".join(features), **(tags or {})}
        with mlflow.start_run(experiment_id=exp_id):
            # what pipeline.train logs on the registering run (here on the training rows: a fixture)
            accuracy = float((model.predict(train) == list(labels)).mean())
            mlflow.log_metrics({"accuracy": accuracy, "f1_macro": 0.5, "f1_PortScan": 0.25})
            extra = {}
            if guard_coverage:
                extra[GUARD_TAG] = work / f"guard-{name}-{seed}" / GUARD_FILE
                extra[GUARD_TAG].parent.mkdir(parents=True, exist_ok=True)
                guard = NoveltyGuard.fit(model[:-1].transform(train), np.asarray(labels), guard_coverage)
                guard.save(extra[GUARD_TAG])
            names = {"registered_model": name, "alias": alias}
            info = log_and_register(model, train.head(5), all_tags, names, list(TRUSTED_TYPES),
                                    extra_files=extra)
    return info["version"]


def sqlite_store(pcaps: Path, work: Path, **register: Any) -> Store:
    """A SQLite tracking store in ``work`` whose ``netsentry@champion`` is this module's test model."""
    uri = f"sqlite:///{work / 'mlflow.db'}"
    register_model(uri, pcaps, work / "train", **register)
    return Store(uri, work / "cache", work)
