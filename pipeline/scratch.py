"""A throwaway copy of the project for running ``dvc repro`` away from the work tree.

Used by the end-to-end test, the full-size benchmark and ``scripts/sample_matrix.py``: the copy
holds what the pipeline needs (code incl. ``flows/`` and ``hydra_plugins/``, config, ``dvc.yaml``,
DVC config) and is its own git
repository (DVC wants an SCM), so its runs, caches and MLflow store never touch the project.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pipeline.io import PROJECT_ROOT


def copy_project(dst: Path, src: Path = PROJECT_ROOT) -> Path:
    """Make ``dst`` (emptied first) a fresh runnable copy of the project at ``src``; return it."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in ("pipeline", "conf", "flows", "hydra_plugins"):
        shutil.copytree(src / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", "pyproject.toml"):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    (dst / ".dvc").mkdir()
    shutil.copy2(src / ".dvc" / "config", dst / ".dvc" / "config")
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst
