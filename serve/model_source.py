"""Where the sensor's model comes from: ``models:/NAME@ALIAS`` in MLflow, with an on-disk cache.

:class:`ModelSource` resolves the alias to a version with :class:`~mlflow.MlflowClient`, reads the
version's tags (``flow_profile``, ``features``), downloads its artifacts and loads the skops file
itself with the sensor's own trust list (:mod:`serve.trust`), never MLflow's loader (which trusts the
list stored in the model).  The last good model is cached (:mod:`serve.cache`, one entry per model
URI and registry) so a sensor starts while the tracking server is away; a model is cached only once
it passed every check, so the cache never holds a model the sensor refused.  :meth:`ModelSource.poll`
follows the alias.  Every message names the tracking URI without its password (:mod:`serve.tracking`).
:func:`verdicts` turns a batch of meter rows into the verdict frame (:data:`serve.verdict.VERDICT_COLUMNS`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from flows.novelty import GUARD_TAG, UNKNOWN, NoveltyGuard
from flows.schema import FEATURE_COLUMNS
from serve import tracking
from serve.cache import CacheDamaged, ModelCache, private_dir
from serve.model_error import ModelError
from serve.runtime import OnnxForest, Predictor
from serve.tracking import Unreachable as _Unreachable
from serve.tracking import one_line as _one_line
from serve.trust import load_trusted
from serve.verdict import BENIGN, FLOW_DETECTOR, FLOW_FIELDS, GUARD_DETECTOR, UNJUDGED, VERDICT_COLUMNS

__all__ = ["LoadedModel", "ModelError", "ModelSource", "PROFILES", "verdicts"]

log = logging.getLogger(__name__)

#: The project root (parent of the ``serve`` package): default store and cache live there.
PROJECT_ROOT: Final[Path] = Path(__file__).resolve().parent.parent

#: Flow profiles the meter (``capture/flowmeter --profile``) implements.
PROFILES: Final[tuple[str, ...]] = ("cic2017", "engelen", "clean")

#: Model-version tag naming the ONNX conversion of the forest inside the model's folder (the pipeline's
#: ``log_and_register`` sets it; the same string as ``pipeline.onnx_forest.ONNX_TAG``).
ONNX_TAG: Final[str] = "onnx_forest"

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")

# A sensor must not sit through MLflow's default HTTP retries (7 tries with exponential backoff,
# minutes) on a dead server; the user's own settings still win.
_HTTP_DEFAULTS: Final[dict[str, str]] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


@dataclass
class LoadedModel:
    """A model ready to classify meter rows, and where it came from."""

    name: str
    version: str
    uri: str
    profile: str
    features: list[str]
    classes: list[str]
    runtime: str
    from_cache: bool
    predictor: Predictor | None = field(default=None, repr=False, compare=False)

    def predict(self, flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return (labels: object array of str, probability: float64 array) per row of ``flows``.

        Rows whose every selected feature is NaN/±inf get :data:`serve.verdict.UNJUDGED` and
        probability NaN.  Never raises for 1e308/inf/NaN values.
        """
        if self.predictor is None:
            raise ModelError(f"{self.name} v{self.version} has no predictor")
        return self.predictor.predict(flows)


#: pandas' own string dtype (Arrow-backed ``str`` in pandas 3): verdict strings are built in Arrow.
_STR_DTYPE = pd.Series([""]).dtype


def _strings(values: pa.Array) -> Any:
    """A pandas column of the strings in ``values`` without a Python object per row when possible."""
    if isinstance(_STR_DTYPE, pd.StringDtype) and _STR_DTYPE.storage == "pyarrow":
        return _STR_DTYPE.construct_array_type()(values.cast(pa.large_string()), dtype=_STR_DTYPE)
    return values.to_numpy(zero_copy_only=False)


def verdicts(model: LoadedModel, flows: pd.DataFrame) -> pd.DataFrame:
    """The verdict frame (:data:`VERDICT_COLUMNS`) for a batch of meter rows: one row per flow.

    The hot path: flow fields are shared with ``flows`` (no copy), the label, model name and
    version columns are built in Arrow (a row costs no Python object).
    """
    if model.predictor is None:
        raise ModelError(f"{model.name} v{model.version} has no predictor")
    codes, probability = model.predictor.predict_codes(flows)
    n = len(flows)
    columns: dict[str, Any] = {c: flows[c].array for c in FLOW_FIELDS}
    columns["predicted"] = _strings(pa.array(model.predictor.labels.tolist()).take(pa.array(codes)))
    columns["probability"] = probability
    columns["model_name"] = _strings(pa.repeat(pa.scalar(model.name), n))
    columns["model_version"] = _strings(pa.repeat(pa.scalar(model.version), n))
    columns["detector"] = _strings(_detector_names(model.predictor.labels).take(pa.array(codes)))
    columns["evidence"] = _strings(pa.repeat(pa.scalar(""), n))
    return pd.DataFrame(columns, columns=list(VERDICT_COLUMNS), copy=False)


def _detector_names(labels: np.ndarray) -> pa.Array:
    """Per label index, the detector that decided it: none for benign and unjudged flows, the
    novelty guard for UNKNOWN, the flow model for an attack group."""
    names = ["" if label in (BENIGN, UNJUDGED) else GUARD_DETECTOR if label == UNKNOWN else FLOW_DETECTOR
             for label in labels.tolist()]
    return pa.array(names, type=pa.string())


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the project's embedded store ``sqlite:///<root>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``; ModelError else."""
    m = _URI.match(uri or "")
    if not m:
        raise ModelError(f"bad model URI {uri!r}: expected models:/NAME@ALIAS (or models:/NAME/VERSION)")
    return m["name"], m["alias"], m["version"]


def _read_flavor(folder: Path) -> dict[str, Any]:
    """The sklearn flavor of the MLmodel file in ``folder`` (data path, serialisation format)."""
    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"the model has no readable MLmodel file ({_one_line(exc)})") from exc
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    if not isinstance(flavors, dict):
        raise ModelError("the model's MLmodel file is not an MLflow model description (no flavors mapping)")
    flavor = flavors.get("sklearn")
    if not isinstance(flavor, dict) or not flavor:
        raise ModelError("the model is not a scikit-learn model (no sklearn flavor in MLmodel)")
    if flavor.get("serialization_format") != "skops":
        raise ModelError(
            f"the model is serialised as {flavor.get('serialization_format')!r}; the sensor loads skops only"
        )
    return flavor


def check_tags(tags: dict[str, str]) -> tuple[str, list[str]]:
    """(profile, features) from a version's tags; ModelError when missing or not what the meter makes."""
    profile = tags.get("flow_profile", "")
    if profile not in PROFILES:
        raise ModelError(f"the model's flow_profile tag is {profile!r}; the meter has {'|'.join(PROFILES)}")
    features = [f for f in tags.get("features", "").split(",") if f]
    if not features:
        raise ModelError("the model version has no `features` tag (the input columns it reads)")
    lacking = [f for f in features if f not in FEATURE_COLUMNS]
    if lacking:
        raise ModelError(f"the model reads column(s) the meter does not produce: {', '.join(lacking)}")
    return profile, features


def _input_example(folder: Path) -> pd.DataFrame | None:
    """The rows MLflow saved beside the model (``input_example.json``, pandas split orient)."""
    try:
        data = json.loads((folder / "input_example.json").read_text())
        return pd.DataFrame(data["data"], columns=data["columns"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _model_file(folder: Path, name: str) -> Path | None:
    """The file a version tag names, if it is a file inside the model's folder (never outside it)."""
    path = (folder / name).resolve()
    return path if path.is_file() and folder.resolve() in path.parents else None


def _novelty_guard(folder: Path, tags: dict[str, str], n_features: int) -> NoveltyGuard | None:
    """The version's novelty guard (tag ``novelty_guard``), or None if it was trained without one.

    A guard that is named but cannot be read refuses the model: running without it would turn
    every flow it would have called UNKNOWN into an attack alert."""
    name = tags.get(GUARD_TAG)
    if not name:
        return None
    path = _model_file(folder, name)
    if path is None:
        raise ModelError(f"the model's {GUARD_TAG} tag names {name!r}, not a file of the model")
    try:
        guard = NoveltyGuard.load(path)
    except ValueError as exc:
        raise ModelError(f"the model's novelty guard cannot be read: {exc}") from exc
    if len(guard.center) != n_features:
        raise ModelError(
            f"the model's novelty guard reads {len(guard.center)} features, the model {n_features}"
        )
    return guard


def _onnx_forest(folder: Path, tags: dict[str, str], predictor: Predictor, threads: int) -> OnnxForest | None:
    """The version's ONNX forest if it has one that agrees with the skops forest, else None (logged)."""
    name = tags.get(ONNX_TAG)
    if not name:
        return None
    path = _model_file(folder, name)
    if path is None:
        log.warning(
            "the model's %s tag names %r, not a file of the model; using scikit-learn", ONNX_TAG, name
        )
        return None
    try:
        onnx = OnnxForest(path, len(predictor.classes), threads)
    except ModelError as exc:
        log.warning("%s; using scikit-learn", exc)
        return None
    example = _input_example(folder)
    if example is not None and len(example):
        # the conversion must give the forest's probabilities (float32 sums: tolerance 1e-4)
        x, _ = predictor.matrix(example)
        if not np.allclose(onnx.predict_proba(x), predictor.forest.predict_proba(x), atol=1e-4):
            log.warning("the model's ONNX forest disagrees with its skops forest; using scikit-learn")
            return None
    return onnx


def build_model(
    folder: Path, meta: dict[str, Any], uri: str, from_cache: bool, runtime: str, threads: int
) -> LoadedModel:
    """Load the model in ``folder`` (artifacts + version ``meta``) with the trust list, ready to predict."""
    tags = meta.get("tags", {})
    profile, features = check_tags(tags)
    flavor = _read_flavor(folder)
    model = load_trusted(folder / str(flavor.get("pickled_model", "model.skops")))
    predictor = Predictor(model, features, threads=threads)
    predictor.guard = _novelty_guard(folder, tags, len(features))
    chosen = "sklearn"
    if runtime != "sklearn":
        onnx = _onnx_forest(folder, tags, predictor, threads)
        if onnx is not None:
            predictor.forest, chosen = onnx, "onnx"
        elif runtime == "onnx":
            raise ModelError(
                f"runtime onnx asked, but {meta['name']} v{meta['version']} has no usable ONNX forest"
            )
    return LoadedModel(
        name=meta["name"],
        version=str(meta["version"]),
        uri=uri,
        profile=profile,
        features=features,
        classes=[str(c) for c in predictor.classes],
        runtime=chosen,
        from_cache=from_cache,
        predictor=predictor,
    )


class ModelSource:
    """Loads ``models:/NAME@ALIAS`` from a tracking server or store, caches it, follows the alias."""

    def __init__(
        self,
        model_uri: str = "models:/netsentry@champion",
        tracking_uri: str | None = None,
        cache_dir: Path | None = None,
        runtime: str = "auto",
        threads: int = 1,
    ) -> None:
        """``runtime``: ``auto`` (the ONNX forest when the version carries one, else scikit-learn),
        ``sklearn`` or ``onnx``; ``threads``: inference threads (the sensor shares its cores).

        Raises :class:`~serve.tracking.TrackingUriError` (a config error) for a tracking URI the
        sensor cannot use, :class:`ModelError` for a bad model URI or runtime."""
        if runtime not in ("auto", "sklearn", "onnx"):
            raise ModelError(f"unknown runtime {runtime!r}: auto, sklearn or onnx")
        self.model_uri = model_uri
        self.name, self.alias, self.version = parse_model_uri(model_uri)
        self.tracking_uri = tracking.check(tracking_uri or default_tracking_uri())
        #: the tracking URI as every message shows it (no password)
        self.shown_uri = tracking.redact(self.tracking_uri, self.tracking_uri)
        self.cache_dir = Path(cache_dir) if cache_dir else PROJECT_ROOT / ".netsentry" / "model-cache"
        self.cache = ModelCache(self.cache_dir, f"{self.name}@{self.alias or 'v' + str(self.version)}",
                                tracking.identity(self.tracking_uri), tracking.digest(self.tracking_uri))
        self.runtime = runtime
        self.threads = threads
        self.current: LoadedModel | None = None
        self._poll_failing = False
        self._refused: set[str] = set()
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)

    # -- the registry ---------------------------------------------------------------------------
    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        try:
            return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        except Exception as exc:  # a database store connects (and may fail) as the client is made
            raise _Unreachable(f"tracking store {self.shown_uri}: {self._line(exc)}") from exc

    def _line(self, exc: BaseException) -> str:
        return _one_line(exc, self.tracking_uri)

    def _resolve(self, client: Any) -> Any:
        """The ModelVersion the URI names; ModelError for a missing model/alias or refused
        credentials, _Unreachable else."""
        from mlflow.exceptions import MlflowException

        try:
            if self.alias:
                return client.get_model_version_by_alias(self.name, self.alias)
            return client.get_model_version(self.name, self.version)
        except MlflowException as exc:
            if exc.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                raise ModelError(
                    f"tracking server {self.shown_uri} refused the credentials ({exc.error_code}): "
                    "give user:password in the URI or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"
                ) from exc
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise _Unreachable(f"tracking server {self.shown_uri}: {self._line(exc)}") from exc
            try:
                registered = client.get_registered_model(self.name)
            except MlflowException as inner:
                raise ModelError(f"no registered model {self.name!r} at {self.shown_uri}") from inner
            if self.alias:
                known = ", ".join(sorted(registered.aliases)) or "none"
                raise ModelError(
                    f"model {self.name!r} has no alias @{self.alias} (aliases: {known})"
                ) from exc
            raise ModelError(f"model {self.name!r} has no version {self.version}") from exc
        except Exception as exc:  # requests/sqlalchemy connection errors are not MlflowExceptions
            raise _Unreachable(f"tracking server {self.shown_uri}: {self._line(exc)}") from exc

    def _fetch(self, client: Any, mv: Any) -> LoadedModel:
        """Download version ``mv``, load and check it, then make it the cached model."""
        import mlflow.artifacts

        meta = {"name": self.name, "version": str(mv.version), "tags": dict(mv.tags or {})}
        profile, _ = check_tags(meta["tags"])  # refuse before downloading anything
        if self.current is not None and profile != self.current.profile:
            # the meter runs the first model's profile: such a version can never run in this sensor
            raise ModelError(f"version {mv.version} expects flow profile {profile} but the meter runs "
                             f"{self.current.profile} (restart the sensor to use it)")
        private_dir(self.cache_dir)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".download-") as tmp:
            try:
                folder = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=client.get_model_version_download_uri(self.name, mv.version),
                        dst_path=tmp,
                        tracking_uri=self.tracking_uri,
                    )
                )
            except Exception as exc:
                raise _Unreachable(f"cannot download {self.name} v{mv.version}: {self._line(exc)}") from exc
            # loaded (and so checked) before it replaces the cached model; it lives in memory after
            model = build_model(folder, meta, self.model_uri, False, self.runtime, self.threads)
            self.cache.store(folder, meta)
        return model

    def _from_cache(self, reason: str) -> LoadedModel:
        try:
            hit = self.cache.load()
            if hit is None:
                raise ModelError(f"{reason}, and no cached model for {self.model_uri} from {self.shown_uri} "
                                 f"in {self.cache_dir}")
            model = build_model(hit[0], hit[1], self.model_uri, True, self.runtime, self.threads)
        except CacheDamaged as exc:
            raise ModelError(f"{reason}, and the cached model for {self.model_uri} in {self.cache.folder} "
                             f"is damaged ({exc})") from exc
        log.warning("%s; starting from the cached model %s v%s", reason, model.name, model.version)
        return model

    # -- the contract ---------------------------------------------------------------------------
    def load(self) -> LoadedModel:
        """The model from the tracking server/store, or from the cache when it is unreachable.

        Raises :class:`ModelError` (one line) for a missing model or alias, columns the meter cannot
        produce, untrusted types, refused credentials, or an unreachable server with nothing (whole)
        cached.  A damaged cache entry is replaced by the fetched model.
        """
        try:
            tracking.probe(self.tracking_uri)
            client = self._client()
            model = self._fetch(client, self._resolve(client))
        except _Unreachable as exc:
            model = self._from_cache(str(exc))
        self.current = model
        return model

    def poll(self) -> LoadedModel | None:
        """The newly loaded model when the alias points to another version now, else None.

        Never raises: a network error logs one warning (once per outage) and a new version the
        sensor refuses (another flow profile than the running one, untrusted, ...) logs one
        warning (once per version); both keep the current model, and the cache keeps it too.
        """
        if not self.alias:
            return None
        version = ""
        try:
            tracking.probe(self.tracking_uri)
            client = self._client()
            mv = self._resolve(client)
            version = str(mv.version)
            if (self.current is not None and version == self.current.version) or version in self._refused:
                self._poll_failing = False
                return None
            model = self._fetch(client, mv)
        except _Unreachable as exc:
            if not self._poll_failing:
                log.warning("model poll: %s; keeping %s", exc, self._describe_current())
            self._poll_failing = True
            return None
        except ModelError as exc:
            # a refused version (or a vanished alias) is reported once, not at every poll
            self._poll_failing = False
            key = version or str(exc)
            if key not in self._refused:
                self._refused.add(key)
                log.warning(
                    "model poll: %s cannot be used: %s; keeping %s",
                    self.model_uri,
                    exc,
                    self._describe_current(),
                )
            return None
        self._poll_failing = False
        self.current = model
        return model

    def _describe_current(self) -> str:
        return f"{self.current.name} v{self.current.version}" if self.current else "no model"
