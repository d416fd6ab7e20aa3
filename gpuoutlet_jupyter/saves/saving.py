"""One save: each of a rental's save paths pulled from its pod, within a byte cap and a deadline.

What it did is said in one ``SaveInfo``: the files and bytes copied, where to, what was left
out over the cap or the time, which paths the pod does not have, and any failure. It never
raises for the pod's or the network's sake: a save that fails is reported, and the stop that
asked for it goes ahead.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..remote import RemoteError, RemoteFolderError, RentalRemote, SyncError, SyncResult
from ..service.work import SaveInfo
from .paths import folder_labels, shown_path
from .transfer import Reporter

#: How a save's reason reads in its summary.
REASON_TEXT = {
    "user": "before the stop you asked for",
    "idle": "before the idle auto-stop",
    "cap": "before the stop for the spending cap",
    "manual": "on request",
    "auto_stop": "ahead of gpuoutlet's auto-stop (autoStopAfterHours)",
    "wallet": "ahead of the wallet reaching $0 (gpuoutlet then stops every pod)",
}


def size_text(count: int) -> str:
    """``412 MB`` (decimal units, as the issue and most file browsers count)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


@dataclass
class _Tally:
    files: int = 0
    bytes: int = 0
    left_out_files: int = 0
    left_out_bytes: int = 0
    incomplete: int = 0
    timed_out: bool = False
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unsaved: list[str] = field(default_factory=list)  #: paths not reached in time

    def add(self, result: SyncResult) -> None:
        self.files += len(result.transferred)
        self.bytes += result.bytes_transferred
        self.left_out_files += len(result.left_out)
        self.left_out_bytes += result.bytes_left_out
        self.incomplete += len(result.incomplete)
        self.timed_out = self.timed_out or result.timed_out

    @property
    def complete(self) -> bool:
        return not (
            self.left_out_files or self.incomplete or self.timed_out or self.errors or self.unsaved
        )


async def save_paths(
    remote: RentalRemote,
    paths: tuple[str, ...],
    dest: Path,
    *,
    reason: str,
    max_bytes: int | None,
    timeout: float | None,
    reporter: Reporter | None = None,
) -> SaveInfo:
    """Pull each of ``paths`` into ``dest/<label>`` (see ``folder_labels``) and say what was done."""
    started = time.time()
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    labels = folder_labels(paths)
    tally = _Tally()
    budget = max_bytes
    for path in paths:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            tally.timed_out = True
            tally.unsaved.append(path)
            continue
        if reporter is not None:
            reporter.update(current=path)
        try:
            result = await remote.sync_down(
                dest / labels[path],
                path,
                max_bytes=budget,
                timeout=remaining,
                progress=reporter,
            )
        except RemoteFolderError:
            tally.missing.append(path)
            continue
        except SyncError as exc:
            tally.errors.append(f"{path}: {exc}")
            if exc.result is None:
                continue
            result = exc.result
        except RemoteError as exc:
            tally.errors.append(f"{path}: {exc}")
            continue
        tally.add(result)
        if reporter is not None:
            reporter.folder_done(result)
        if budget is not None:
            budget = max(0, budget - result.bytes_transferred)
    finished = time.time()
    return SaveInfo(
        reason=reason,
        paths=paths,
        local_dir=str(dest),
        started_at=started,
        finished_at=finished,
        files=tally.files,
        bytes=tally.bytes,
        complete=tally.complete and len(tally.missing) < len(paths),
        left_out_files=tally.left_out_files,
        left_out_bytes=tally.left_out_bytes,
        timed_out=tally.timed_out,
        missing=tuple(tally.missing),
        error="; ".join(tally.errors) or None,
        summary=_summary(paths, dest, reason, tally, finished - started, max_bytes, timeout),
    )


def _summary(
    paths: tuple[str, ...],
    dest: Path,
    reason: str,
    tally: _Tally,
    seconds: float,
    max_bytes: int | None,
    timeout: float | None,
) -> str:
    present = [p for p in paths if p not in tally.missing]
    listed = ", ".join(present) or ", ".join(paths)
    if not present:
        return (
            f"Nothing to save {REASON_TEXT.get(reason, '')}: the pod has no {listed}. "
            "Change the save paths if your work is elsewhere."
        )
    text = (
        f"Saved {listed} {REASON_TEXT.get(reason, '')} to {shown_path(dest)}: "
        f"{tally.files} file(s), {size_text(tally.bytes)} copied in {seconds:.1f} s"
    )
    notes = []
    if tally.left_out_files:
        cap = f" (max_save_bytes, {size_text(max_bytes)})" if max_bytes else ""
        notes.append(
            f"{tally.left_out_files} file(s), {size_text(tally.left_out_bytes)}, left out over "
            f"the byte cap{cap}: the smallest files were saved first"
        )
    if tally.timed_out:
        unsaved = f" ({', '.join(tally.unsaved)} not reached)" if tally.unsaved else ""
        limit = f" of {timeout:g} s (save_timeout)" if timeout else ""
        notes.append(
            f"ran out of its time{limit}{unsaved}: what was not copied is lost with the pod"
        )
    if tally.incomplete:
        notes.append(f"{tally.incomplete} file(s) not copied whole")
    if tally.missing:
        notes.append(f"the pod has no {', '.join(tally.missing)}")
    if tally.errors:
        notes.append("failed: " + "; ".join(tally.errors))
    return text + ("; " + "; ".join(notes) if notes else "") + "."
