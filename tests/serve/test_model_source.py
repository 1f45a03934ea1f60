"""serve.model_source against a real local MLflow store (SQLite): load, cache, poll, refusals, predict."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.preprocessing import FunctionTransformer

from flows.schema import FLOW_COLUMNS
from serve.model_source import LoadedModel, ModelError, ModelSource, verdicts
from serve.trust import TRUSTED_TYPES
from serve.verdict import FLOW_FIELDS, UNJUDGED, VERDICT_COLUMNS
from tests.serve.mlflow_servers import TEST_FEATURES, move_alias, register_model, synthetic_flows, unique_name


class Store:
    """A local SQLite tracking store with its artifact folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uri = f"sqlite:///{folder / 'mlflow.db'}"
        self.artifacts = folder / "artifacts"

    def register(self, name: str, **kw: object) -> str:
        return register_model(self.uri, name, artifact_location=self.artifacts, **kw)

    def reference(self, name: str, version: str):
        """The version loaded by MLflow's own loader, as a yardstick."""
        client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return mlflow.sklearn.load_model(client.get_model_version_download_uri(name, version))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def champion(store: Store) -> str:
    """A model name registered once for this module (v1 under @champion)."""
    name = unique_name("local")
    store.register(name, seed=1)
    return name


def source(store: Store, name: str, cache: Path, alias: str = "champion", **kw: object) -> ModelSource:
    return ModelSource(f"models:/{name}@{alias}", tracking_uri=store.uri, cache_dir=cache, **kw)


def meter_like(rows: pd.DataFrame) -> pd.DataFrame:
    """Full meter rows (every canonical column) carrying ``rows``' feature values."""
    out = pd.DataFrame({c: np.zeros(len(rows)) for c in FLOW_COLUMNS})
    for c in ("Flow ID", "Source IP", "Destination IP", "Timestamp"):
        out[c] = [f"{c}-{i}" for i in range(len(rows))]
    for c in rows.columns:
        if c in out.columns:
            out[c] = rows[c].to_numpy()
    return out


def test_loads_by_alias_with_tags_and_predicts_like_the_registered_pipeline(
    store: Store, champion: str, tmp_path: Path
) -> None:
    model = source(store, champion, tmp_path).load()
    assert (model.name, model.version, model.profile) == (champion, "1", "engelen")
    assert model.uri == f"models:/{champion}@champion"
    assert model.features == list(TEST_FEATURES)
    assert model.classes == ["BENIGN", "DoS", "PortScan"]
    assert (model.runtime, model.from_cache) == ("onnx", False)  # the ONNX forest travels with it
    assert model.predictor.fast  # the pipeline's preprocessing is recognised: numpy hot path

    flows = meter_like(synthetic_flows(TEST_FEATURES, seed=7))
    reference = store.reference(champion, "1")
    for runtime in ("auto", "sklearn"):
        model = source(store, champion, tmp_path / runtime, runtime=runtime).load()
        labels, probability = model.predict(flows)
        np.testing.assert_array_equal(labels, reference.predict(flows))
        np.testing.assert_allclose(probability, reference.predict_proba(flows).max(axis=1), atol=1e-6)
        assert labels.dtype == object and probability.dtype == np.float64
    assert model.runtime == "sklearn"


def test_an_onnx_tag_pointing_outside_the_model_falls_back_to_sklearn(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique_name("onnxtag")
    version = store.register(name)
    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    client.set_model_version_tag(name, version, "onnx_forest", "../../../etc/passwd")
    with caplog.at_level(logging.WARNING, logger="serve.model_source"):
        assert source(store, name, tmp_path / "a").load().runtime == "sklearn"
    assert "not a file of the model" in caplog.text
    client.delete_model_version_tag(name, version, "onnx_forest")
    with pytest.raises(ModelError, match="runtime onnx asked.*no usable ONNX forest"):
        source(store, name, tmp_path / "b", runtime="onnx").load()


def test_unjudgeable_rows_and_extreme_values(store: Store, champion: str, tmp_path: Path) -> None:
    model = source(store, champion, tmp_path).load()
    rows = synthetic_flows(TEST_FEATURES, n_per_class=2, seed=3).drop(columns="Label").head(5)
    rows.iloc[0] = np.nan  # nothing to judge
    rows.iloc[1] = [np.inf, -np.inf, np.nan, np.inf]  # nothing finite either
    rows.iloc[2, 0] = 1e308  # beyond float32: must not break the batch
    rows.iloc[3, 1] = -1e308
    rows.iloc[4, 2] = np.inf  # one missing value: judged with the training median
    labels, probability = model.predict(meter_like(rows))
    assert list(labels[:2]) == [UNJUDGED, UNJUDGED]
    assert np.isnan(probability[:2]).all()
    assert set(labels[2:]) <= set(model.classes)
    assert np.isfinite(probability[2:]).all() and (probability[2:] > 0).all()

    # +inf in one feature behaves exactly like the training median of that feature
    reference = store.reference(champion, "1")
    median = reference.named_steps["prep"].named_steps["impute"].statistics_[2]
    at_median = rows.iloc[[4]].copy()
    at_median.iloc[0, 2] = median
    np.testing.assert_allclose(
        model.predict(meter_like(rows.iloc[[4]]))[1], model.predict(meter_like(at_median))[1]
    )


def test_verdict_frame_copies_the_flow_fields_and_names_the_model(
    store: Store, champion: str, tmp_path: Path
) -> None:
    model = source(store, champion, tmp_path).load()
    flows = meter_like(synthetic_flows(TEST_FEATURES, n_per_class=3, seed=4))
    flows.loc[1, list(TEST_FEATURES)] = np.nan  # unjudgeable
    frame = verdicts(model, flows)
    assert tuple(frame.columns) == VERDICT_COLUMNS
    assert len(frame) == len(flows)
    for column in FLOW_FIELDS:
        pd.testing.assert_series_equal(frame[column], flows[column])
    labels, probability = model.predict(flows)
    assert frame["predicted"].tolist() == labels.tolist()
    np.testing.assert_array_equal(frame["probability"].to_numpy(), probability)
    assert frame.loc[1, "predicted"] == UNJUDGED and np.isnan(frame.loc[1, "probability"])
    assert (frame["predicted"] != UNJUDGED).sum() == len(flows) - 1
    assert set(frame["model_name"]) == {champion} and set(frame["model_version"]) == {"1"}
    assert verdicts(model, flows.head(0)).empty


def test_poll_follows_the_alias(store: Store, tmp_path: Path) -> None:
    name = unique_name("poll")
    store.register(name, seed=1)
    src = source(store, name, tmp_path)
    assert src.load().version == "1"
    assert src.poll() is None  # alias unchanged
    store.register(name, seed=2)  # v2, alias moves
    moved = src.poll()
    assert isinstance(moved, LoadedModel) and moved.version == "2" and not moved.from_cache
    assert src.poll() is None
    move_alias(store.uri, name, "1")  # rolled back
    assert src.poll().version == "1"


@contextlib.contextmanager
def store_away(store: Store) -> Iterator[None]:
    """The store's database file moved aside for the block (the same URI, nothing to read there)."""
    db = store.folder / "mlflow.db"
    aside = db.with_name("mlflow.db.away")
    db.rename(aside)
    try:
        yield
    finally:
        aside.rename(db)


def test_starts_from_the_cache_when_the_store_is_away(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = Store(tmp_path / "store")
    name = unique_name("cache")
    own.register(name, seed=1)
    own.register(name, seed=2)
    cache = tmp_path / "cache"
    fresh = source(own, name, cache).load()
    with store_away(own):
        away = source(own, name, cache)
        with caplog.at_level(logging.WARNING, logger="serve.model_source"):
            cached = away.load()
        assert (cached.version, cached.from_cache) == ("2", True)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "v2" in warnings[0] and "cached" in warnings[0]
        flows = meter_like(synthetic_flows(TEST_FEATURES, seed=5))
        np.testing.assert_array_equal(cached.predict(flows)[0], fresh.predict(flows)[0])
        assert not (own.folder / "mlflow.db").exists()  # the sensor never creates a store
        # polling a store that is away: one warning, no exception, the model stays
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="serve.model_source"):
            assert away.poll() is None and away.poll() is None
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_cached_model_serves_only_the_registry_it_came_from(tmp_path: Path) -> None:
    """Issue 20 item 11: one cache folder, two registries with the same model name: two entries; a
    sensor pointed at a third registry that is unreachable runs nothing cached from the others."""
    first, second = Store(tmp_path / "first"), Store(tmp_path / "second")
    name = unique_name("two-registries")
    first.register(name, seed=1)
    second.register(name, seed=2)
    second.register(name, seed=3)  # v2 there: the two entries differ by version too
    cache = tmp_path / "cache"
    assert source(first, name, cache).load().version == "1"
    assert source(second, name, cache).load().version == "2"
    entries = sorted(p for p in cache.iterdir() if not p.name.startswith("."))
    assert len(entries) == 2 and all(p.name.startswith(f"{name}@champion-") for p in entries)
    with store_away(first), store_away(second):
        assert source(first, name, cache).load().version == "1"
        assert source(second, name, cache).load().version == "2"
        third = Store(tmp_path / "third")
        with pytest.raises(ModelError, match=r"no tracking store at .*third.*no cached model") as info:
            source(third, name, cache).load()
    assert "\n" not in str(info.value)


def test_a_version_of_another_profile_is_refused_before_the_cache(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20 item 11: the alias moves to a version the running meter cannot feed (another flow
    profile): refused once, never cached, never current; a restart from the cache gets the old one."""
    own = Store(tmp_path / "store")
    name = unique_name("profile-move")
    own.register(name, seed=1, profile="engelen")
    cache = tmp_path / "cache"
    src = source(own, name, cache)
    assert src.load().version == "1"
    (entry,) = [p for p in cache.iterdir() if (p / "meta.json").is_file()]
    before = (entry / "meta.json").read_text()
    assert json.loads(before)["version"] == "1"
    own.register(name, seed=2, profile="clean")  # v2 takes the alias
    with caplog.at_level(logging.WARNING, logger="serve.model_source"):
        assert src.poll() is None and src.poll() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "version 2 expects flow profile clean but the meter runs engelen" in warnings[0]
    assert "keeping " + name + " v1" in warnings[0]
    assert src.current.version == "1"
    assert (entry / "meta.json").read_text() == before  # the cache still holds what runs
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [entry.name]
    with store_away(own):
        restarted = source(own, name, cache).load()
    assert (restarted.version, restarted.profile, restarted.from_cache) == ("1", "engelen", True)
    own.register(name, seed=3, profile="engelen")  # v3, the running profile again: taken
    assert src.poll().version == "3"
    assert json.loads((entry / "meta.json").read_text())["version"] == "3"


def test_nothing_cached_and_store_away_is_one_clear_error(tmp_path: Path) -> None:
    src = ModelSource(
        "models:/netsentry@champion", tracking_uri=f"sqlite:///{tmp_path}/no.db", cache_dir=tmp_path
    )
    with pytest.raises(ModelError, match=r"no tracking store at .*no\.db.*no cached model") as info:
        src.load()
    assert "\n" not in str(info.value)


def _planted_untrusted(model):  # a function outside the sensor's trust list in the preprocessing
    model.steps[0][1].steps[1] = ("inf", FunctionTransformer(np.copy))
    return model


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("bad uri", r"bad model URI 'runs:/abc/model'"),
        ("missing model", r"no registered model 'nope-\d+'"),
        ("unknown alias", r"has no alias @staging \(aliases: champion\)"),
        ("untrusted type", r"types outside the sensor's trust list: numpy\.copy"),
        ("columns the meter lacks", r"column\(s\) the meter does not produce: Fwd Header Length\.1, Label2"),
        ("unknown profile", r"flow_profile tag is 'nfstream'"),
    ],
)
def test_refusals_are_one_line_model_errors(
    store: Store, champion: str, tmp_path: Path, case, pattern
) -> None:
    name, alias = champion, "champion"
    if case == "bad uri":
        with pytest.raises(ModelError, match=pattern) as info:
            ModelSource("runs:/abc/model", tracking_uri=store.uri, cache_dir=tmp_path)
        assert "\n" not in str(info.value)
        return
    if case == "missing model":
        name = f"nope-{len(case)}"
    elif case == "unknown alias":
        alias = "staging"
    elif case == "untrusted type":
        name = unique_name("untrusted")
        store.register(name, model_transform=_planted_untrusted, extra_trusted=["numpy.copy"])
    elif case == "columns the meter lacks":
        name = unique_name("columns")
        store.register(name, features=(*TEST_FEATURES[:2], "Fwd Header Length.1", "Label2"))
    elif case == "unknown profile":
        name = unique_name("profile")
        store.register(name, profile="nfstream")
    with pytest.raises(ModelError, match=pattern) as info:
        source(store, name, tmp_path, alias=alias).load()
    assert "\n" not in str(info.value)
    assert not any((tmp_path).glob("*/meta.json"))  # a refused model is never cached


def test_a_refused_new_version_keeps_the_current_model(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique_name("refuse")
    store.register(name, seed=1)
    src = source(store, name, tmp_path)
    assert src.load().version == "1"
    store.register(name, model_transform=_planted_untrusted, extra_trusted=["numpy.copy"])
    with caplog.at_level(logging.WARNING, logger="serve.model_source"):
        assert src.poll() is None and src.poll() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "numpy.copy" in warnings[0] and "keeping" in warnings[0]
    assert src.current.version == "1"
    assert "numpy.copy" not in TRUSTED_TYPES
