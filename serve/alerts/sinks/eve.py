"""EVE JSON lines: one Suricata-shaped alert event per line, appended to a file.

Like Suricata's eve.json, the file is reopened when it was rotated away (logrotate moved or
removed it), so log shippers following the path keep receiving alerts.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from serve.alerts.alert import Alert, Summary
from serve.alerts.render import eve_record, summary_record
from serve.alerts.settings import AlertConfigError
from serve.alerts.sink import Sink, SinkError, option

#: Relative paths in the config are taken from the project root (as the sensor's other paths).
PROJECT_ROOT = Path(__file__).resolve().parents[3]

#: The EVE file's mode when the sink creates it: alerts name hosts and attacks.
DEFAULT_MODE = 0o640


def file_mode(value: Any, key: str) -> int:
    """A file mode from the config: octal text (``"0640"``, ``"0o640"``) or a number (YAML reads an
    unquoted 0640 as 416); permission bits only, and the owner must be able to write."""
    text = value.strip().lower().removeprefix("0o") if isinstance(value, str) else None
    if text is not None and text.isdigit() and set(text) <= set("01234567"):
        mode = int(text, 8)
    elif isinstance(value, int) and not isinstance(value, bool):
        mode = value
    else:
        mode = -1
    if not 0 <= mode <= 0o777 or not mode & stat.S_IWUSR:
        raise AlertConfigError(f"alerts config: {key} must be an octal file mode the owner can write, "
                               f'e.g. "0640", not {value!r}')
    return mode


class EveSink(Sink):
    """Append EVE JSON lines to ``path``."""

    kind = "eve"
    atomic_batches = True  # a batch of lines is in the file whole, or not at all

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        path = Path(str(option(options, "path", required=True))).expanduser()
        self.path = path if path.is_absolute() else PROJECT_ROOT / path
        self.mode = file_mode(option(options, "mode", DEFAULT_MODE), f"sinks.{name}.mode")
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        try:  # an unwritable path is the user's to fix: say so now, not at the first alert
            self._open()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise AlertConfigError(f"alerts config: cannot write the EVE file {self.path}: {reason}") from exc

    def describe(self) -> str:
        return f"eve {self.path}"

    def _open(self) -> int:
        if self._fd is not None and not self._rotated():
            return self._fd
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = _open_append(self.path, self.mode)
        st = os.fstat(self._fd)
        self._inode = (st.st_dev, st.st_ino)
        return self._fd

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._inode

    def _write(self, records: list[dict[str, Any]]) -> None:
        # orjson: compact UTF-8 JSON, 5-10x faster than json.dumps (a flood is a million lines)
        text = b"".join(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) for record in records)
        fd = self._open()  # one look for a rotation per write, not per line
        # unbuffered: nothing is left behind in a buffer to be written again by the retry or by
        # close(); a shipper tailing the file sees whole lines at once
        _write_whole(fd, text, self.path)

    def send(self, alert: Alert) -> None:
        self._write([eve_record(alert)])

    def send_many(self, alerts: list[Alert]) -> None:
        self._write([eve_record(alert) for alert in alerts])

    def send_summary(self, summary: Summary) -> None:
        self._write([summary_record(summary)])

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _open_append(path: Path, mode: int) -> int:
    """Open ``path`` to append; a file created here gets exactly ``mode`` (whatever the umask), an
    existing one keeps its own (an admin's or logrotate's choice)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return os.open(path, flags)
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        raise
    return fd


def _write_whole(fd: int, data: bytes, path: Path) -> None:
    """Append ``data`` to ``fd`` whole, or not at all: after a failed or short write (ENOSPC mid-
    batch) the part that landed is cut off again, so the retry writes each line exactly once and
    no torn line stays in the file."""
    start = os.fstat(fd).st_size
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, data[done:])
    except OSError:
        if done:
            _cut(fd, start, path)
        raise


def _cut(fd: int, size: int, path: Path) -> None:
    """Truncate the file back to ``size`` bytes (a partial batch out); fails loudly if it cannot."""
    try:
        os.ftruncate(fd, size)
    except OSError as exc:  # not a regular file: the partial line stays; say so
        raise SinkError(f"a partial line is left in {path} (cannot truncate: {exc.strerror})") from exc
