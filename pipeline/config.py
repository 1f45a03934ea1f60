"""The typed, range-checked schema of the composed config (``conf/`` -> ``params.yaml``).

Every section of ``conf/config.yaml`` is a dataclass below; :func:`validate` checks a composed
config against it (types, ranges, choices, unknown keys: the mechanism of
``flows/config_schema.py``, shared with the sensor) and raises :class:`ConfigError` with one line
naming the key, the value and what is allowed.  ``data`` and ``labels`` are checked by
shape only (their known fields typed, extra fields allowed), so new dataset presets need no
change here.

The check runs wherever the config is composed: ``python -m pipeline.params`` calls it, and the
``conf_fingerprint`` key of ``conf/config.yaml`` is an OmegaConf resolver (registered by
:func:`register_resolvers`, which Hydra's plugin discovery runs for ``dvc exp run`` too, see
``hydra_plugins/``) that validates the whole config and returns a hash of ``conf/``.  That hash
lets the ``config`` stage of ``dvc.yaml`` notice a ``params.yaml`` composed from an older ``conf/``.
"""

from __future__ import annotations

import hashlib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from flows.config_schema import POSITIVE, ConfigError, choice, setting, value_range
from flows.config_schema import validate as check_schema

__all__ = ["ConfigError", "NetsentryConfig", "validate", "validate_and_fingerprint", "register_resolvers"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
FINGERPRINT_KEY = "conf_fingerprint"


FRACTION = value_range(0, 1, lo_open=True, hi_open=True)  # strictly between 0 and 1
N_JOBS = value_range(-1)


@dataclass(kw_only=True)
class DataConfig:
    """Input folder and the meter profile of its flows; presets may add their own fields."""

    input_dir: str = setting(nonempty=True)
    flow_profile: str | None = setting(None)
    __extra__: typing.ClassVar[bool] = True


@dataclass(kw_only=True)
class LabelsConfig:
    """Label column and original label -> class mapping; presets may add their own fields."""

    column: str = setting(nonempty=True)
    mapping: dict[str, str] = setting(nonempty=True)
    __extra__: typing.ClassVar[bool] = True


@dataclass(kw_only=True)
class SplitConfig:
    """How the test side is held out (see pipeline/split.py)."""

    strategy: str = setting(**choice("stratified", "conversation", "by_day", "session"))
    test_size: float = setting(0.3, **FRACTION)
    test_files: list[str] | None = setting(None)
    #: split=session: seconds without a flow of a pair that end a session
    idle_gap_s: float | None = setting(None, **value_range(0, lo_open=True))


@dataclass(kw_only=True)
class FeaturesConfig:
    use_destination_port: bool = setting(False)
    correlation_threshold: float = setting(0.8, **value_range(0, 1, lo_open=True))


@dataclass(kw_only=True)
class BalanceConfig:
    method: str = setting(**choice("smote", "none"))
    target_count: int = setting(5000, **POSITIVE)
    k_neighbors: int = setting(5, **POSITIVE)
    class_weight: str | None = setting(None, **choice("balanced", None))


@dataclass(kw_only=True)
class EstimatorConfig:
    n_estimators: int = setting(20, **POSITIVE)
    max_depth: int | None = setting(8, **POSITIVE)


@dataclass(kw_only=True)
class SelectConfig:
    method: str = setting(**choice("rfe"))
    scoring: str = setting("f1_macro", nonempty=True)
    cv_folds: int = setting(3, **value_range(2))
    tolerance: float = setting(0.005, **value_range(0, 1, hi_open=True))
    max_rows: int | None = setting(None, **POSITIVE)
    n_features: int | None = setting(None, **POSITIVE)
    step: int = setting(1, **POSITIVE)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    n_jobs: int = setting(2, **N_JOBS)


@dataclass(kw_only=True)
class SweepConfig:
    max_depth: list[int] = setting(nonempty=True, **POSITIVE)
    n_estimators: list[int] = setting(nonempty=True, **POSITIVE)
    scoring: str = setting("f1_macro", nonempty=True)
    cv_folds: int = setting(3, **value_range(2))
    tolerance: float = setting(0.005, **value_range(0, 1, hi_open=True))
    max_rows: int | None = setting(None, **POSITIVE)
    n_jobs: int = setting(2, **N_JOBS)
    enabled: bool = setting(True)


@dataclass(kw_only=True)
class ModelConfig:
    """Final forest; null: the sweep picks the value, a number fixes it."""

    max_depth: int | None = setting(None, **POSITIVE)
    n_estimators: int | None = setting(None, **POSITIVE)
    n_jobs: int = setting(2, **N_JOBS)
    # the novelty guard (flows/novelty.py): share of each attack group's training flows inside its
    # radius; null: no guard
    novelty_coverage: float | None = setting(0.999, **FRACTION)


@dataclass(kw_only=True)
class MlflowConfig:
    tracking_uri: str = setting(nonempty=True)
    artifact_location: str | None = setting(None)
    experiment: str = setting(nonempty=True)
    registered_model: str = setting(nonempty=True)
    alias: str = setting(nonempty=True)


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
    seed: int = setting(42, **value_range(0))
    conf_fingerprint: str | None = setting(None)


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Check a composed config (plain dict) against :class:`NetsentryConfig`; return it unchanged."""
    check_schema(params, NetsentryConfig)
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
