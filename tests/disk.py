"""A small real disk for full-disk tests: a tmpfs mounted for one test, and a way to fill it."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (e.g. ``64k``) on ``folder`` (made here) and unmount it afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` with a file until it is full, then free ``leave`` bytes; return that file."""
    filler = disk / "filler"
    written = 0
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                written += fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        fh.truncate(max(0, written - leave))
    return filler
