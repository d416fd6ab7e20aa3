"""What is in a folder, here or on the pod, and which of it a sync takes (after the ignore rules).

A local folder is walked with ``os.scandir``; a pod's folder is listed by one remote ``find
-printf`` (GNU findutils, on every gpuoutlet template) that prints each entry's type, size,
mtime and path, NUL-terminated so any file name survives. Both feed the same selection walk, so
``up`` and ``down`` leave out exactly the same things.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .ignore import IGNORE_FILE, IgnoreRules, is_internal

Kind = Literal["file", "dir", "link", "other"]
_FIND_KINDS: dict[str, Kind] = {"f": "file", "d": "dir", "l": "link"}
#: The type letter our ``find`` prints for a folder it did not enter (see :func:`find_command`).
PRUNED = "P"


@dataclass(frozen=True)
class FileEntry:
    """One entry of a folder tree."""

    path: str  #: relative to the synced folder, ``/``-separated, no leading ``./``
    kind: Kind
    size: int  #: bytes (0 for folders)
    mtime: float  #: seconds since the epoch

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def parent(self) -> str:
        return self.path.rpartition("/")[0]


@dataclass
class Selection:
    """What a sync takes from its source folder."""

    entries: dict[str, FileEntry] = field(default_factory=dict)  #: files, links and folders kept
    excluded: list[str] = field(default_factory=list)  #: top-most excluded paths (folders end "/")
    special: list[str] = field(default_factory=list)  #: sockets, fifos, devices: never synced
    #: Folders a pruned remote listing did not enter but the rules keep: list them, then select again.
    unlisted: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[FileEntry]:
        return [e for e in self.entries.values() if e.kind in ("file", "link")]

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries.values() if e.kind == "file")


def _entry_from_stat(path: str, st: os.stat_result) -> FileEntry:
    if stat.S_ISREG(st.st_mode):
        kind: Kind = "file"
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISLNK(st.st_mode):
        kind = "link"
    else:
        kind = "other"
    size = st.st_size if kind in ("file", "link") else 0
    return FileEntry(path, kind, size, st.st_mtime)


def stat_local(root: Path, path: str) -> FileEntry | None:
    """The entry at ``root/path`` (not following a final symlink), or ``None`` if absent."""
    try:
        st = os.lstat(root / path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _entry_from_stat(path, st)


def select(
    children: Callable[[str], Iterable[FileEntry]],
    read_ignore: Callable[[str], str | None],
    defaults: IgnoreRules,
    extra: IgnoreRules,
    pruned: Callable[[str], bool] = lambda _path: False,
) -> Selection:
    """Walk a tree from its top, keeping what the rules keep and never entering an excluded folder.

    ``children(dir)`` lists a folder (``""`` is the top); ``read_ignore(dir)`` returns the text of
    its ignore file or ``None``. The rules rank: ``defaults``, then the ignore files from the top
    down, then ``extra`` (given by the caller, e.g. ``--exclude``), the last match winning.
    ``pruned(dir)`` says a kept folder's contents were not listed (see :attr:`Selection.unlisted`).
    """
    selection = Selection()
    stack: list[tuple[str, IgnoreRules]] = [("", IgnoreRules())]
    while stack:
        folder, file_rules = stack.pop()
        text = read_ignore(folder)
        if text is not None:
            file_rules = file_rules.with_file(text, folder)
        rules = defaults.then(file_rules).then(extra)
        for entry in sorted(children(folder), key=lambda e: e.path):
            if is_internal(entry.name):
                continue
            is_dir = entry.kind == "dir"
            if rules.ignored(entry.path, is_dir):
                selection.excluded.append(entry.path + ("/" if is_dir else ""))
                continue
            if entry.kind == "other":
                selection.special.append(entry.path)
                continue
            selection.entries[entry.path] = entry
            if is_dir:
                if pruned(entry.path):
                    selection.unlisted.append(entry.path)
                else:
                    stack.append((entry.path, file_rules))
    return selection


def select_local(
    root: Path, defaults: IgnoreRules, extra: IgnoreRules, ignore_file: str = IGNORE_FILE
) -> Selection:
    """:func:`select` over a local folder (symlinks are kept as links, never followed)."""

    def children(folder: str) -> list[FileEntry]:
        found = []
        with os.scandir(root / folder if folder else root) as it:
            for item in it:
                path = f"{folder}/{item.name}" if folder else item.name
                try:
                    found.append(_entry_from_stat(path, item.stat(follow_symlinks=False)))
                except FileNotFoundError:  # removed while we looked
                    continue
        return found

    def read_ignore(folder: str) -> str | None:
        try:
            return (root / folder / ignore_file).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    return select(children, read_ignore, defaults, extra)


class RemoteTree:
    """A pod folder's flat listing, as a tree :func:`select` can walk."""

    def __init__(self, entries: Iterable[FileEntry], pruned: Iterable[str] = ()) -> None:
        self.entries: dict[str, FileEntry] = {}
        self.pruned: set[str] = set(pruned)
        self._children: dict[str, list[FileEntry]] = {}
        self.ignore_texts: dict[str, str] = {}
        self.add(entries)

    def add(self, entries: Iterable[FileEntry], *, listed: Iterable[str] = ()) -> None:
        """Add entries (from a listing of the folders ``listed``, which are no longer pruned)."""
        for folder in listed:
            self.pruned.discard(folder)
        for entry in entries:
            if entry.path in self.entries:
                continue
            self.entries[entry.path] = entry
            self._children.setdefault(entry.parent, []).append(entry)

    def children(self, folder: str) -> list[FileEntry]:
        return self._children.get(folder, [])

    def ignore_files(self, ignore_file: str = IGNORE_FILE) -> list[str]:
        """Paths of the ignore files in the listing whose text is not fetched yet."""
        return [
            e.path
            for e in self.entries.values()
            if e.name == ignore_file and e.kind == "file" and e.path not in self.ignore_texts
        ]

    def read_ignore(self, folder: str, ignore_file: str = IGNORE_FILE) -> str | None:
        return self.ignore_texts.get(f"{folder}/{ignore_file}" if folder else ignore_file)

    def select(
        self, defaults: IgnoreRules, extra: IgnoreRules, ignore_file: str = IGNORE_FILE
    ) -> Selection:
        return select(
            self.children,
            lambda folder: self.read_ignore(folder, ignore_file),
            defaults,
            extra,
            pruned=lambda path: path in self.pruned,
        )


def find_command(start: str, prune_names: Sequence[str]) -> str:
    """``find`` printing ``<type> <size> <mtime> <path>\\0`` under ``start`` (the cwd is the folder).

    Folders named in ``prune_names`` are printed with type ``P`` and not entered: they are
    left out by default, so listing a ``.venv`` of 50,000 files would be wasted.
    """
    fmt = "%y %s %T@ %P\\0" if start == "." else "%y %s %T@ %p\\0"
    printf = ["-printf", fmt]
    if prune_names:
        names: list[str] = []
        for name in prune_names:
            names += ["-name", name, "-o"]
        prune = ["-type", "d", "(", *names[:-1], ")", "-printf", f"{PRUNED} %s %T@ %P\\0"]
        if start != ".":
            prune[-1] = f"{PRUNED} %s %T@ %p\\0"
        expr = ["(", *prune, "-prune", ")", "-o", *printf]
    else:
        expr = printf
    return shlex.join(["find", start, "-mindepth", "1", *expr])


def parse_find(data: bytes, strip_prefix: str = "") -> tuple[list[FileEntry], list[str]]:
    """Parse :func:`find_command`'s output: the entries, and the pruned folders' paths.

    Paths are decoded like local file names (``os.fsdecode``), so any byte survives a round trip.
    """
    entries: list[FileEntry] = []
    pruned: list[str] = []
    for record in data.split(b"\0"):
        if not record.strip():
            continue
        parts = record.lstrip(b"\n").split(b" ", 3)
        if len(parts) != 4:
            raise ValueError(f"unexpected line from find: {record[:200]!r}")
        kind_raw, size_raw, mtime_raw, path_raw = parts
        path = os.fsdecode(path_raw)
        if strip_prefix and path.startswith(strip_prefix):
            path = path[len(strip_prefix) :]
        if not path or path == ".":
            continue
        kind_text = kind_raw.decode("ascii", "replace")
        if kind_text == PRUNED:
            pruned.append(path)
            entries.append(FileEntry(path, "dir", 0, float(mtime_raw)))
            continue
        kind = _FIND_KINDS.get(kind_text, "other")
        size = int(size_raw) if kind in ("file", "link") else 0
        entries.append(FileEntry(path, kind, size, float(mtime_raw)))
    return entries, pruned
