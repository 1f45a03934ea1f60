"""The sensor's configuration: ``conf/sensor.yaml`` + the ``serve`` group, composed by Hydra.

The sensor composes its own primary config (not the pipeline's ``conf/config.yaml``), so
``params.yaml`` and DVC never see it.  Command-line overrides use Hydra's syntax, e.g.
``serve.batch.max_wait_ms=20`` or ``serve.meter.flow_timeout=10``.

:func:`load_config` checks the composed config against :class:`SensorConfig` (types, ranges,
choices, unknown keys; the mechanism of :mod:`flows.config_schema`, shared with the pipeline)
before any command looks at its input or the model, so a mistake is one line and exit status 2.
Every key is required: the YAML files hold the defaults (a key deleted with ``~key`` is an error).
``serve.alerts`` is only required to be a mapping here: ``serve/alerts/settings.py`` checks it.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from flows import config_schema
from flows.config_schema import POSITIVE, octal_mode_problem, setting, value_range

#: The project root (parent of the ``serve`` package).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Where the sensor's primary config lives.
CONF_DIR = PROJECT_ROOT / "conf"

#: The log levels ``log.level`` may name (any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(config_schema.ConfigError):
    """A bad override, config file or value, as one line for the user (the CLI's exit status 2)."""


def _seconds(lo_open: bool) -> dict[str, Any]:
    """A finite number of seconds, > 0 (``lo_open``) or >= 0."""
    return value_range(0, math.inf, lo_open=lo_open, hi_open=True)


def _log_level_problem(value: str) -> str | None:
    return None if value.upper() in LOG_LEVELS else f"is not a log level: one of {list(LOG_LEVELS)}"


@dataclass(kw_only=True)
class LogConfig:
    """``log``: level and format of the sensor's log on stderr."""

    level: str = setting(check=_log_level_problem)
    json: bool = setting()


@dataclass(kw_only=True)
class ModelConfig:
    """``serve.model``: the registered model, where it comes from and how often the alias is checked."""

    uri: str = setting(nonempty=True)
    tracking_uri: str | None = setting()
    cache_dir: str | None = setting()
    poll_seconds: float = setting(**_seconds(lo_open=False))  # 0: never


@dataclass(kw_only=True)
class MeterConfig:
    """``serve.meter``: the flow meter's options (limits as ``capture/flowmeter`` accepts them)."""

    path: str | None = setting()
    flow_timeout: float = setting(**_seconds(lo_open=True))
    activity_timeout: float = setting(**_seconds(lo_open=True))
    stats_interval: float = setting(**_seconds(lo_open=False))  # 0: no periodic statistics
    buffer_mib: int = setting(**value_range(1, 2047))  # pcap takes the buffer as an int of bytes
    # os.read allocates the whole block up front: keep it to what a pipe can sensibly hold
    read_block: int = setting(**value_range(1, 1 << 28))
    restart_backoff: list[float] = setting(length=2, **_seconds(lo_open=True))
    max_restarts: int = setting(**value_range(0))  # 0: never give up


@dataclass(kw_only=True)
class BatchConfig:
    """``serve.batch``: when a batch of flows is classified."""

    max_rows: int = setting(**POSITIVE)
    max_wait_ms: float = setting(**_seconds(lo_open=False))
    when_idle: bool = setting()


@dataclass(kw_only=True)
class VerdictsConfig:
    """``serve.verdicts``: the verdict CSV."""

    path: str | None = setting()
    rotate_mb: float = setting(**_seconds(lo_open=False))  # 0: never rotate
    mode: int | str = setting(check=octal_mode_problem)


@dataclass(kw_only=True)
class RecordConfig:
    """``serve.record``: judged flows kept for learning the site (``--record-flows DIR``)."""

    dir: str | None = setting()
    max_mb: float = setting(**value_range(0, lo_open=True))
    flush_rows: int = setting(**POSITIVE)


@dataclass(kw_only=True)
class MetricsConfig:
    """``serve.metrics``: the Prometheus endpoint of ``netsentry serve``."""

    port: int = setting(**value_range(0, 65535))  # 0: off
    address: str = setting(nonempty=True)


@dataclass(kw_only=True)
class ServeConfig:
    """``serve``: the flow path; ``alerts`` is checked by ``serve/alerts/settings.py``."""

    model: ModelConfig
    meter: MeterConfig
    batch: BatchConfig
    verdicts: VerdictsConfig
    record: RecordConfig
    metrics: MetricsConfig
    alerts: dict[str, Any] = setting()


@dataclass(kw_only=True)
class SensorConfig:
    """The whole composed sensor config (``conf/sensor.yaml``)."""

    log: LogConfig
    serve: ServeConfig


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a composed sensor config against :class:`SensorConfig`; return it unchanged."""
    config_schema.validate(cfg, SensorConfig)
    first, longest = cfg["serve"]["meter"]["restart_backoff"]
    if first > longest:
        raise config_schema.ConfigError(f"serve.meter.restart_backoff={[first, longest]!r}: the first "
                                        "wait must not be longer than the longest")
    return cfg


def load_config(overrides: list[str] | tuple[str, ...] = (), conf_dir: Path = CONF_DIR) -> dict[str, Any]:
    """Compose ``sensor.yaml`` with ``overrides`` into a checked plain dict (``serve``, ``log`` sections).

    Raises :class:`ConfigError` (one line) for a bad override, file or value.
    """
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None, job_name="netsentry"):
            cfg = compose(config_name="sensor", overrides=list(overrides))
        data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad configuration: {str(exc).splitlines()[0]}") from exc
    try:
        return validate(typing.cast(dict, data))
    except config_schema.ConfigError as exc:
        raise ConfigError(f"bad configuration: {exc}") from None


def log_level(cfg: dict[str, Any], quiet: bool = False) -> str:
    """The level to log at: ``log.level``; when ``quiet`` (``classify`` without ``-v``) at least WARNING."""
    level = cfg["log"]["level"].upper()
    if quiet and LOG_LEVELS.index(level) < LOG_LEVELS.index("WARNING"):
        return "WARNING"
    return level


def project_path(value: str | None, default: str) -> Path:
    """A configured path: ``default`` when unset, relative paths taken from the project root."""
    path = Path(value if value else default)
    return path if path.is_absolute() else PROJECT_ROOT / path
