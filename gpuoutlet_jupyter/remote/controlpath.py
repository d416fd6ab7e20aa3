"""Where shared connections keep their control sockets: a short private folder, checked up front.

A Unix socket path holds at most 107 bytes (``sun_path`` is 108 with its NUL on Linux, 104 on
macOS), and ssh binds ``<ControlPath>.<16 random chars>`` before renaming it into place, so the
folder must leave room for ``/<40 hex chars of %C>.<16 chars>``. Test and state folders are often
longer than that: this module says so before ssh fails with "ControlPath too long".
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from .errors import ControlPathError

#: ``%C`` expands to the hex SHA-1 of ``%l%h%p%r`` (40 characters).
HASH_LENGTH = 40
#: ssh first binds ``<path>.<16 random characters>`` and renames it.
TEMP_SUFFIX_LENGTH = 17
#: The longest socket path the kernel accepts (without the terminating NUL).
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
#: The longest control folder that still fits: 107 - 1 ("/") - 40 - 17 = 49 bytes on Linux.
MAX_CONTROL_DIR = MAX_SOCKET_PATH - 1 - HASH_LENGTH - TEMP_SUFFIX_LENGTH
CONTROL_PATH_TEMPLATE = "%C"


def default_control_dir() -> Path:
    """``/tmp/gpuoutlet-ssh-<uid>``: short on every platform (``$TMPDIR`` on macOS is not)."""
    return Path("/tmp") / f"gpuoutlet-ssh-{os.getuid()}"  # noqa: S108 (a 0700 folder we check)


def socket_path_length(control_dir: Path | str) -> int:
    """Bytes of the longest path ssh binds in ``control_dir`` (the hash and its temp suffix)."""
    return len(os.fsencode(os.path.abspath(control_dir))) + 1 + HASH_LENGTH + TEMP_SUFFIX_LENGTH


def check_control_dir_length(control_dir: Path | str) -> None:
    """Raise :class:`ControlPathError` when sockets in ``control_dir`` would be too long."""
    length = socket_path_length(control_dir)
    if length > MAX_SOCKET_PATH:
        raise ControlPathError(
            f"the control folder {os.fspath(control_dir)!r} is too long for ssh's control "
            f"socket: {length} bytes with the connection hash, and Unix sockets allow "
            f"{MAX_SOCKET_PATH}. Choose a folder of at most {MAX_CONTROL_DIR} bytes, such as "
            f"{os.fspath(default_control_dir())!r}"
        )


def control_path(control_dir: Path) -> str:
    """The ``ControlPath`` option value: ``<control_dir>/%C``."""
    text = os.fspath(control_dir)
    if any(c.isspace() or c in "\"'\\%" for c in text):
        raise ControlPathError(
            f"the control folder {text!r} holds spaces, quotes, backslashes or '%': choose a "
            "plain path such as " + repr(os.fspath(default_control_dir()))
        )
    return f"{text}/{CONTROL_PATH_TEMPLATE}"


def ensure_control_dir(control_dir: Path | str) -> Path:
    """Create ``control_dir`` 0700 if missing and check that it is ours and private.

    The default lives in ``/tmp``, which everyone can write: a folder someone else made there
    (or a symlink planted in its place) is refused rather than used, since whoever owns it could
    take over the control sockets.
    """
    path = Path(os.path.abspath(control_dir))
    check_control_dir_length(path)
    control_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise ControlPathError(
            f"{path} is not a folder (a file or a symlink is in its place): remove it or choose "
            "another control folder"
        )
    if st.st_uid != os.getuid():
        raise ControlPathError(
            f"{path} belongs to user id {st.st_uid}, not to you ({os.getuid()}): someone else "
            "could take over the shared SSH connections there. Remove it or choose another "
            "control folder"
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path
