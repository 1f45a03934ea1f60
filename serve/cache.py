"""The on-disk cache of the last good model, so a sensor starts while the tracking server is away.

One folder per model URI (``<cache_dir>/<name>@<alias>/``) holding the downloaded artifacts and
``meta.json`` (name, version, tags).  A new model replaces the old one in two renames, so a crash
mid-write leaves either the old or the new model, never half of one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

META = "meta.json"


def _slug(key: str) -> str:
    """A folder name for a model URI's name@alias (no path separators)."""
    return re.sub(r"[^A-Za-z0-9@._-]", "_", key)


class ModelCache:
    """The cached artifacts and metadata of one model URI."""

    def __init__(self, cache_dir: Path, key: str) -> None:
        self.folder = Path(cache_dir) / _slug(key)

    def store(self, artifacts: Path, meta: dict[str, Any]) -> Path:
        """Copy the ``artifacts`` folder and ``meta`` in as the cached model; return its folder."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        staging = self.folder.with_name(self.folder.name + ".new")
        old = self.folder.with_name(self.folder.name + ".old")
        for leftover in (staging, old):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.copytree(artifacts, staging)
        (staging / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        if self.folder.exists():
            self.folder.rename(old)
        staging.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)
        return self.folder

    def load(self) -> tuple[Path, dict[str, Any]] | None:
        """The cached artifacts folder and metadata, or None when nothing (readable) is cached."""
        meta_path = self.folder / META
        if not meta_path.is_file():
            return None
        try:
            return self.folder, json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
