"""Writing and removing the credentials file a sign-in keeps its session in (0600, atomic).

The same file, and the same ``key=value`` format, that a person may write by hand and that
``settings.read_credentials`` reads: ``sid=<sid>`` and ``api_url=<url>`` (the API the session
belongs to, so it is never sent to another). A symlinked file is followed, never replaced.
Nothing here ever puts the sid in a message.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from enum import Enum
from pathlib import Path

from pydantic import SecretStr

from .errors import ConfigurationError
from .settings import read_credentials

#: The first lines of a file written by a sign-in (read_credentials skips comments).
HEADER = (
    "# The gpuoutlet session of gpuoutlet-jupyter's sign-in (the sidebar or %gpu_login).\n"
    "# Private: it is your account. Signing out (the sidebar or %gpu_logout) deletes it.\n"
)


class Removed(Enum):
    """What a sign-out did to the credentials file."""

    REMOVED = "removed"
    ABSENT = "absent"
    #: The file holds another session (signed in elsewhere since): left alone.
    OTHER_SESSION = "other_session"


def save_session(path: Path, sid: SecretStr, api_url: str) -> Path:
    """Write ``sid`` and ``api_url`` to ``path`` (0600, through a temporary file and a rename,
    in a 0700 folder made if missing); returns the file written (a symlink's target)."""
    target = _target(path)
    text = f"{HEADER}sid={sid.get_secret_value()}\napi_url={api_url}\n"
    try:
        _make_private_dir(target.parent)
        _atomic_write(target, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            f"The session could not be saved to {target} ({exc.strerror or type(exc).__name__}), "
            "so it lasts until this process ends. Make that folder writable, or point "
            "GPUOUTLET_CREDENTIALS_FILE at a private file you can write, and sign in again."
        ) from None
    return target


def saved_sid(path: Path) -> SecretStr | None:
    """The sid the file holds now (None: no file, no sid, or a file that cannot be read)."""
    try:
        sid = read_credentials(path).get("sid") if path.exists() else None
    except ConfigurationError:
        return None
    return SecretStr(sid) if sid else None


def remove_session(path: Path, sid: SecretStr | None) -> Removed:
    """Delete the file if it holds ``sid`` (or any session, when ``sid`` is None)."""
    target = _target(path)
    if not target.exists():
        return Removed.ABSENT
    held = saved_sid(target)
    if sid is not None and held is not None and held.get_secret_value() != sid.get_secret_value():
        return Removed.OTHER_SESSION
    try:
        target.unlink()
    except FileNotFoundError:
        return Removed.ABSENT
    except OSError as exc:
        raise ConfigurationError(
            f"The credentials file {target} could not be deleted "
            f"({exc.strerror or type(exc).__name__}). Delete it yourself: the session it held "
            "has ended, so it is of no use."
        ) from None
    return Removed.REMOVED


def _target(path: Path) -> Path:
    """The file itself: a symlink is followed (its target is what gets written or deleted)."""
    path = path.expanduser()
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _make_private_dir(folder: Path) -> None:
    if folder.is_dir():
        return
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def _atomic_write(path: Path, data: bytes) -> None:
    """A dot-prefixed temporary file made 0600, fsynced, renamed over ``path``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
