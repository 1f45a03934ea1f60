"""The lab's work folders and the files it writes there, safe against planted links (the lab runs as root).

A folder is used only if it is private: a real directory (not a link) owned by us and writable by
nobody else, inside parents nobody else can swap it in (each owned by root, us or the user who ran
``sudo``, who is as powerful as root anyway, and writable by others only when sticky, like /tmp).
Inside it every file is created fresh with ``O_CREAT|O_EXCL|O_NOFOLLOW`` after removing whatever had
that name, so no link or stale file is ever followed; files that are appended to refuse anything
that is not our own regular file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import IO

from lab.netns import LabUsageError

PRIVATE_MODE = 0o700
#: a run folder: nobody else writes in it, everybody reads its results (`lab dataset` needs no root)
RUN_MODE = 0o755
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def _trusted_owners() -> set[int]:
    """Owners a parent folder may have: root, us, and the user who ran sudo (they can be root anyway)."""
    owners = {0, os.geteuid()}
    sudo_uid = os.environ.get("SUDO_UID", "")
    if sudo_uid.isdigit():
        owners.add(int(sudo_uid))
    return owners


def _unsafe_parent(path: Path) -> str | None:
    """Why a parent folder of ``path`` lets another user replace it, or None."""
    trusted = _trusted_owners()
    for parent in path.parents:
        if not parent.exists():  # made by us below, as root-owned folders
            continue
        st = os.stat(parent)
        if st.st_uid not in trusted:
            return f"{parent} is owned by uid {st.st_uid}"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"{parent} is writable by others"
    return None


def check_private(path: Path) -> Path:
    """Return ``path`` (absolute) if it is a private folder of ours, else raise :class:`LabUsageError`."""
    path = Path(os.path.abspath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise LabUsageError(f"work folder {path} does not exist") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise LabUsageError(f"work folder {path} is not a directory (a link or a file): refusing it")
    if st.st_uid != os.geteuid():
        raise LabUsageError(
            f"work folder {path} is owned by uid {st.st_uid}, not by us: refusing it (use a new folder)"
        )
    if st.st_mode & 0o022:
        raise LabUsageError(f"work folder {path} is writable by group or others: refusing it (chmod 700)")
    why = _unsafe_parent(path)
    if why:
        raise LabUsageError(f"work folder {path} is not safe: {why}")
    return path


def private_dir(path: Path | None, prefix: str = "netsentry-lab-", mode: int = PRIVATE_MODE) -> Path:
    """A private work folder: a new one if ``path`` is None or absent, else ``path`` checked.

    A new named folder gets ``mode`` (0700, or 0755 for a run folder others read the results of)."""
    if path is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    path = Path(os.path.abspath(path))
    if not os.path.lexists(path):
        why = _unsafe_parent(path)
        if why:
            raise LabUsageError(f"cannot make work folder {path} safely: {why}")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, mode)
        os.chmod(path, mode)  # whatever the umask
    return check_private(path)


def subdir(parent: Path, name: str) -> Path:
    """A private sub-folder of a checked folder (made 0700 if absent, checked if present)."""
    path = parent / name
    if not os.path.lexists(path):
        os.mkdir(path, PRIVATE_MODE)
    return check_private(path)


def remove(path: Path) -> None:
    """Remove the file or link ``path`` if there is one (a link is removed, never its target)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def create(path: Path, mode: int = 0o600) -> int:
    """Create ``path`` afresh and return a write descriptor; whatever had the name (a link too) is removed."""
    remove(path)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)


def write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write a new file ``path`` holding ``data`` (see :func:`create`)."""
    with os.fdopen(create(path, mode), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def open_new(path: Path, text: bool = True, mode: int = 0o600) -> IO:
    """A new file ``path`` opened for writing (see :func:`create`)."""
    return os.fdopen(create(path, mode), "w" if text else "wb")


def open_append(path: Path) -> IO:
    """Open ``path`` for appending, creating it if absent; refuse a link or a file that is not only ours."""
    fd = _own_file(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    return os.fdopen(fd, "a")


def secure_existing(path: Path, mode: int) -> None:
    """Set the mode of a file another program just made in our folder, without following a link."""
    fd = _own_file(path, os.O_RDONLY)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _own_file(path: Path, flags: int) -> int:
    """Open ``path`` without following a link; refuse anything but a regular file of ours with one name."""
    fd = os.open(path, flags | _NOFOLLOW, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
        os.close(fd)
        raise LabUsageError(f"{path} is not a private regular file of ours: refusing it")
    return fd
