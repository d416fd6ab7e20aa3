"""What a sync sends: compare source and destination, keep newer copies, fit a byte cap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .listing import FileEntry, Selection

REASON_NEWER = "newer at the destination (kept; pass overwrite_newer=True to replace it)"
REASON_CONFLICT = "a {dest} at the destination has this name (a {src} in the source); left alone"
REASON_CAP = "over the byte cap (max_bytes)"


@dataclass(frozen=True)
class Skipped:
    """A file the sync did not send, and why."""

    path: str
    size: int
    reason: str


def same_content(source: FileEntry, dest: FileEntry | None) -> bool:
    """rsync's quick check: same kind, same size, same modification time (whole seconds).

    Folders match by kind alone, links by kind and length (not every system keeps a link's
    time).
    """
    if dest is None or dest.kind != source.kind:
        return False
    if source.kind == "dir":
        return True
    if source.kind == "link":
        return dest.size == source.size
    return dest.size == source.size and int(dest.mtime) == int(source.mtime)


@dataclass
class Plan:
    """The outcome of comparing a selection with what the destination holds."""

    send: list[FileEntry] = field(default_factory=list)  #: files and links to send
    dirs: list[FileEntry] = field(default_factory=list)  #: folders to create or keep
    unchanged: list[FileEntry] = field(default_factory=list)
    left_out: list[Skipped] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def bytes_to_send(self) -> int:
        return sum(e.size for e in self.send if e.kind == "file")

    @property
    def paths(self) -> list[str]:
        """Everything the transfer names, folders first (parents before children)."""
        return [e.path for e in self.dirs] + [e.path for e in self.send]


def make_plan(
    selection: Selection,
    dest: Callable[[str], FileEntry | None],
    *,
    max_bytes: int | None = None,
    overwrite_newer: bool = False,
) -> Plan:
    """Decide what to send.

    Files already identical at the destination are ``unchanged``. A destination file newer than
    the source is kept (``skipped``) unless ``overwrite_newer``: a download never overwrites
    what was edited since. Under ``max_bytes`` the smallest changed files go first, so the cap
    saves as many files as it can; the rest is ``left_out`` with its size.
    """
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must be 0 or more")
    plan = Plan()
    candidates: list[FileEntry] = []
    blocked: list[str] = []  # source folders whose name is taken by a file at the destination
    for entry in sorted(selection.entries.values(), key=lambda e: e.path):
        existing = dest(entry.path)
        if entry.kind == "dir":
            if existing is not None and existing.kind != "dir":
                blocked.append(entry.path)
                plan.skipped.append(
                    Skipped(entry.path, 0, REASON_CONFLICT.format(dest=existing.kind, src="dir"))
                )
            else:
                plan.dirs.append(entry)
            continue
        if existing is not None and existing.kind == "dir":
            plan.skipped.append(
                Skipped(entry.path, entry.size, REASON_CONFLICT.format(dest="dir", src=entry.kind))
            )
            continue
        if same_content(entry, existing):
            plan.unchanged.append(entry)
            continue
        if (
            existing is not None
            and not overwrite_newer
            and existing.kind == "file"
            and int(existing.mtime) > int(entry.mtime)
        ):
            plan.skipped.append(Skipped(entry.path, entry.size, REASON_NEWER))
            continue
        candidates.append(entry)
    if blocked:  # nothing can be sent into a folder that cannot be created

        def inside_blocked(entry: FileEntry) -> bool:
            return any(entry.path.startswith(folder + "/") for folder in blocked)

        for entry in candidates:
            if inside_blocked(entry):
                plan.skipped.append(
                    Skipped(entry.path, entry.size, "inside a folder that could not be created")
                )
        candidates = [e for e in candidates if not inside_blocked(e)]
        plan.dirs = [e for e in plan.dirs if not inside_blocked(e)]
    if max_bytes is None:
        plan.send = candidates
    else:
        budget = max_bytes
        for entry in sorted(candidates, key=lambda e: (e.size, e.path)):
            if entry.size <= budget:
                plan.send.append(entry)
                budget -= entry.size
            else:
                plan.left_out.append(Skipped(entry.path, entry.size, REASON_CAP))
        plan.send.sort(key=lambda e: e.path)
    return plan
