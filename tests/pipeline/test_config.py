"""The composed config is typed and range-checked: a mistake is one line and exit 2, every option composes.

Also: ``dvc repro`` after a ``conf/`` edit stops (the ``config`` stage) instead of running stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flows.schema import LABEL_COLUMN, SOURCE_COLUMN
from pipeline import params as params_cli
from pipeline.config import PIPELINE_GROUPS, ConfigError, conf_fingerprint, validate
from pipeline.params import CONF_DIR, compose_params, load_params
from pipeline.scratch import copy_project
from pipeline.split import SplitError, split_mask

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.max_depth=abc", "model.max_depth='abc' must be an integer"),
        ("select.tolerance=1.5", "select.tolerance=1.5 is out of range: must be 0 <= tolerance < 1"),
        ("select.tolerance=-1", "select.tolerance=-1 is out of range: must be 0 <= tolerance < 1"),
        ("split.test_size=-0.2", "split.test_size=-0.2 is out of range: must be 0 < test_size < 1"),
        ("seed=abc", "seed='abc' must be an integer"),
        ("sweep.n_estimators=[4,0]", "sweep.n_estimators[1]=0 is out of range"),
        ("balance.method=adasyn", "balance.method='adasyn' is not one of ['smote', 'none']"),
        ("model.foo=1", "Could not override 'model.foo'"),
        (
            "+model.foo=1",
            "model.foo is not a known key; model has "
            "['max_depth', 'n_estimators', 'n_jobs', 'novelty_coverage']",
        ),
        ("split=nope", "no config option 'split/nope'; the options of 'split' are: "),
        ("+experiment=nope", "no config option 'experiment/nope'; the options of 'experiment' are: "),
        ("model.max_depth==", "Error parsing override 'model.max_depth=='"),
    ],
)
def test_a_bad_override_is_one_line_and_exit_2(
    override: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = params_cli.PARAMS_FILE.read_bytes() if params_cli.PARAMS_FILE.exists() else None
    assert params_cli.main([override]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"params: {message}") and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""
    after = params_cli.PARAMS_FILE.read_bytes() if params_cli.PARAMS_FILE.exists() else None
    assert after == before  # nothing written


def _options() -> list[str]:
    """``group=option`` for every option of every pipeline group (``+experiment=...`` is additive)."""
    out = []
    for group in PIPELINE_GROUPS:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            out.append(f"{'+' if group == 'experiment' else ''}{group}={path.stem}")
    return out


@pytest.mark.parametrize("option", _options())
def test_every_option_of_every_group_composes_and_validates(option: str) -> None:
    composed = compose_params([option])
    group, name = option.lstrip("+").split("=")
    text = (CONF_DIR / group / f"{name}.yaml").read_text()
    if "@package _global_" not in text:  # a plain group file: its values are the section's
        chosen = yaml.safe_load(text)
        plain = {k: v for k, v in chosen.items() if "${" not in str(v)}  # interpolations resolve
        for key, value in plain.items():  # a mapping may gain entries from a data preset (the lab's)
            got = composed[group][key]
            assert (value.items() <= got.items()) if isinstance(value, dict) else got == value, key
    assert composed["conf_fingerprint"] == conf_fingerprint()


def test_the_groups_listed_cover_what_the_config_composes() -> None:
    assert {
        "split=conversation",
        "split=by_day",
        "split=session",
        "mlflow=server",
        "+experiment=study",
    } <= set(_options())


def test_data_and_labels_are_checked_by_shape_and_may_carry_extra_fields() -> None:
    composed = compose_params(["+data.scenario_column=Scenario", "+labels.note=lab"])
    assert composed["data"]["scenario_column"] == "Scenario"
    with pytest.raises(ConfigError, match="data.input_dir=3 must be a string"):
        compose_params(["data.input_dir=3"])
    with pytest.raises(ConfigError, match="labels.mapping must be a mapping of strings to strings"):
        compose_params(["labels.mapping.BENIGN=[1]"])


def test_a_stage_refuses_an_invalid_params_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = compose_params([])
    params["select"]["tolerance"] = 1.5  # edited by hand after composing
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as stop:
        load_params(path)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err == "params.yaml: select.tolerance=1.5 is out of range: must be 0 <= tolerance < 1\n"
    params["select"]["tolerance"] = 0.01
    path.write_text(yaml.safe_dump(params))
    assert load_params(path)["select"]["tolerance"] == 0.01


def test_validate_rejects_nan_and_bool_for_numbers() -> None:
    params = compose_params([])
    params["select"]["tolerance"] = float("nan")
    with pytest.raises(ConfigError, match="select.tolerance=nan is out of range"):
        validate(params)
    params["select"]["tolerance"] = 0.005
    params["model"]["n_estimators"] = True
    with pytest.raises(ConfigError, match="model.n_estimators=True must be an integer"):
        validate(params)


def test_by_day_without_the_named_day_files_lists_the_files_there() -> None:
    flows = pd.DataFrame({LABEL_COLUMN: ["BENIGN", "DoS"] * 3, "x": np.arange(6.0)})
    flows[SOURCE_COLUMN] = ["Monday/a.csv.gz", "Tuesday/b.csv"] * 3
    cfg = compose_params(["split=by_day"])["split"]
    with pytest.raises(SplitError) as err:
        split_mask(flows, cfg, 0)
    assert str(err.value) == (
        "split.test_files=['Friday'] matches no input file: ['Monday/a.csv.gz', 'Tuesday/b.csv']"
    )


def _run(root: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_dvc_repro_after_a_conf_edit_stops_with_one_line_until_recomposed(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "proj")
    assert _run(root, sys.executable, "-m", "pipeline.params").returncode == 0
    grid = root / "conf" / "sweep" / "grid.yaml"
    grid.write_text(grid.read_text().replace("cv_folds: 3", "cv_folds: 4"))  # the edit

    stale = _run(root, str(BIN / "dvc"), "repro")
    assert stale.returncode != 0
    lines = [ln for ln in stale.stderr.splitlines() if ln.startswith("config: ")]
    assert len(lines) == 1 and "params.yaml was composed from another conf/" in lines[0]
    assert "run `make params`" in lines[0]
    assert "Running stage 'clean'" not in stale.stdout  # nothing ran on the stale params

    assert _run(root, sys.executable, "-m", "pipeline.params").returncode == 0
    assert yaml.safe_load((root / "params.yaml").read_text())["sweep"]["cv_folds"] == 4
    fresh = _run(root, str(BIN / "dvc"), "repro", "config")
    assert fresh.returncode == 0, fresh.stderr
    assert (root / "data/config/check.txt").read_text().startswith("params.yaml is valid")
