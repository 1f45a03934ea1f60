"""Record the flows the sensor judged, for learning the site's own traffic (``--record-flows DIR``).

A :class:`~serve.flowpath.BatchObserver`: every judged batch (the typed meter rows and their verdicts)
is buffered and written as Parquet into hourly partitions (layout: :mod:`flows.recorded`). The folder
is bounded: past ``max_bytes`` the oldest files are removed first, and every row removed that way is
counted (``rows_dropped``). A write that fails (full disk, I/O error) costs the rows of that write,
counted as ``rows_unwritten`` and logged once: recording never stops the sensor.

Files are private (0600, folders 0700): flow records name hosts.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.recorded import (
    PROFILE_KEY,
    RECORDED_COLUMNS,
    RECORDED_VERDICT_COLUMNS,
    age_order,
    part_files,
    part_rows,
    partitions,
)
from flows.schema import FLOW_COLUMNS

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


class RecorderError(ValueError):
    """The recording folder cannot be used (one line for the user)."""


def prepare_folder(folder: Path) -> None:
    """Make the recording folder (0700) or check an existing one; :class:`RecorderError` otherwise."""
    if folder.exists() and not folder.is_dir():
        raise RecorderError(f"cannot record flows in {folder}: it is not a folder")
    try:
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as err:
        raise RecorderError(f"cannot record flows in {folder}: {err.strerror}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RecorderError(f"cannot record flows in {folder}: not writable")


class FlowRecorder:
    """Buffer judged flows and write them per hour into ``folder``, keeping it under ``max_bytes``."""

    def __init__(self, folder: Path, max_bytes: int, profile: str, flush_rows: int = 65536) -> None:
        if max_bytes <= 0:
            raise RecorderError(f"--record-max-mb must be positive, not {max_bytes / 2**20:g}")
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.flush_rows = flush_rows
        self.profile = profile  # the meter profile of the flows: written in every file's footer
        self.rows_written = self.rows_dropped = self.rows_unwritten = 0
        self.files_written = self.files_dropped = 0
        self._pending: list[pd.DataFrame] = []
        self._pending_rows = 0
        self._run = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
        self._seq = 0
        self._warned = False
        prepare_folder(self.folder)
        self._files = {p: p.stat().st_size for p in part_files(self.folder)}  # earlier runs count too

    @property
    def stored_bytes(self) -> int:
        """Bytes of recorded files in the folder now."""
        return sum(self._files.values())

    def stats(self) -> dict[str, Any]:
        """Counters for the summary and metrics."""
        return {
            "rows_written": self.rows_written,
            "rows_dropped": self.rows_dropped,
            "rows_unwritten": self.rows_unwritten,
            "files": len(self._files),
            "bytes": self.stored_bytes,
        }

    def observe(self, flows: pd.DataFrame, verdicts: pd.DataFrame) -> None:
        """Keep a judged batch; write once ``flush_rows`` rows are waiting."""
        if flows.empty:
            return
        batch = pd.concat(
            [flows[list(FLOW_COLUMNS)].reset_index(drop=True),
             verdicts[list(RECORDED_VERDICT_COLUMNS)].reset_index(drop=True)],
            axis=1,
        )
        self._pending.append(batch)
        self._pending_rows += len(batch)
        if self._pending_rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write what is waiting, one file per hour it covers, then enforce the size bound."""
        if not self._pending:
            return
        rows = pd.concat(self._pending, ignore_index=True)
        self._pending, self._pending_rows = [], 0
        for partition, part in rows.groupby(partitions(rows["Timestamp"]), sort=True):
            self._write(str(partition), part)
        self._enforce_bound()

    def _write(self, partition: str, part: pd.DataFrame) -> None:
        self._seq += 1
        target = self.folder / partition / f"part-{self._run}-{self._seq:06d}.parquet"
        temp = target.with_name("." + target.name + ".tmp")
        try:
            target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            table = pa.Table.from_pandas(part[list(RECORDED_COLUMNS)], preserve_index=False)
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), PROFILE_KEY: self.profile.encode()}
            )
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                pq.write_table(table, out, compression="zstd")
            os.replace(temp, target)  # a reader never sees half a file
        except (OSError, pa.ArrowException) as err:
            try:
                temp.unlink(missing_ok=True)
            except OSError:
                pass  # its folder could not be made: nothing was written
            self.rows_unwritten += len(part)
            if not self._warned:
                log.warning("recording flows in %s failed (%s): %d rows not recorded (counted as "
                            "rows_unwritten; the sensor goes on)", self.folder, err, len(part))
                self._warned = True
            return
        self._files[target] = target.stat().st_size
        self.rows_written += len(part)
        self.files_written += 1

    def _enforce_bound(self) -> None:
        """Remove the oldest files until the folder fits, keeping the newest file whatever its size."""
        while self.stored_bytes > self.max_bytes and len(self._files) > 1:
            oldest = min(self._files, key=age_order)
            try:
                self.rows_dropped += part_rows(oldest)
                oldest.unlink()
            except OSError as err:
                log.warning("cannot remove %s to bound the recorded flows: %s", oldest, err)
                return
            del self._files[oldest]
            self.files_dropped += 1

    def close(self) -> None:
        """Write what is still waiting."""
        self.flush()

