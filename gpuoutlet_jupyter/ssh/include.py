"""Adding the one ``Include`` line to the user's ssh config, and nothing else.

The line goes at the very top of the file. That is before the first ``Host``/``Match`` line, as
required, and also before any top-level option of the user's (``User``, ``Port``,
``IdentityFile`` ... outside a block apply to every host, and ssh keeps the first value it
reads), so the gpuoutlet entries always mean what they say. Every other byte of the file,
line endings included, is kept; a symlink is followed and its target rewritten in place of
the link; a file that cannot or must not be written is left alone and a warning names the line.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from collections.abc import Collection
from pathlib import Path

from .fsutil import PRIVATE_FILE_MODE, atomic_write, make_dir

log = logging.getLogger(__name__)

_KEYWORD_RE = re.compile(rb"[ \t]*([A-Za-z]+)(?:[ \t]*=[ \t]*|[ \t]+)(.*)", re.DOTALL)
_MAX_ATTEMPTS = 5


class _Changed(Exception):
    """The config changed under us between reading and replacing it: start again."""


def split_arguments(text: str) -> list[str]:
    """Split an ssh_config argument list like OpenSSH's ``argv_split`` (quotes, escapes, ``#``)."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        quote = ""
        arg: list[str] = []
        while i < n:
            char = text[i]
            if (
                char == "\\"
                and i + 1 < n
                and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " "))
            ):
                arg.append(text[i + 1])
                i += 2
                continue
            if not quote and char in " \t":
                break
            if not quote and char in "'\"":
                quote = char
            elif quote and char == quote:
                quote = ""
            else:
                arg.append(char)
            i += 1
        args.append("".join(arg))
    return args


def has_include(data: bytes, accepted: Collection[str]) -> bool:
    """Whether ``data`` (an ssh config) has an ``Include`` with one of the ``accepted`` patterns."""
    for raw_line in data.split(b"\n"):
        match = _KEYWORD_RE.fullmatch(raw_line.rstrip(b"\r"))
        if match is None or match.group(1).lower() != b"include":
            continue
        arguments = split_arguments(match.group(2).decode("utf-8", "surrogateescape"))
        if any(argument in accepted for argument in arguments):
            return True
    return False


def with_include(data: bytes, include_line: str) -> bytes:
    """``data`` with ``include_line`` added as its first line, in the file's own line ending."""
    first_newline = data.find(b"\n")
    crlf = data[first_newline - 1 : first_newline] == b"\r" if first_newline > 0 else False
    return include_line.encode("utf-8") + (b"\r\n" if crlf else b"\n") + data


def include_warning(config_file: Path, include_line: str, reason: str) -> str:
    """The message shown when the config could not be edited: which line to add, and where."""
    return (
        f"Could not add the gpuoutlet-jupyter Include line to {config_file} ({reason}). "
        f"For `ssh gpuoutlet-<rental id>` to work, add this line to {config_file} "
        f"before its first Host or Match line:\n    {include_line}\n"
        "Until then, use the `ssh -F <file> gpuoutlet-<rental id>` command shown for each rental."
    )


def ensure_include(config_file: Path, include_line: str, accepted: Collection[str]) -> str | None:
    """Make sure ``config_file`` includes the managed folder. Call with the managed lock held.

    Returns ``None`` when the line is present (added now or before), else the warning to show.
    """
    for _ in range(_MAX_ATTEMPTS):
        try:
            return _ensure_once(config_file, include_line, accepted)
        except _Changed:
            continue
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                reason = f"not writable: {reason}"
            return _warn(config_file, include_line, reason)
    return _warn(config_file, include_line, "it kept changing while being edited")


def _warn(config_file: Path, include_line: str, reason: str) -> str:
    message = include_warning(config_file, include_line, reason)
    log.warning("%s", message)
    return message


def _ensure_once(config_file: Path, include_line: str, accepted: Collection[str]) -> str | None:
    target = Path(os.path.realpath(config_file))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if os.path.islink(config_file):
            return _warn(config_file, include_line, f"it is a symlink to a missing file, {target}")
        make_dir(config_file.parent, enforce_private=False)
        _create(config_file, include_line)
        return None
    if not stat.S_ISREG(st.st_mode):
        return _warn(config_file, include_line, f"{target} is not a regular file")
    with open(target, "rb") as handle:
        data = handle.read()
    if has_include(data, accepted):
        return None
    if not st.st_mode & stat.S_IWUSR or not os.access(target, os.W_OK):
        return _warn(config_file, include_line, "it is read-only")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        return _warn(config_file, include_line, f"its folder {target.parent} is not writable")

    def unchanged() -> None:
        try:
            now = os.stat(target)
            with open(target, "rb") as handle:
                same = handle.read() == data
        except FileNotFoundError:
            raise _Changed from None
        if not same or now.st_ino != st.st_ino or now.st_mtime_ns != st.st_mtime_ns:
            raise _Changed

    atomic_write(
        target,
        with_include(data, include_line),
        mode=stat.S_IMODE(st.st_mode),
        owner=(st.st_uid, st.st_gid),
        before_replace=unchanged,
    )
    return None


def _create(config_file: Path, include_line: str) -> None:
    def still_missing() -> None:
        if os.path.lexists(config_file):
            raise _Changed

    atomic_write(
        config_file,
        (include_line + "\n").encode("utf-8"),
        mode=PRIVATE_FILE_MODE,
        before_replace=still_missing,
    )
