"""A transfer's progress, told to every viewer of its rental: at most once a second, and at the end."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from ..remote import SyncProgress, SyncResult
from ..service.work import TransferInfo, WorkInfo, WorkUpdates

#: Seconds between two progress announcements (each wakes the viewers' long-polls).
PUBLISH_INTERVAL = 0.5


def new_transfer(kind: str, local_dir: str, remote_dirs: tuple[str, ...]) -> TransferInfo:
    return TransferInfo(
        id="tr_" + secrets.token_hex(6),
        kind=kind,
        state="running",
        local_dir=local_dir,
        remote_dirs=remote_dirs,
        started_at=time.time(),
    )


class Reporter:
    """Keeps one transfer's record up to date from the syncs it is made of.

    A transfer may move several folders (a save of ``~/work`` and ``~/outputs``): the bytes
    and files of the folders done are added to those of the one moving now.
    """

    def __init__(self, work: WorkUpdates, rental_id: str, info: TransferInfo) -> None:
        self._work = work
        self.rental_id = rental_id
        self.info = info
        self._base_bytes = 0
        self._base_files = 0
        self._last = 0.0
        self._publishing: asyncio.Task[None] | None = None
        self._dirty = False

    async def begin(self) -> None:
        """Announce the transfer (persisted: a person may want to know it was started)."""
        await self._set(lambda work: None, persist=True)

    def __call__(self, progress: SyncProgress) -> None:
        """A sync's progress report (called on the event loop's thread)."""
        self.info = replace(
            self.info,
            bytes_done=self._base_bytes + progress.bytes_done,
            bytes_total=self._base_bytes + progress.bytes_total,
            files_done=self._base_files + progress.files_done,
            files_total=self._base_files + progress.files_total,
            rate=progress.rate,
            current=progress.current,
        )
        self.soon()

    def folder_done(self, result: SyncResult) -> None:
        """One folder is moved: the next one's counts start from here."""
        self._base_bytes += result.bytes_transferred
        self._base_files += len(result.transferred)
        self.info = replace(
            self.info,
            bytes_done=self._base_bytes,
            bytes_total=max(self.info.bytes_total, self._base_bytes),
            files_done=self._base_files,
            files_total=max(self.info.files_total, self._base_files),
            method=result.method or self.info.method,
            wire_bytes=(
                (self.info.wire_bytes or 0) + result.wire_bytes
                if result.wire_bytes is not None
                else self.info.wire_bytes
            ),
        )
        self.soon()

    def update(self, **changes: object) -> None:
        """Change members of the transfer (a note, the folder moving now) and announce it soon."""
        self.info = replace(self.info, **changes)  # type: ignore[arg-type]
        self.soon()

    def soon(self) -> None:
        """Announce the progress, at most once per PUBLISH_INTERVAL."""
        self._dirty = True
        if self._publishing is not None and not self._publishing.done():
            return
        wait = max(0.0, self._last + PUBLISH_INTERVAL - time.monotonic())
        self._publishing = asyncio.get_running_loop().create_task(self._publish_after(wait))

    async def _publish_after(self, wait: float) -> None:
        await asyncio.sleep(wait)
        if self._dirty:
            await self._set(lambda work: None, persist=False)

    async def finish(
        self,
        state: str,
        *,
        summary: str | None = None,
        error: str | None = None,
        then: Callable[[WorkInfo], None] | None = None,
    ) -> TransferInfo:
        """The transfer ended: its state, summary or error, announced and persisted."""
        if self._publishing is not None:
            self._publishing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._publishing
        self.info = replace(
            self.info,
            state=state,
            finished_at=time.time(),
            summary=summary,
            error=error,
            rate=(
                self.info.bytes_done / max(1e-6, time.time() - self.info.started_at)
                if self.info.bytes_done
                else 0.0
            ),
            current=None,
        )
        await self._set(then or (lambda work: None), persist=True)
        return self.info

    async def _set(self, then: Callable[[WorkInfo], None], *, persist: bool) -> None:
        self._dirty = False
        self._last = time.monotonic()
        info = self.info

        def change(work: WorkInfo) -> None:
            work.transfer = info
            then(work)

        await self._work.change(self.rental_id, change, persist=persist)
