"""The verdict CSV: one row per flow (:data:`serve.verdict.VERDICT_COLUMNS`), optionally rotated by size.

Rotation works like the meter's: ``verdicts.csv``, then ``verdicts.csv.1``, ``.2``, ... each with
the header, so every file reads on its own.  Rows are rendered with Arrow's CSV writer (the hot
path: pandas' ``to_csv`` is several times slower) into one buffer per batch, which is appended
whole or not at all: a failed write (full disk) is cut back to the last whole batch, its rows are
counted as not written, and the next batch tries again.  An unjudged flow has an empty probability.

Two ways to own the file (see :class:`VerdictLog`): ``replace`` (``classify``: written under
``NAME.partial`` and renamed over ``NAME`` only when the run completes, so a failed run leaves an
existing file as it was) and ``append`` (``serve``: a restarted daemon continues the file, and
SIGHUP starts a new one when logrotate moved it away).  Files are created with ``mode``
(0640 by default: verdicts name hosts and attacks); symbolic links are not followed.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flows.config_schema import octal_mode
from serve.verdict import VERDICT_COLUMNS

log = logging.getLogger(__name__)

_HEADER = (",".join(VERDICT_COLUMNS) + "\n").encode()
_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")
_NAMES = list(VERDICT_COLUMNS)

#: Suffix of the files ``replace`` writes before the run completes.
PARTIAL = ".partial"

DEFAULT_MODE = 0o640


class VerdictFileError(Exception):
    """The verdict file cannot be used (a one-line reason for the user)."""


def parse_mode(value: object) -> int:
    """The verdict files' mode from ``serve.verdicts.mode`` (:func:`flows.config_schema.octal_mode`),
    which must let the owner read and write and set no execute bits; ``ValueError`` otherwise."""
    mode = octal_mode(value)
    if mode & 0o111 or mode & 0o600 != 0o600:
        raise ValueError(f"serve.verdicts.mode={value!r} (= {mode:#o}): must give the owner read and write "
                         "and no execute bits, e.g. '0640' or '0600'")
    return mode


def _table(verdicts: pd.DataFrame) -> pa.Table:
    """The verdict columns as an Arrow table, column by column: ``Table.from_pandas`` costs more
    than writing the CSV (pandas metadata, per-column checks).  NaN becomes null (an empty field)."""
    return pa.Table.from_arrays([pa.array(verdicts[c], from_pandas=True) for c in VERDICT_COLUMNS],
                                names=_NAMES)


def render(verdicts: pd.DataFrame) -> bytes:
    """The CSV rows of a verdict frame (no header), as one buffer."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(_table(verdicts), sink, write_options=_OPTIONS)
    return sink.getvalue().to_pybytes()


def check_writable_parent(path: Path) -> None:
    """Raise :class:`VerdictFileError` when an existing ancestor of ``path`` is not a directory
    (``mkdir(exist_ok=True)`` reports that as "File exists")."""
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise VerdictFileError(f"cannot write {path}: {parent} is not a directory")
            return


def _describe(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"cannot write {path}: it is a symbolic link (not followed; give the real path)"
    return f"cannot write {path}: {exc.strerror or exc}"


class VerdictLog:
    """Appends verdict frames to ``path``; ``rotate_bytes`` > 0 starts a new file past that size.

    ``policy="replace"``: write ``path.partial`` (and ``path.N.partial``), :meth:`commit` renames
    them over ``path`` (and removes older rotated files of ``path`` that this run did not write);
    :meth:`abort` removes them (or keeps them, for an interrupted run).  ``policy="append"``:
    continue ``path`` (the last rotated ``path.N`` if any); an existing file must have the header.
    """

    def __init__(self, path: Path, rotate_bytes: int = 0, mode: int = DEFAULT_MODE,
                 policy: str = "replace") -> None:
        if policy not in ("replace", "append"):
            raise ValueError(f"unknown verdict file policy {policy!r}")
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes
        self.mode = mode
        self.policy = policy
        self.rows = 0
        self.unwritten = 0  # rows judged but not written (full disk, I/O error)
        self.last_error = ""
        self.replaced = False  # replace: ``path`` existed before this run
        self._fd: int | None = None
        self._size = 0
        self._broken = False
        check_writable_parent(self.path)
        self.first = self.sequence = self._last_sequence() if policy == "append" else 0
        self.replaced = policy == "replace" and self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except VerdictFileError:
            self._close_fd()
            raise
        except OSError as exc:
            self._close_fd()
            raise VerdictFileError(_describe(self._target(), exc)) from exc

    # -- names ----------------------------------------------------------------------------------
    def _final(self, sequence: int) -> Path:
        return self.path if sequence == 0 else self.path.with_name(f"{self.path.name}.{sequence}")

    def _target(self, sequence: int | None = None) -> Path:
        """The file being written for ``sequence`` (the current one by default)."""
        final = self._final(self.sequence if sequence is None else sequence)
        return final.with_name(final.name + PARTIAL) if self.policy == "replace" else final

    def _last_sequence(self) -> int:
        sequence = 0
        while self._final(sequence + 1).exists():
            sequence += 1
        return sequence

    def files(self) -> list[Path]:
        """Every file this run wrote, in order (their final names)."""
        return [self._final(i) for i in range(self.first, self.sequence + 1)]

    def partial_files(self) -> list[Path]:
        """``replace``: where the rows are until :meth:`commit`."""
        return [self._target(i) for i in range(self.first, self.sequence + 1)]

    # -- files ----------------------------------------------------------------------------------
    def _open(self) -> None:
        """Open the current file and make sure it starts with the header."""
        target = self._target()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        if self.policy == "replace":
            # an interrupted run's partial file is replaced (a link: the link itself, not its target)
            target.unlink(missing_ok=True)
            flags |= os.O_EXCL
        fd = os.open(target, flags, self.mode)
        self._fd = fd
        st = os.fstat(fd)
        self._size = st.st_size
        if st.st_size == 0:
            os.fchmod(fd, self.mode)  # exactly the configured mode, whatever the umask
            self._append(b"")
        else:
            self._check_header(target)

    def _check_header(self, target: Path) -> None:
        with open(target, "rb") as fh:
            first = fh.readline(len(_HEADER) + 1)
        if first != _HEADER:
            raise VerdictFileError(f"{target} exists and is not a verdict CSV of this sensor (another "
                                   "header): move it away or choose another file")

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _append(self, data: bytes) -> None:
        """Append ``data`` (the header first if the file is empty) whole, or cut the file back to
        where it was and raise the OSError."""
        assert self._fd is not None
        before = os.fstat(self._fd).st_size  # not a cached size: copytruncate may have emptied it
        buf = memoryview(_HEADER + data if before == 0 else data)
        done = 0
        try:
            while done < len(buf):
                done += os.write(self._fd, buf[done:])
        except OSError:
            if done:
                try:
                    os.ftruncate(self._fd, before)  # no torn row
                except OSError as cut:
                    self._broken = True
                    self.last_error = f"cannot undo a partial write: {cut.strerror}"
            raise
        self._size = before + len(buf)

    # -- rows -----------------------------------------------------------------------------------
    def write(self, verdicts: pd.DataFrame) -> None:
        """Append the rows of a verdict frame (columns in :data:`VERDICT_COLUMNS` order).

        Never raises for a write error: the rows are counted in :attr:`unwritten` and said once."""
        n = len(verdicts)
        if n == 0:
            return
        if self._broken:
            self.unwritten += n
            return
        data = render(verdicts)
        try:
            if self._fd is None:  # an earlier rotation or reopen failed: try again
                self._open()
            elif self.rotate_bytes and self._size >= self.rotate_bytes:
                self._close_fd()
                self.sequence += 1
                self._open()
            self._append(data)
        except OSError as exc:
            self._failed(n, exc)
            return
        if self.unwritten and self.last_error:
            log.warning("verdicts: writing %s again (%d rows could not be written before)",
                        self._target(), self.unwritten)
            self.last_error = ""
        self.rows += n

    def _failed(self, n: int, exc: OSError) -> None:
        first = not self.last_error
        self.unwritten += n
        if self._broken:
            self._close_fd()
            log.error("verdicts: %s; no more rows go to %s (counted as not written)",
                      self.last_error, self._target())
            return
        self.last_error = exc.strerror or str(exc)
        if first:  # one line when writing stops; the count is in the summary and the metrics
            log.error("verdicts: cannot write %s: %s; rows not written are counted, writing is retried "
                      "with each batch", self._target(), self.last_error)

    def reopen(self) -> bool:
        """``append``: start a new file at ``path`` if the current one was moved or removed
        (logrotate then SIGHUP); True if a new file was opened.  Same file: nothing to do."""
        target = self._target()
        try:
            st = os.stat(target, follow_symlinks=False)
            if self._fd is not None:
                mine = os.fstat(self._fd)
                if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                    return False
        except FileNotFoundError:
            pass
        self._close_fd()
        try:
            self._open()
        except (OSError, VerdictFileError) as exc:  # tried again at the next batch
            self._close_fd()
            log.error("verdicts: cannot reopen %s: %s", target, getattr(exc, "strerror", None) or exc)
            return False
        return True

    def close(self) -> None:
        """Close the current file (``replace``: still under its partial name, see :meth:`commit`)."""
        self._close_fd()

    def commit(self) -> None:
        """``replace``: put the run's files in place of ``path`` and its rotated files."""
        self.close()
        if self.policy != "replace":
            return
        for sequence in range(self.first, self.sequence + 1):
            if self._target(sequence).exists():
                os.replace(self._target(sequence), self._final(sequence))
        stale = self.sequence + 1  # rotated files of the replaced run would read as part of this one
        while self._final(stale).exists():
            self._final(stale).unlink()
            stale += 1

    def abort(self, keep: bool = False) -> None:
        """``replace``: the run did not complete; remove its partial files unless ``keep``."""
        self.close()
        if self.policy != "replace" or keep:
            return
        for partial in self.partial_files():
            partial.unlink(missing_ok=True)
