"""The on-disk cache of the last good model, so a sensor starts while the tracking server is away.

One folder per model URI and registry (``<cache_dir>/<name>@<alias>-<registry digest>/``): a
sensor pointed at another registry never runs a model cached from the first one.  The folder holds
the downloaded artifacts and ``meta.json`` (name, version, tags, the registry without credentials,
and the SHA-256 of every artifact file).  An entry whose metadata or files do not match is damaged
(:class:`CacheDamaged`), never half-used.  A new model replaces the old one in two renames, so a
crash mid-write leaves either the old or the new model.  Folders are 0700 and files 0600: a model
names what the sensor looks for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Final

META: Final[str] = "meta.json"
DIR_MODE: Final[int] = 0o700
FILE_MODE: Final[int] = 0o600

#: Metadata keys every entry has (``files``: relative path -> SHA-256 of the artifact files).
_META_KEYS: Final[tuple[str, ...]] = ("name", "version", "tags", "registry", "files")


class CacheDamaged(Exception):
    """A cache entry exists but cannot be trusted (bad metadata, a file missing or changed)."""


def _slug(key: str) -> str:
    """A folder name for a model URI's name@alias (no path separators)."""
    return re.sub(r"[^A-Za-z0-9@._-]", "_", key)


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents as 0700 folders (existing ones are left as they are)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def _files(folder: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``folder`` (but meta.json), by relative POSIX path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != META
    }


def _make_private(folder: Path) -> None:
    os.chmod(folder, DIR_MODE)
    for p in folder.rglob("*"):
        os.chmod(p, DIR_MODE if p.is_dir() else FILE_MODE)


def _check_meta(meta: Any, registry: str) -> None:
    """Raise :class:`CacheDamaged` unless ``meta`` is an entry's metadata for ``registry``."""
    if not isinstance(meta, dict):
        raise CacheDamaged(f"{META} is not an object")
    lacking = [k for k in _META_KEYS if k not in meta]
    if lacking:
        raise CacheDamaged(f"{META} lacks {', '.join(lacking)}")
    types = {"name": str, "version": str, "tags": dict, "files": dict}
    if not all(isinstance(meta[k], t) for k, t in types.items()) or not meta["files"]:
        raise CacheDamaged(f"{META} has a name, version, tags or file list of the wrong type")
    if meta["registry"] != registry:
        raise CacheDamaged(f"it comes from another registry ({meta['registry']})")


class ModelCache:
    """The cached artifacts and metadata of one model URI from one registry."""

    def __init__(self, cache_dir: Path, key: str, registry: str, registry_digest: str) -> None:
        """``key``: name@alias; ``registry``: the registry's URI without credentials, its digest
        (:func:`serve.tracking.digest`) names the folder."""
        self.registry = registry
        self.folder = Path(cache_dir) / f"{_slug(key)}-{registry_digest}"

    def store(self, artifacts: Path, meta: dict[str, Any]) -> Path:
        """Copy the ``artifacts`` folder and ``meta`` in as the cached model; return its folder."""
        private_dir(self.folder.parent)
        staging = self.folder.with_name(self.folder.name + ".new")
        old = self.folder.with_name(self.folder.name + ".old")
        for leftover in (staging, old):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.copytree(artifacts, staging)
        full = {**meta, "registry": self.registry, "files": _files(staging)}
        (staging / META).write_text(json.dumps(full, indent=1, sort_keys=True))
        _make_private(staging)
        if self.folder.exists():
            self.folder.rename(old)
        staging.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)
        return self.folder

    def load(self) -> tuple[Path, dict[str, Any]] | None:
        """The cached artifacts folder and metadata; None when nothing is cached.

        Raises :class:`CacheDamaged` (one line) for an entry that is there but not whole.
        """
        if not self.folder.exists():
            return None
        meta_path = self.folder / META
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError as exc:
            raise CacheDamaged(f"{META} is missing") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CacheDamaged(f"{META} is unreadable ({exc.__class__.__name__})") from exc
        except ValueError as exc:
            raise CacheDamaged(f"{META} is not valid JSON ({exc})") from exc
        _check_meta(meta, self.registry)
        try:
            found = _files(self.folder)
        except OSError as exc:
            raise CacheDamaged(f"a file is unreadable ({exc.__class__.__name__})") from exc
        expected = meta["files"]
        changed = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
        if changed:
            raise CacheDamaged(f"{len(changed)} file(s) missing, changed or added: {', '.join(changed[:3])}")
        return self.folder, meta
