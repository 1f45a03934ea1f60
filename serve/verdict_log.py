"""The verdict CSV: one row per flow (:data:`serve.verdict.VERDICT_COLUMNS`), optionally rotated by size.

Rotation works like the meter's: ``verdicts.csv``, then ``verdicts.csv.1``, ``.2``, ... each with
the header, so every file reads on its own.  Rows are written with Arrow's CSV writer (the hot
path: pandas' ``to_csv`` is several times slower).  An unjudged flow has an empty probability.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from serve.verdict import VERDICT_COLUMNS

_HEADER = (",".join(VERDICT_COLUMNS) + "\n").encode()
_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")
_NAMES = list(VERDICT_COLUMNS)


def _table(verdicts: pd.DataFrame) -> pa.Table:
    """The verdict columns as an Arrow table, column by column: ``Table.from_pandas`` costs more
    than writing the CSV (pandas metadata, per-column checks).  NaN becomes null (an empty field)."""
    return pa.Table.from_arrays([pa.array(verdicts[c], from_pandas=True) for c in VERDICT_COLUMNS],
                                names=_NAMES)


class VerdictLog:
    """Appends verdict frames to ``path``; ``rotate_bytes`` > 0 starts a new file past that size."""

    def __init__(self, path: Path, rotate_bytes: int = 0) -> None:
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.sequence = 0
        self.rows = 0
        self._fh: BinaryIO | None = None
        self._written = 0
        self._open()

    def _current(self) -> Path:
        return self.path if self.sequence == 0 else self.path.with_name(f"{self.path.name}.{self.sequence}")

    def _open(self) -> None:
        self._current().parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self._current(), "wb")  # noqa: SIM115 - kept open across batches
        self._fh.write(_HEADER)
        self._written = len(_HEADER)

    def write(self, verdicts: pd.DataFrame) -> None:
        """Append the rows of a verdict frame (columns in :data:`VERDICT_COLUMNS` order)."""
        if len(verdicts) == 0 or self._fh is None:
            return
        if self.rotate_bytes and self._written >= self.rotate_bytes:
            self._fh.close()
            self.sequence += 1
            self._open()
        table = _table(verdicts)
        before = self._fh.tell()
        pacsv.write_csv(table, self._fh, write_options=_OPTIONS)
        self._written += self._fh.tell() - before
        self._fh.flush()
        self.rows += len(verdicts)

    def files(self) -> list[Path]:
        """Every file written so far, in order."""
        return [self.path if i == 0 else self.path.with_name(f"{self.path.name}.{i}")
                for i in range(self.sequence + 1)]

    def close(self) -> None:
        """Flush and close the current file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
