"""How much a rental's save paths hold: one quick ``du`` over its shared connection."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..remote import DEFAULT_EXCLUDES, RemoteError, SharedConnection
from ..remote.sync import shell_path

#: A quick look: a tree so large that du takes longer is shown as of unknown size.
DU_TIMEOUT = 20.0
_MISSING = "-"


@dataclass(frozen=True)
class PathSize:
    """One save path: whether the pod has it and its apparent size (None: unknown)."""

    path: str
    exists: bool
    bytes: int | None


def du_script(paths: list[str]) -> str:
    """One line per path: ``-`` when missing, else its apparent size in bytes (empty: unknown).

    Apparent sizes (what a copy moves, sparse files at full length), without the folders a
    sync leaves out by default.
    """
    excludes = " ".join(f"--exclude={shlex.quote(name)}" for name in DEFAULT_EXCLUDES)
    lines = []
    for path in paths:
        where = shell_path(path)
        lines.append(
            f"if [ -e {where} ]; then printf '%s\\n' \"$(du -s --apparent-size "
            f'--block-size=1 {excludes} -- {where} 2>/dev/null | tail -n 1 | cut -f1)"; '
            f"else echo {_MISSING}; fi"
        )
    return "; ".join(lines)


def parse_du(paths: list[str], output: str) -> list[PathSize]:
    """The sizes ``du_script`` printed (one line per path), in the order of ``paths``."""
    lines = output.split("\n")
    sizes: list[PathSize] = []
    for index, path in enumerate(paths):
        text = lines[index].strip() if index < len(lines) else ""
        if text == _MISSING:
            sizes.append(PathSize(path, False, None))
        else:
            sizes.append(PathSize(path, True, int(text) if text.isdigit() else None))
    return sizes


async def measure(connection: SharedConnection, paths: list[str]) -> list[PathSize]:
    """The size of each path on the pod (raises RemoteError when the pod cannot be reached)."""
    result = await connection.run(du_script(paths), timeout=DU_TIMEOUT)
    if result.exit_status == 255:
        raise RemoteError(result.stderr.decode("utf-8", "replace").strip() or "ssh failed")
    return parse_du(paths, result.text)
