"""``sync_up`` and ``sync_down``: a local folder to and from a pod's folder, over the shared connection.

One sync is: list the source (after the ignore rules) and the destination, plan what to send
(skip identical files, keep newer ones, fit ``max_bytes``), move the files with rsync when both
ends have it (a tar stream otherwise), then list the destination again so the result says
exactly which files arrived whole. Nothing at the destination is ever deleted. A timeout stops
the transfer and returns what was done; running the same sync again resumes (rsync from its
partial file, tar by skipping the files already complete).
"""

from __future__ import annotations

import asyncio
import io
import os
import shlex
import shutil
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from .connection import CommandResult, SharedConnection
from .errors import (
    CommandTimeout,
    LocalFolderError,
    RemoteError,
    RemoteFolderError,
    RemoteToolMissing,
    SyncError,
    TransferFailed,
    stderr_tail,
)
from .ignore import DEFAULT_EXCLUDES, IGNORE_FILE, PARTIAL_DIR, IgnoreRules, plain_names
from .listing import (
    FileEntry,
    RemoteTree,
    Selection,
    find_command,
    parse_find,
    select_local,
    stat_local,
)
from .plan import Plan, Skipped, make_plan, same_content
from .progress import ProgressCallback, ProgressMeter
from .rsync import EXIT_MEANINGS, PARTIAL_EXIT, RsyncOutcome, run_rsync
from .tarstream import TarOutcome, run_tar, wait_command

DEFAULT_REMOTE_DIR = "~/work"
Direction = Literal["up", "down"]
Method = Literal["auto", "rsync", "tar"]
_HEADER = b"gpuoutlet-sync"
_MISSING = b"gpuoutlet-sync-missing"
#: How long the listings may take at most when no timeout is given.
_LIST_TIMEOUT = 600.0


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: what was sent, from where to where, when, and what was not."""

    direction: Direction
    method: Literal["rsync", "tar"] | None  #: ``None`` when there was nothing to send
    alias: str
    local_dir: Path
    remote_dir: str  #: as given (``~/work``)
    remote_path: str  #: the absolute folder on the pod (``/root/work``)
    started_at: datetime
    finished_at: datetime
    transferred: tuple[FileEntry, ...]  #: whole at the destination now, sent this time
    unchanged: tuple[FileEntry, ...]  #: already identical at the destination
    incomplete: tuple[FileEntry, ...]  #: meant to be sent, not whole at the destination
    left_out: tuple[Skipped, ...]  #: over ``max_bytes``
    skipped: tuple[Skipped, ...]  #: kept newer copies, name clashes, special files
    excluded: tuple[str, ...]  #: left out by the ignore rules (top-most paths)
    timed_out: bool
    wire_bytes: int | None = None  #: bytes over ssh, when known
    warnings: tuple[str, ...] = field(default=())

    @property
    def bytes_transferred(self) -> int:
        return sum(e.size for e in self.transferred if e.kind == "file")

    @property
    def bytes_left_out(self) -> int:
        return sum(s.size for s in self.left_out)

    @property
    def complete(self) -> bool:
        """Everything selected is now at the destination (nothing left out, failed or cut off)."""
        return not (self.incomplete or self.left_out or self.timed_out)

    @property
    def duration(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def source(self) -> str:
        remote = f"{self.alias}:{self.remote_path}"
        return os.fspath(self.local_dir) if self.direction == "up" else remote

    @property
    def destination(self) -> str:
        remote = f"{self.alias}:{self.remote_path}"
        return remote if self.direction == "up" else os.fspath(self.local_dir)

    def summary(self) -> str:
        """One paragraph for a person: what went where, and what did not."""
        how = f" by {self.method}" if self.method else ""
        text = (
            f"{'Uploaded' if self.direction == 'up' else 'Downloaded'} "
            f"{len(self.transferred)} file(s), {_size(self.bytes_transferred)}, from "
            f"{self.source} to {self.destination}{how} in {self.duration:.1f} s"
        )
        notes = []
        if self.unchanged:
            notes.append(f"{len(self.unchanged)} already up to date")
        if self.timed_out:
            notes.append("ran out of time: run it again to resume")
        if self.incomplete:
            notes.append(f"{len(self.incomplete)} not sent whole")
        if self.left_out:
            notes.append(
                f"{len(self.left_out)} left out over the byte cap ({_size(self.bytes_left_out)})"
            )
        if self.skipped:
            notes.append(f"{len(self.skipped)} skipped")
        if self.excluded:
            notes.append(f"{len(self.excluded)} excluded by the ignore rules")
        return text + ("; " + "; ".join(notes) if notes else "") + "."

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (dates ISO 8601, paths as strings)."""
        data = asdict(self)
        data["local_dir"] = os.fspath(self.local_dir)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        data["bytes_transferred"] = self.bytes_transferred
        data["complete"] = self.complete
        return data


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


def shell_path(remote_dir: str) -> str:
    """``remote_dir`` for the pod's shell: ``~`` and ``~/…`` expand to the home, the rest quoted."""
    if not remote_dir or any(c in remote_dir for c in "\0\n\r"):
        raise RemoteFolderError(
            f"the remote folder {remote_dir!r} is empty or holds a newline or NUL: give a path "
            "such as ~/work or /data"
        )
    if remote_dir == "~":
        return "~"
    if remote_dir.startswith("~/"):
        rest = remote_dir[2:]
        return "~/" + shlex.quote(rest) if rest else "~"
    if remote_dir.startswith("~"):
        raise RemoteFolderError(
            f"the remote folder {remote_dir!r} names another user's home: use ~/path (the "
            "rental's user) or an absolute path"
        )
    return shlex.quote(remote_dir)


def _check_deadline(deadline: float | None) -> float | None:
    if deadline is None:
        return _LIST_TIMEOUT
    return max(0.001, deadline - asyncio.get_running_loop().time())


class _Listing:
    """The remote side's listing and what the probe found (rsync, tar, the absolute path)."""

    def __init__(self, tree: RemoteTree, has_rsync: bool, has_tar: bool, path: str) -> None:
        self.tree = tree
        self.has_rsync = has_rsync
        self.has_tar = has_tar
        self.path = path


def _probe_script(remote_dir: str, prune: Sequence[str], *, create: bool) -> str:
    root = shell_path(remote_dir)
    if create:
        enter = f"mkdir -p -- {root} && cd -- {root} || exit 3"
    else:
        enter = f"cd -- {root} 2>/dev/null || {{ printf '%s\\0' {_MISSING.decode()}; exit 0; }}"
    has = "command -v {0} >/dev/null 2>&1 && echo 1 || echo 0"
    return (
        f"{enter}; printf '%s\\0%s\\0%s\\0%s\\0' {_HEADER.decode()} "
        f'"$({has.format("rsync")})" "$({has.format("tar")})" "$PWD" && '
        f"exec {find_command('.', prune)}"
    )


def _tool_missing(result: CommandResult) -> RemoteToolMissing | None:
    err = result.stderr.decode("utf-8", "replace")
    if result.exit_status == 127 or ("printf" in err and "find" in err):
        return RemoteToolMissing(
            "find",
            "the pod has no GNU find (findutils), which the sync needs to list its files: "
            f"install it on the pod (apt-get install -y findutils). The pod said: {stderr_tail(err)}",
        )
    return None


async def _list_remote(
    connection: SharedConnection,
    remote_dir: str,
    prune: Sequence[str],
    *,
    create: bool,
    deadline: float | None,
    warnings: list[str],
) -> _Listing | None:
    """Probe and list the pod's folder in one command; ``None`` when it does not exist."""
    result = await connection.run(
        _probe_script(remote_dir, prune, create=create), timeout=_check_deadline(deadline)
    )
    if create and result.exit_status == 3:
        raise RemoteFolderError(
            f"could not create {remote_dir} on the pod: {stderr_tail(result.stderr)}. Choose a "
            "folder the rental's user can write"
        )
    missing = _tool_missing(result)
    if missing is not None:
        raise missing
    out = result.stdout
    if out.startswith(_MISSING + b"\0"):
        return None
    parts = out.split(b"\0", 4)
    if len(parts) < 5 or parts[0] != _HEADER:
        raise SyncError(
            f"unexpected answer from the pod while listing {remote_dir}: "
            f"{stderr_tail(result.stderr) or out[:200]!r}. Does the pod's shell print text on "
            "login (a .bashrc that echoes)? It must not, for syncs to work"
        )
    if result.exit_status != 0:
        detail = stderr_tail(result.stderr)
        warnings.extend(f"listing {remote_dir}: {line}" for line in detail.splitlines() if line)
    entries, pruned = parse_find(parts[4])
    tree = RemoteTree(entries, pruned)
    return _Listing(tree, parts[1] == b"1", parts[2] == b"1", os.fsdecode(parts[3]))


async def _list_subtrees(
    connection: SharedConnection,
    remote_path: str,
    folders: Sequence[str],
    tree: RemoteTree,
    *,
    deadline: float | None,
) -> None:
    """List pruned folders fully (the rules keep them after all) and add them to ``tree``."""
    if not folders:
        return
    commands = [find_command("./" + folder, ()) for folder in folders]
    script = f"cd -- {shlex.quote(remote_path)} && {{ {'; '.join(commands)}; }}"
    result = await connection.run(script, timeout=_check_deadline(deadline))
    entries, _ = parse_find(result.stdout, strip_prefix="./")
    tree.add(entries, listed=folders)


async def _fetch_ignore_files(
    connection: SharedConnection,
    remote_path: str,
    tree: RemoteTree,
    ignore_file: str,
    *,
    deadline: float | None,
) -> None:
    """Read the pod's ignore files (one tar of them) into ``tree.ignore_texts``."""
    paths = tree.ignore_files(ignore_file)
    if not paths:
        return
    names = " ".join(shlex.quote("./" + p) for p in paths)
    script = f"cd -- {shlex.quote(remote_path)} && exec tar -c -f - --no-recursion -- {names}"
    result = await connection.run(script, timeout=_check_deadline(deadline))
    with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r:") as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                name = member.name[2:] if member.name.startswith("./") else member.name
                tree.ignore_texts[name] = handle.read().decode("utf-8", "replace")
    for path in paths:
        tree.ignore_texts.setdefault(path, "")


def _rules(
    excludes: Sequence[str], use_default_excludes: bool
) -> tuple[IgnoreRules, IgnoreRules, list[str]]:
    defaults = IgnoreRules.defaults(use_defaults=use_default_excludes)
    extra = IgnoreRules().with_lines(excludes)
    prune = [
        *(DEFAULT_EXCLUDES if use_default_excludes else ()),
        *plain_names(excludes),
        PARTIAL_DIR,
    ]
    return defaults, extra, list(dict.fromkeys(prune))


def _choose_method(method: Method, remote_has_rsync: bool, remote_has_tar: bool) -> str:
    local_rsync = shutil.which("rsync") is not None
    if method == "rsync":
        if not local_rsync:
            raise RemoteToolMissing(
                "rsync",
                "rsync is not installed on this machine: install it (apt-get install -y rsync), "
                "or sync with method='auto' to use a tar stream",
            )
        if not remote_has_rsync:
            raise RemoteToolMissing(
                "rsync",
                "the pod has no rsync: install it there (apt-get install -y rsync), or sync with "
                "method='auto' to use a tar stream",
            )
        return "rsync"
    if method == "auto" and local_rsync and remote_has_rsync:
        return "rsync"
    if not remote_has_tar:
        raise RemoteToolMissing(
            "tar",
            "the pod has neither rsync nor tar, so nothing can be copied: install one there "
            "(apt-get install -y rsync)",
        )
    return "tar"


def _local_dest(root: Path) -> Callable[[str], FileEntry | None]:
    return lambda path: stat_local(root, path)


async def sync_up(
    connection: SharedConnection,
    local_dir: Path | str,
    remote_dir: str = DEFAULT_REMOTE_DIR,
    *,
    excludes: Sequence[str] = (),
    use_default_excludes: bool = True,
    ignore_file: str = IGNORE_FILE,
    max_bytes: int | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    method: Method = "auto",
    bwlimit: float | None = None,
    overwrite_newer: bool = False,
) -> SyncResult:
    """Copy ``local_dir`` into the pod's ``remote_dir`` (created if missing). See :func:`sync`."""
    return await sync(
        connection,
        "up",
        local_dir,
        remote_dir,
        excludes=excludes,
        use_default_excludes=use_default_excludes,
        ignore_file=ignore_file,
        max_bytes=max_bytes,
        timeout=timeout,
        progress=progress,
        method=method,
        bwlimit=bwlimit,
        overwrite_newer=overwrite_newer,
    )


async def sync_down(
    connection: SharedConnection,
    local_dir: Path | str,
    remote_dir: str = DEFAULT_REMOTE_DIR,
    *,
    excludes: Sequence[str] = (),
    use_default_excludes: bool = True,
    ignore_file: str = IGNORE_FILE,
    max_bytes: int | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    method: Method = "auto",
    bwlimit: float | None = None,
    overwrite_newer: bool = False,
) -> SyncResult:
    """Copy the pod's ``remote_dir`` into ``local_dir`` (created if missing). See :func:`sync`."""
    return await sync(
        connection,
        "down",
        local_dir,
        remote_dir,
        excludes=excludes,
        use_default_excludes=use_default_excludes,
        ignore_file=ignore_file,
        max_bytes=max_bytes,
        timeout=timeout,
        progress=progress,
        method=method,
        bwlimit=bwlimit,
        overwrite_newer=overwrite_newer,
    )


async def sync(
    connection: SharedConnection,
    direction: Direction,
    local_dir: Path | str,
    remote_dir: str = DEFAULT_REMOTE_DIR,
    *,
    excludes: Sequence[str] = (),
    use_default_excludes: bool = True,
    ignore_file: str = IGNORE_FILE,
    max_bytes: int | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    method: Method = "auto",
    bwlimit: float | None = None,
    overwrite_newer: bool = False,
) -> SyncResult:
    """Copy between ``local_dir`` and the pod's ``remote_dir``; never deletes anything.

    ``excludes`` add gitignore patterns (ranked above the ignore files); ``ignore_file`` files
    in the source tree apply as in git; ``use_default_excludes`` leaves out ``.git``,
    ``__pycache__``, ``.venv``, ``node_modules`` and ``.ipynb_checkpoints``. ``max_bytes`` caps
    what is sent (smallest files first; the rest is ``left_out``). ``timeout`` (seconds, the whole
    sync) stops the transfer and returns with ``timed_out``. ``progress`` gets
    :class:`~gpuoutlet_jupyter.remote.progress.SyncProgress` reports on the loop's thread.
    ``bwlimit`` caps the rate in bytes per second. A destination file newer than the source is
    kept unless ``overwrite_newer``.

    Raises :class:`TransferFailed` (with ``.result``) when the transfer itself failed, and the
    other :class:`SyncError` subclasses when it could not start.
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    if method not in ("auto", "rsync", "tar"):
        raise ValueError(f"method must be 'auto', 'rsync' or 'tar', not {method!r}")
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    started_at = datetime.now(timezone.utc)
    local_root = await asyncio.to_thread(_prepare_local, direction, local_dir)
    defaults, extra, prune = _rules(excludes, use_default_excludes)
    warnings: list[str] = []
    try:
        listing, selection, plan = await _prepare(
            connection,
            direction,
            local_root,
            remote_dir,
            defaults,
            extra,
            prune,
            ignore_file,
            max_bytes,
            overwrite_newer,
            deadline,
            warnings,
        )
    except CommandTimeout:
        # Out of time before anything moved: say so, as a transfer cut short would.
        return SyncResult(
            direction=direction,
            method=None,
            alias=connection.alias,
            local_dir=local_root,
            remote_dir=remote_dir,
            remote_path=remote_dir,
            started_at=started_at,
            finished_at=datetime.now(timezone.utc),
            transferred=(),
            unchanged=(),
            incomplete=(),
            left_out=(),
            skipped=(),
            excluded=(),
            timed_out=True,
            warnings=(*warnings, "ran out of time while listing the files: nothing was sent"),
        )
    return await _transfer(
        connection,
        direction,
        local_root,
        remote_dir,
        listing,
        selection,
        plan,
        started_at=started_at,
        method=method,
        progress=progress,
        bwlimit=bwlimit,
        overwrite_newer=overwrite_newer,
        deadline=deadline,
        warnings=warnings,
    )


async def _prepare(
    connection: SharedConnection,
    direction: Direction,
    local_root: Path,
    remote_dir: str,
    defaults: IgnoreRules,
    extra: IgnoreRules,
    prune: list[str],
    ignore_file: str,
    max_bytes: int | None,
    overwrite_newer: bool,
    deadline: float | None,
    warnings: list[str],
) -> tuple[_Listing, Selection, Plan]:
    """List both ends and plan the transfer."""
    if direction == "up":
        selection = await asyncio.to_thread(select_local, local_root, defaults, extra, ignore_file)
        listing = await _list_remote(
            connection,
            remote_dir,
            [*DEFAULT_EXCLUDES, PARTIAL_DIR],
            create=True,
            deadline=deadline,
            warnings=warnings,
        )
        assert listing is not None
        await _list_under_pruned(connection, listing, selection.entries, deadline)
        tree = listing.tree
        plan = make_plan(
            selection, tree.entries.get, max_bytes=max_bytes, overwrite_newer=overwrite_newer
        )
    else:
        listing = await _list_remote(
            connection, remote_dir, prune, create=False, deadline=deadline, warnings=warnings
        )
        if listing is None:
            raise RemoteFolderError(
                f"the pod has no folder {remote_dir}: nothing to download. Check the path (the "
                f"default is {DEFAULT_REMOTE_DIR}, the rental user's home + /work)"
            )
        selection = await _select_remote(
            connection, listing, defaults, extra, ignore_file, deadline
        )
        plan = await asyncio.to_thread(
            make_plan,
            selection,
            _local_dest(local_root),
            max_bytes=max_bytes,
            overwrite_newer=overwrite_newer,
        )
    return listing, selection, plan


async def _transfer(
    connection: SharedConnection,
    direction: Direction,
    local_root: Path,
    remote_dir: str,
    listing: _Listing,
    selection: Selection,
    plan: Plan,
    *,
    started_at: datetime,
    method: Method,
    progress: ProgressCallback | None,
    bwlimit: float | None,
    overwrite_newer: bool,
    deadline: float | None,
    warnings: list[str],
) -> SyncResult:
    """Move the planned files, check what arrived, and say so."""
    loop = asyncio.get_running_loop()
    skipped = [
        *plan.skipped,
        *(Skipped(p, 0, "not a regular file, folder or link") for p in selection.special),
    ]
    result_args: dict[str, Any] = {
        "direction": direction,
        "alias": connection.alias,
        "local_dir": local_root,
        "remote_dir": remote_dir,
        "remote_path": listing.path,
        "started_at": started_at,
        "unchanged": tuple(plan.unchanged),
        "left_out": tuple(plan.left_out),
        "skipped": tuple(skipped),
        "excluded": tuple(selection.excluded),
    }
    if not plan.send and not _dirs_missing(plan, direction, local_root, listing):
        return SyncResult(
            method=None,
            finished_at=datetime.now(timezone.utc),
            transferred=(),
            incomplete=(),
            timed_out=False,
            warnings=tuple(warnings),
            **result_args,
        )

    chosen = _choose_method(method, listing.has_rsync, listing.has_tar)
    meter = ProgressMeter(
        progress,
        direction=direction,
        bytes_total=plan.bytes_to_send,
        files_total=len(plan.send),
        loop=loop,
    )
    failure: str | None = None
    tar_outcome: TarOutcome | None = None
    rsync_outcome: RsyncOutcome | None = None
    if deadline is not None and loop.time() >= deadline:
        timed_out, wire = True, None
    elif chosen == "rsync":
        outcome = rsync_outcome = await run_rsync(
            connection,
            plan.paths,
            direction=direction,
            local_root=local_root,
            remote_root=listing.path,
            meter=meter,
            deadline=deadline,
            bwlimit=bwlimit,
            overwrite_newer=overwrite_newer,
        )
        timed_out, wire = outcome.timed_out, outcome.wire_bytes
        if not timed_out and outcome.returncode != 0:
            meaning = EXIT_MEANINGS.get(outcome.returncode, "failed")
            message = (
                f"rsync exited with {outcome.returncode} ({meaning}): {stderr_tail(outcome.stderr)}"
            )
            if outcome.returncode in PARTIAL_EXIT:
                warnings.append(message)
            else:
                failure = message
        elif outcome.stderr and not timed_out:
            warnings.extend(line for line in outcome.stderr.splitlines() if line.strip())
    else:
        tar_outcome = await run_tar(
            connection,
            [*plan.dirs, *plan.send],
            direction=direction,
            local_root=local_root,
            remote_root=listing.path,
            meter=meter,
            deadline=deadline,
            bwlimit=bwlimit,
        )
        timed_out, wire = tar_outcome.timed_out, tar_outcome.wire_bytes
        warnings.extend(tar_outcome.warnings)
        if not timed_out and tar_outcome.returncode not in (0, None):
            message = f"tar on the pod exited with {tar_outcome.returncode}: {stderr_tail(tar_outcome.stderr)}"
            if tar_outcome.returncode == 255 and not connection.is_open():
                failure = connection.lost_message("tar")
            elif tar_outcome.returncode == 127:
                failure = "the pod has no tar: " + message
            else:
                warnings.append(message)
    meter.finish()

    cut_upload = tar_outcome is not None and direction == "up" and (timed_out or failure)
    missing: list[tuple[FileEntry, FileEntry | None]]
    try:
        if cut_upload and tar_outcome is not None and tar_outcome.remote_pid is not None:
            # The pod's tar may still be unpacking what was buffered: judge after it is done.
            await connection.run(wait_command(tar_outcome.remote_pid, 10.0), timeout=30)
        if _rsync_sent_everything(rsync_outcome, plan):
            # rsync says it sent every planned file and succeeded: listing the pod again
            # would only repeat that (a round trip per upload saved).
            transferred, missing = list(plan.send), []
        else:
            transferred, missing = await _verify(connection, direction, plan, local_root, listing)
        if cut_upload and missing:
            removed = await _remove_half_written(connection, listing, missing)
            warnings.extend(
                f"{path}: removed the half-written copy from the pod; the next sync sends it again"
                for path in removed
            )
    except RemoteError as exc:  # the connection went with the transfer: say what is unknown
        warnings.append(f"could not check which files arrived: {exc}")
        transferred, missing = [], [(entry, None) for entry in plan.send]
    incomplete = [entry for entry, _ in missing]
    result = SyncResult(
        method=chosen,  # type: ignore[arg-type]
        finished_at=datetime.now(timezone.utc),
        transferred=tuple(transferred),
        incomplete=tuple(incomplete),
        timed_out=timed_out,
        wire_bytes=wire,
        warnings=tuple(warnings),
        **result_args,
    )
    if failure is not None:
        raise TransferFailed(
            f"the {direction} sync between {local_root} and {connection.alias}:{listing.path} "
            f"failed after {len(transferred)} file(s): {failure}. Files that arrived whole are "
            "kept; run the sync again to resume",
            result,
        )
    return result


def _rsync_sent_everything(outcome: RsyncOutcome | None, plan: Plan) -> bool:
    """Whether rsync exited 0, not cut short, having sent each planned regular file.

    Only files the quick check found different are planned, so rsync sends every one of
    them; a file that vanished meanwhile (``--ignore-missing-args``) makes the count fall
    short, and then the destination is listed to see what is there.
    """
    if outcome is None or outcome.timed_out or outcome.returncode != 0:
        return False
    planned = sum(1 for entry in plan.send if entry.kind == "file")
    return outcome.files_transferred == planned


def _prepare_local(direction: str, local_dir: Path | str) -> Path:
    """The absolute local folder: it must exist to upload; it is created to download into."""
    root = Path(os.path.abspath(os.path.expanduser(local_dir)))
    if direction == "up":
        if not root.is_dir():
            raise LocalFolderError(
                f"{root} is not a folder on this machine: nothing to upload. Give the folder "
                "to send (the notebook's folder by default)"
            )
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalFolderError(
            f"cannot create {root} for the download: {exc}. Choose a folder you can write"
        ) from exc
    if not root.is_dir():
        raise LocalFolderError(f"{root} exists and is not a folder: choose another one")
    return root


def _dirs_missing(plan: Plan, direction: str, local_root: Path, listing: _Listing) -> bool:
    """Whether any planned folder is absent at the destination (empty folders are synced too)."""
    if direction == "up":
        return any(listing.tree.entries.get(d.path) is None for d in plan.dirs)
    return any(stat_local(local_root, d.path) is None for d in plan.dirs)


async def _list_under_pruned(
    connection: SharedConnection,
    listing: _Listing,
    wanted: dict[str, FileEntry],
    deadline: float | None,
) -> None:
    """List the pruned destination folders that the upload writes into (to compare inside them)."""
    pruned = listing.tree.pruned
    if not pruned:
        return
    needed = sorted(
        folder
        for folder in pruned
        if any(path == folder or path.startswith(folder + "/") for path in wanted)
    )
    await _list_subtrees(connection, listing.path, needed, listing.tree, deadline=deadline)


async def _select_remote(
    connection: SharedConnection,
    listing: _Listing,
    defaults: IgnoreRules,
    extra: IgnoreRules,
    ignore_file: str,
    deadline: float | None,
) -> Selection:
    """Select from the pod's listing, fetching ignore files and pruned folders the rules keep."""
    tree = listing.tree
    for _ in range(32):  # each round lists deeper folders; real trees need one or two
        await _fetch_ignore_files(connection, listing.path, tree, ignore_file, deadline=deadline)
        selection = tree.select(defaults, extra, ignore_file)
        if not selection.unlisted:
            return selection
        await _list_subtrees(connection, listing.path, selection.unlisted, tree, deadline=deadline)
    raise SyncError("the pod's folder is nested too deeply under excluded folders to list")


async def _verify(
    connection: SharedConnection,
    direction: str,
    plan: Plan,
    local_root: Path,
    listing: _Listing,
) -> tuple[list[FileEntry], list[tuple[FileEntry, FileEntry | None]]]:
    """Which planned files are now whole at the destination (same size and mtime as the source).

    Returns the whole ones, and the others with what the destination holds for each now.
    """
    if not plan.send:
        return [], []
    if direction == "up":
        after = await _list_remote(
            connection,
            listing.path,
            [*DEFAULT_EXCLUDES, PARTIAL_DIR],
            create=False,
            deadline=None,  # after a timeout too: the result must say what arrived
            warnings=[],
        )
        if after is None:
            return [], [(entry, None) for entry in plan.send]
        await _list_under_pruned(connection, after, {e.path: e for e in plan.send}, None)
        found = after.tree.entries
        now = [(entry, found.get(entry.path)) for entry in plan.send]
    else:
        now = await asyncio.to_thread(
            lambda: [(entry, stat_local(local_root, entry.path)) for entry in plan.send]
        )
    done = [entry for entry, dest in now if same_content(entry, dest)]
    missing = [(entry, dest) for entry, dest in now if not same_content(entry, dest)]
    return done, missing


async def _remove_half_written(
    connection: SharedConnection,
    listing: _Listing,
    missing: list[tuple[FileEntry, FileEntry | None]],
) -> list[str]:
    """After a cut tar upload, delete the file the pod's tar was writing when its input ended.

    GNU tar stops at once on a truncated archive, leaving that file short and with a fresh
    mtime, which would pass for "newer at the destination" and never be resent. It is the file
    that changed at the destination during this sync without becoming whole; tar had already
    replaced the old copy, so nothing is lost by removing it. Returns the removed paths.
    """
    before = listing.tree.entries
    half = [
        entry.path
        for entry, now in missing
        if now is not None and now.kind == "file" and now != before.get(entry.path)
    ]
    if half:
        names = " ".join(shlex.quote("./" + path) for path in half)
        await connection.run(f"cd -- {shlex.quote(listing.path)} && rm -f -- {names}", timeout=60)
    return half
