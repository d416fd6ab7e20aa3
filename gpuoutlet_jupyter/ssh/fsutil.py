"""Small filesystem helpers: private folders, atomic writes, the cross-process lock."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import SSHConfigError, SSHLockTimeout

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
LOCK_NAME = ".lock"
TEMP_SUFFIX = ".tmp"
LOCK_TIMEOUT_SECONDS = 120.0


def make_dir(path: Path, *, enforce_private: bool) -> None:
    """Create ``path`` 0700 if missing (whatever the umask).

    An existing folder keeps its mode unless ``enforce_private`` (the folder is ours).
    """
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
        created = True
    except FileExistsError:
        created = False
    if not path.is_dir():
        raise SSHConfigError(f"{path} exists and is not a directory")
    if created or enforce_private:
        st = path.stat()
        if stat.S_IMODE(st.st_mode) != PRIVATE_DIR_MODE:
            os.chmod(path, PRIVATE_DIR_MODE)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or unlink in it) to disk, where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of the temp files :func:`atomic_write` makes."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def atomic_write(
    path: Path,
    data: bytes,
    *,
    mode: int = PRIVATE_FILE_MODE,
    owner: tuple[int, int] | None = None,
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Replace ``path`` with ``data`` atomically.

    The bytes go to a dot-prefixed temp file in the same folder, created 0600, set to ``mode``
    (and ``owner``, a ``(uid, gid)``, when given), fsynced, then renamed over ``path`` with ``os.replace``. The temp
    file is removed if anything fails, including ``before_replace`` (a last check that may raise).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                current = os.fstat(fd)
                if (current.st_uid, current.st_gid) != owner:
                    os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_replace is not None:
            before_replace()
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def create_empty(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (never truncates an existing file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink(path: Path) -> bool:
    """Remove ``path`` if it exists; return whether it did."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the cross-process lock of ``folder`` (the managed folder). Not reentrant: never nest."""
    from filelock import FileLock, Timeout  # imported on first use: importing it costs ~60 ms

    lock = FileLock(os.fspath(folder / LOCK_NAME), timeout=LOCK_TIMEOUT_SECONDS, mode=0o600)
    try:
        lock.acquire()
    except Timeout:
        raise SSHLockTimeout(
            f"timed out after {LOCK_TIMEOUT_SECONDS:.0f} s waiting for {folder / LOCK_NAME}"
        ) from None
    try:
        yield
    finally:
        lock.release()
