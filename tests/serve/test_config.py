"""The sensor's config is typed and range-checked: a bad value is one line naming the key and exit 2.

The check runs in ``serve.config.load_config``, before the input, the model or MLflow are looked
at, so every case below runs the real ``netsentry`` command and ends within seconds.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
import typing
from pathlib import Path

import pytest

from serve.config import CONF_DIR, ConfigError, SensorConfig, load_config, log_level
from tests.serve.sensor_run import NETSENTRY, assert_one_clear_line

BAD_VALUES = [
    ("serve.batch.max_rows=abc", "serve.batch.max_rows='abc' must be an integer"),
    ("serve.batch.max_rows=-5", "serve.batch.max_rows=-5 is out of range"),
    ("serve.batch.max_rows=0", "serve.batch.max_rows=0 is out of range"),
    ("serve.meter.restart_backoff=[1]", "serve.meter.restart_backoff=[1] must be a list of 2 items"),
    ("serve.meter.restart_backoff=[30,0.5]", "serve.meter.restart_backoff=[30, 0.5]: the first wait"),
    ("serve.meter.stats_interval=abc", "serve.meter.stats_interval='abc' must be a number"),
    ("serve.model.poll_seconds=-5", "serve.model.poll_seconds=-5 is out of range"),
    ("serve.model.poll_seconds=abc", "serve.model.poll_seconds='abc' must be a number"),
    ("serve.metrics.port=99999", "serve.metrics.port=99999 is out of range: must be 0 <= port <= 65535"),
    ("log.level=FOO", "log.level='FOO' is not a log level"),
    ("serve.verdicts.rotate_mb=-1", "serve.verdicts.rotate_mb=-1 is out of range"),
    ("serve.meter.flow_timeout=-3", "serve.meter.flow_timeout=-3 is out of range: must be 0 < flow_timeout"),
    ("serve.meter.read_block=0", "serve.meter.read_block=0 is out of range"),
    ("serve.meter.flow_timeout=inf", "serve.meter.flow_timeout=inf is out of range"),
    ("serve.meter.buffer_mib=4096", "serve.meter.buffer_mib=4096 is out of range"),
    ("serve.batch.when_idle=maybe", "serve.batch.when_idle='maybe' must be true or false"),
    ("+serve.meter.nope=1", "serve.meter.nope is not a known key"),
    ("~serve.meter.flow_timeout", "serve.meter.flow_timeout is missing"),  # the yaml holds every default
    ("~log", "log is missing"),
]


ROOT = Path(__file__).resolve().parents[2]


def netsentry_without_model(*args: str) -> subprocess.CompletedProcess:
    """Run this tree's ``netsentry ARGS`` with no reachable tracking server (and nothing inherited)."""
    # no tracking server anywhere: the check must come before any MLflow work.  PYTHONPATH: this
    # tree's code, whatever tree the virtualenv's editable install points at
    env = {"PATH": "/usr/bin:/bin", "MLFLOW_TRACKING_URI": "http://127.0.0.1:9/", "PYTHONPATH": str(ROOT)}
    return subprocess.run([NETSENTRY, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("override", "message"), BAD_VALUES)
@pytest.mark.parametrize("command", ["classify", "serve"])
def test_a_bad_value_is_one_line_and_exit_2(command: str, override: str, message: str,
                                            tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.pcap")  # the config is checked before the input
    source = [absent] if command == "classify" else ["-r", absent]
    started = time.monotonic()
    proc = netsentry_without_model(command, *source, override)
    assert proc.returncode == 2, proc.stderr
    assert_one_clear_line(proc, f"netsentry {command}: bad configuration: {message}")
    assert time.monotonic() - started < 20  # no model, no MLflow, no meter


def _schema_keys(schema: type, prefix: str = "") -> set[str]:
    keys = set()
    for f in dataclasses.fields(schema):
        tp = typing.get_type_hints(schema)[f.name]
        keys |= _schema_keys(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else {prefix + f.name}
    return keys


def _config_keys(cfg: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in cfg.items():
        nested = isinstance(value, dict) and f"{prefix}{name}" != "serve.alerts"
        keys |= _config_keys(value, f"{prefix}{name}.") if nested else {prefix + name}
    return keys


def test_the_schema_has_exactly_the_keys_of_the_yaml_files() -> None:
    # conf/sensor.yaml + conf/serve/default.yaml, composed: no key unchecked, no stale schema entry
    assert _config_keys(load_config()) == _schema_keys(SensorConfig)


def test_good_values_pass_and_keep_their_types() -> None:
    cfg = load_config(["serve.meter.restart_backoff=[1,60]", "serve.verdicts.rotate_mb=0.5",
                       "log.level=debug", "serve.model.poll_seconds=0", "serve.metrics.port=65535"])
    assert cfg["serve"]["meter"]["restart_backoff"] == [1, 60]
    assert cfg["serve"]["verdicts"]["rotate_mb"] == 0.5
    assert cfg["log"]["level"] == "debug"


def test_the_alerts_subtree_is_left_to_the_alerts_settings() -> None:
    # any mapping passes here; serve/alerts/settings.py checks what is inside
    cfg = load_config(["+serve.alerts.anything_new=1"])
    assert cfg["serve"]["alerts"]["anything_new"] == 1


def test_a_config_error_is_the_shared_one_line_error() -> None:
    from flows.config_schema import ConfigError as SharedConfigError

    with pytest.raises(SharedConfigError, match=r"^bad configuration: serve\.metrics\.port=-1 is out of"):
        load_config(["serve.metrics.port=-1"])
    assert issubclass(ConfigError, SharedConfigError)


def test_a_bad_config_file_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "serve").mkdir(parents=True)
    (conf / "sensor.yaml").write_text((CONF_DIR / "sensor.yaml").read_text())
    bad = (CONF_DIR / "serve" / "default.yaml").read_text().replace("max_rows: 8192", "max_rows: lots")
    (conf / "serve" / "default.yaml").write_text(bad)
    (conf / "serve" / "alerts").symlink_to(CONF_DIR / "serve" / "alerts")
    with pytest.raises(ConfigError, match=r"serve\.batch\.max_rows='lots' must be an integer"):
        load_config(conf_dir=conf)


@pytest.mark.parametrize(("level", "quiet", "used"), [
    ("INFO", True, "WARNING"),     # classify without -v: warnings and worse, as before
    ("error", True, "ERROR"),      # ... but a quieter log.level is honoured
    ("CRITICAL", True, "CRITICAL"),
    ("debug", False, "DEBUG"),     # serve, or classify -v: log.level as set
    ("INFO", False, "INFO"),
])
def test_log_level_is_honoured_by_classify_too(level: str, quiet: bool, used: str) -> None:
    assert log_level(load_config([f"log.level={level}"]), quiet=quiet) == used
