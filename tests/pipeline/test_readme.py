"""Every command of the README's pipeline section, run as written in a scratch copy, does what it says.

The copy trains on a small slice of the engelen sample (gzip-compressed, as users may hand it) with
a shrunk search, so the whole section runs in about two minutes: ``dvc repro`` trains and
registers, ``dvc exp run -S model.max_depth=12`` registers a depth-12 model, the queued sweep over
``model.n_estimators`` registers one model per value, and ``dvc exp show`` lists the experiments.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipeline.io import PROJECT_ROOT
from pipeline.scratch import copy_project

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ROWS_PER_FILE = 120
#: small but real: every stage runs, on a few thousand rows
SHRINK = {
    "select/rfe.yaml": {"max_rows": 1500, "estimator": {"n_estimators": 5, "max_depth": 6}},
    "sweep/grid.yaml": {"max_depth": [4, 8], "n_estimators": [4, 8], "max_rows": 1500},
    "balance/smote_capped.yaml": {"target_count": 200},
}


def readme_pipeline_commands() -> list[str]:
    """The shell lines of the README's pipeline section code block, comments stripped."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## Training pipeline", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README's pipeline section has no sh block"
    lines = [ln.split("  #", 1)[0].strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def small_sample(engelen_sample: Path, dst: Path) -> Path:
    """The first rows of every engelen-sample CSV, gzip-compressed, under the folder the config names."""
    folder = dst / "cicids2017" / "engelen-sample"
    folder.mkdir(parents=True)
    for path in sorted(engelen_sample.glob("*.csv")):
        with path.open("rb") as fh:
            head = b"".join(line for _, line in zip(range(ROWS_PER_FILE + 1), fh, strict=False))
        (folder / f"{path.name}.gz").write_bytes(gzip.compress(head))
    return dst


def shrink_conf(root: Path) -> None:
    """Shrink the copy's search settings and pin its data preset to the CICIDS2017 sample."""
    for name, values in SHRINK.items():
        path = root / "conf" / name
        cfg = yaml.safe_load(path.read_text())
        for key, value in values.items():
            cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = root / "conf" / "config.yaml"
    config.write_text(re.sub(r"- data: \S+", "- data: engelen_sample", config.read_text()))


def run(root: Path, line: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["bash", "-c", line], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"{line!r} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def registered(root: Path) -> list[dict[str, str]]:
    """Depth and trees of every registered version (from the run that registered it)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    out = []
    for v in client.search_model_versions("name='netsentry'"):
        params = client.get_run(v.run_id).data.params
        out.append({"version": v.version, "max_depth": params["max_depth"], "trees": params["n_estimators"]})
    return out


def test_readme_pipeline_commands_do_what_they_say(tmp_path: Path, engelen_sample: Path) -> None:
    commands = readme_pipeline_commands()
    assert any(c.startswith("dvc exp run -S model.max_depth=12") for c in commands)
    root = copy_project(tmp_path / "proj")
    shrink_conf(root)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["NETSENTRY_SHARED_DATA"] = str(small_sample(engelen_sample, tmp_path / "shared"))
    env["HOME"] = str(tmp_path)  # git identity for the copy's commit
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # what the README's `export PATH` line does
    subprocess.run(["git", "config", "user.email", "t@example.org"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.name", "test"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "scratch"], cwd=root, check=True)

    outputs = {}
    for line in commands:
        # `$PWD/.venv/bin` of the README is this interpreter's venv here
        outputs[line] = run(root, line.replace("$PWD/.venv/bin", str(BIN)), env)
        if line.startswith("dvc repro"):
            assert json.loads((root / "data/train/model.json").read_text())["version"] == "1"
            clean = json.loads((root / "metrics/clean.json").read_text())
            assert len(clean["files"]) == 16 and all(n.endswith(".csv.gz") for n in clean["files"])
            assert clean["ignored_files"] == []

    versions = registered(root)
    depth12 = [v for v in versions if v["max_depth"] == "12"]
    assert len(depth12) == 1 and depth12[0]["trees"] in ("4", "8")  # depth fixed, trees swept
    assert sorted(v["trees"] for v in versions if v["trees"] in ("10", "20")) == ["10", "20"]
    assert len(versions) == 4  # dvc repro, the depth-12 experiment, two queued ones

    shown = run(root, f"{BIN}/dvc exp show --csv", env)
    rows = list(csv_rows(shown))
    assert {r.get("model.max_depth") for r in rows} >= {"12"}
    assert {r.get("model.n_estimators") for r in rows} >= {"10", "20"}
    assert len([r for r in rows if r.get("Experiment")]) >= 3


def csv_rows(text: str) -> list[dict[str, str]]:
    """The rows of ``dvc exp show --csv``."""
    start = text.index("Experiment,")  # skip any log line before the table
    return list(csv.DictReader(io.StringIO(text[start:])))
