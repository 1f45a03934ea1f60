"""The typed, range-checked schema of the composed config (``conf/`` -> ``params.yaml``).

Every section of ``conf/config.yaml`` is a dataclass below; :func:`validate` checks a composed
config against it (types, ranges, choices, unknown keys) and raises :class:`ConfigError` with
one line naming the key, the value and what is allowed.  ``data`` and ``labels`` are checked by
shape only (their known fields typed, extra fields allowed), so new dataset presets need no
change here.

The check runs wherever the config is composed: ``python -m pipeline.params`` calls it, and the
``conf_fingerprint`` key of ``conf/config.yaml`` is an OmegaConf resolver (registered by
:func:`register_resolvers`, which Hydra's plugin discovery runs for ``dvc exp run`` too, see
``hydra_plugins/``) that validates the whole config and returns a hash of ``conf/``.  That hash
lets the ``config`` stage of ``dvc.yaml`` notice a ``params.yaml`` composed from an older ``conf/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
FINGERPRINT_KEY = "conf_fingerprint"


class ConfigError(ValueError):
    """The composed config breaks the schema (the message is one line)."""


def _range(
    lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}


def _choice(*options: Any) -> dict:
    return {"choices": options}


def _f(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


POSITIVE = _range(1)
FRACTION = _range(0, 1, lo_open=True, hi_open=True)  # strictly between 0 and 1
N_JOBS = _range(-1)


@dataclass(kw_only=True)
class DataConfig:
    """Input folder and the meter profile of its flows; presets may add their own fields."""

    input_dir: str = _f(nonempty=True)
    flow_profile: str | None = _f(None)
    __extra__: typing.ClassVar[bool] = True


@dataclass(kw_only=True)
class LabelsConfig:
    """Label column and original label -> class mapping; presets may add their own fields."""

    column: str = _f(nonempty=True)
    mapping: dict[str, str] = _f(nonempty=True)
    __extra__: typing.ClassVar[bool] = True


@dataclass(kw_only=True)
class SplitConfig:
    """How the test side is held out (see pipeline/split.py)."""

    strategy: str = _f(**_choice("stratified", "conversation", "by_day", "session"))
    test_size: float = _f(0.3, **FRACTION)
    test_files: list[str] | None = _f(None)
    #: split=session: seconds without a flow of a pair that end a session
    idle_gap_s: float | None = _f(None, **_range(0, lo_open=True))


@dataclass(kw_only=True)
class FeaturesConfig:
    use_destination_port: bool = _f(False)
    correlation_threshold: float = _f(0.8, **_range(0, 1, lo_open=True))


@dataclass(kw_only=True)
class BalanceConfig:
    method: str = _f(**_choice("smote", "none"))
    target_count: int = _f(5000, **POSITIVE)
    k_neighbors: int = _f(5, **POSITIVE)
    class_weight: str | None = _f(None, **_choice("balanced", None))


@dataclass(kw_only=True)
class EstimatorConfig:
    n_estimators: int = _f(20, **POSITIVE)
    max_depth: int | None = _f(8, **POSITIVE)


@dataclass(kw_only=True)
class SelectConfig:
    method: str = _f(**_choice("rfe"))
    scoring: str = _f("f1_macro", nonempty=True)
    cv_folds: int = _f(3, **_range(2))
    tolerance: float = _f(0.005, **_range(0, 1, hi_open=True))
    max_rows: int | None = _f(None, **POSITIVE)
    n_features: int | None = _f(None, **POSITIVE)
    step: int = _f(1, **POSITIVE)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    n_jobs: int = _f(2, **N_JOBS)


@dataclass(kw_only=True)
class SweepConfig:
    max_depth: list[int] = _f(nonempty=True, **POSITIVE)
    n_estimators: list[int] = _f(nonempty=True, **POSITIVE)
    scoring: str = _f("f1_macro", nonempty=True)
    cv_folds: int = _f(3, **_range(2))
    tolerance: float = _f(0.005, **_range(0, 1, hi_open=True))
    max_rows: int | None = _f(None, **POSITIVE)
    n_jobs: int = _f(2, **N_JOBS)
    enabled: bool = _f(True)


@dataclass(kw_only=True)
class ModelConfig:
    """Final forest; null: the sweep picks the value, a number fixes it."""

    max_depth: int | None = _f(None, **POSITIVE)
    n_estimators: int | None = _f(None, **POSITIVE)
    n_jobs: int = _f(2, **N_JOBS)


@dataclass(kw_only=True)
class MlflowConfig:
    tracking_uri: str = _f(nonempty=True)
    artifact_location: str | None = _f(None)
    experiment: str = _f(nonempty=True)
    registered_model: str = _f(nonempty=True)
    alias: str = _f(nonempty=True)


@dataclass(kw_only=True)
class NetsentryConfig:
    """The whole composed config (``params.yaml``)."""

    data: DataConfig
    labels: LabelsConfig
    split: SplitConfig
    features: FeaturesConfig
    balance: BalanceConfig
    select: SelectConfig
    sweep: SweepConfig
    model: ModelConfig
    mlflow: MlflowConfig
    seed: int = _f(42, **_range(0))
    conf_fingerprint: str | None = _f(None)


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _check_value(key: str, value: Any, tp: Any, meta: dict[str, Any]) -> None:
    """Check one value against a field type (and its metadata); raise ConfigError naming ``key``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return
        (tp,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{key} must be a mapping of {[f.name for f in dataclasses.fields(tp)]}, got {value!r}"
            )
        _check_section(key, value, tp)
        return
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}={value!r} must be a list")
        if meta.get("nonempty") and not value:
            raise ConfigError(f"{key} must not be empty")
        for i, item in enumerate(value):
            _check_value(f"{key}[{i}]", item, args[0], {k: v for k, v in meta.items() if k != "nonempty"})
        return
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{key} must be a mapping of strings to strings")
        if meta.get("nonempty") and not value:
            raise ConfigError(f"{key} must not be empty")
        return
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[tp]
    if not ok:
        raise ConfigError(f"{key}={value!r} must be {_type_name(tp)}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}={value!r} is not one of {list(meta['choices'])}")
    if meta.get("nonempty") and not value:
        raise ConfigError(f"{key} must not be empty")
    if meta.get("lo") is not None or meta.get("hi") is not None:
        _check_range(key, value, meta)


def _check_range(key: str, value: float, meta: dict[str, Any]) -> None:
    lo, hi = meta.get("lo"), meta.get("hi")
    too_low = lo is not None and (value <= lo if meta.get("lo_open") else value < lo)
    too_high = hi is not None and (value >= hi if meta.get("hi_open") else value > hi)
    if value != value or too_low or too_high:  # value != value: NaN
        left = "" if lo is None else f"{lo} {'<' if meta.get('lo_open') else '<='} "
        right = "" if hi is None else f" {'<' if meta.get('hi_open') else '<='} {hi}"
        raise ConfigError(f"{key}={value!r} is out of range: must be {left}{key.rsplit('.', 1)[-1]}{right}")


def _check_section(prefix: str, values: dict[str, Any], schema: type) -> None:
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    if not getattr(schema, "__extra__", False):
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigError(
                f"{prefix}{'.' if prefix else ''}{unknown[0]} is not a known key; "
                f"{prefix or 'the config'} has {sorted(fields)}"
            )
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key} is missing")
            continue
        _check_value(key, values[name], hints[name], dict(f.metadata))


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Check a composed config (plain dict) against :class:`NetsentryConfig`; return it unchanged."""
    _check_section("", params, NetsentryConfig)
    if not params["sweep"]["enabled"]:
        unset = [f"model.{k}" for k in ("max_depth", "n_estimators") if params["model"].get(k) is None]
        if unset:
            raise ConfigError(
                f"sweep.enabled=false needs {' and '.join(unset)} set (null means: the sweep picks)"
            )
    return params


#: the config groups the pipeline composes (``conf/serve/`` and ``conf/sensor.yaml`` are the sensor's)
PIPELINE_GROUPS = (
    "data",
    "labels",
    "split",
    "features",
    "balance",
    "select",
    "sweep",
    "model",
    "mlflow",
    "experiment",
)


def pipeline_conf_files(conf_dir: Path = CONF_DIR) -> list[Path]:
    """``config.yaml`` and every YAML file of the pipeline's groups, sorted by relative name."""
    files = [conf_dir / "config.yaml"]
    for group in PIPELINE_GROUPS:
        files += (conf_dir / group).rglob("*.yaml") if (conf_dir / group).is_dir() else []
    return sorted((f for f in files if f.is_file()), key=lambda p: p.relative_to(conf_dir).as_posix())


def conf_fingerprint(conf_dir: Path = CONF_DIR) -> str:
    """A short hash over the pipeline's config files (relative names and contents)."""
    digest = hashlib.sha256()
    for path in pipeline_conf_files(conf_dir):
        digest.update(path.relative_to(conf_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def validate_and_fingerprint(root: DictConfig, conf_dir: Path = CONF_DIR) -> str:
    """Body of the ``conf_fingerprint`` resolver: validate the rest of ``root``, hash ``conf_dir``."""
    plain = {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in ((k, root[k]) for k in root if k != FINGERPRINT_KEY)
    }
    validate(plain)
    return conf_fingerprint(conf_dir)


def register_resolvers(conf_dir: Path = CONF_DIR) -> None:
    """Register ``${netsentry_conf_fingerprint:}`` for the config folder ``conf_dir`` (idempotent)."""
    OmegaConf.register_new_resolver(
        "netsentry_conf_fingerprint", lambda _root_: validate_and_fingerprint(_root_, conf_dir), replace=True
    )
