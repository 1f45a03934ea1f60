"""The sensor's configuration: ``conf/sensor.yaml`` + the ``serve`` group, composed by Hydra.

The sensor composes its own primary config (not the pipeline's ``conf/config.yaml``), so
``params.yaml`` and DVC never see it.  Command-line overrides use Hydra's syntax, e.g.
``serve.batch.max_wait_ms=20`` or ``serve.meter.flow_timeout=10``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

#: The project root (parent of the ``serve`` package).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Where the sensor's primary config lives.
CONF_DIR = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """A bad override or config file, as one line for the user."""


def load_config(overrides: list[str] | tuple[str, ...] = (), conf_dir: Path = CONF_DIR) -> dict[str, Any]:
    """Compose ``sensor.yaml`` with ``overrides`` into a plain dict (``serve``, ``log`` sections)."""
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None, job_name="netsentry"):
            cfg = compose(config_name="sensor", overrides=list(overrides))
        data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad configuration: {str(exc).splitlines()[0]}") from exc
    assert isinstance(data, dict)
    return data


def project_path(value: str | None, default: str) -> Path:
    """A configured path: ``default`` when unset, relative paths taken from the project root."""
    path = Path(value if value else default)
    return path if path.is_absolute() else PROJECT_ROOT / path
