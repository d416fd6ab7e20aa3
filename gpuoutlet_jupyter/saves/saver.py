"""The Saver: a rental's work saved before every stop, and its folders synced on request.

It joins RentalService through its hooks: ``before_stop`` saves the rental's save paths to
``<saves_dir>/<rental name or id>/`` (unless the person stopping it said not to), bounded by
``max_save_bytes`` and ``save_timeout`` so that a stop always happens; ``ended`` closes the
rental's shared SSH connection. Transfers (uploads, downloads, saves, the working folder's
push) are jobs, one per rental at a time, whose progress is on the rental for every viewer.
The ``Guard`` (guard.py) saves ahead of the stops gpuoutlet makes itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..api import RequestValidationError
from ..remote import RemoteError, RemoteManager, RentalRemote, SSHTarget, SyncError
from ..service.hooks import StopRequest
from ..service.record import RentalRecord
from ..service.work import SaveInfo, TransferInfo, WorkInfo, WorkUpdates
from .errors import NoTransferError, NotReachableError, PodUnreachableError, TransferRunningError
from .paths import check_save_paths, save_folder, shown_path
from .saving import save_paths, size_text
from .size import PathSize, measure
from .traits import SaveOptions
from .transfer import Reporter, new_transfer

if TYPE_CHECKING:
    from ..service import RentalService
    from .guard import Guard

log = logging.getLogger(__name__)

Direction = Literal["up", "down"]


class Saver:
    """Saves and syncs the work on the rentals of one RentalService (see the module)."""

    def __init__(
        self,
        service: RentalService,
        options: SaveOptions | None = None,
        *,
        remotes: RemoteManager,
        local_root: Path | None = None,
    ) -> None:
        from .guard import Guard

        self.service = service
        self.options = options or SaveOptions()
        #: The host's one RemoteManager (shared with telemetry and forwards); the host closes it.
        self.remotes = remotes
        #: Where a relative local folder is (the Jupyter server's root, the kernel's folder).
        self.local_root = local_root or Path.cwd()
        self._jobs: dict[str, tuple[TransferInfo, asyncio.Task[Any]]] = {}
        self.guard: Guard = Guard(self)
        service.hooks.before_stop.append(self.before_stop)
        # First: its transfer is cancelled before the service closes the rental's connection.
        service.hooks.ended.insert(0, self.ended)

    @property
    def work(self) -> WorkUpdates:
        return self.service.work

    # Lifecycle.

    def start(self) -> None:
        """Start looking ahead of gpuoutlet's own stops (and pushing working folders)."""
        self.guard.start()

    async def close(self) -> None:
        """Cancel the transfers (the host is going away; it closes the connections after)."""
        await self.guard.close()
        for rental_id in list(self._jobs):
            await self._cancel_job(rental_id)

    # The service's hooks.

    async def before_stop(self, record: RentalRecord, request: StopRequest) -> None:
        """Save the rental's work, unless the person stopping it said not to. Never raises."""
        if not request.save or record.rental.status != "running":
            return  # a pod that does not run yet has nothing of the user's on it
        await self.save(record.id, reason=request.reason)

    async def ended(self, record: RentalRecord) -> None:
        """The rental stopped, failed or vanished: its pod is gone, and its transfer with it
        (the service's RemoteManager closes the connection in a later hook)."""
        await self._cancel_job(record.id)

    # Reaching a pod.

    def record(self, rental_id: str) -> RentalRecord:
        record = self.work.record(rental_id)
        if record is None:
            raise NotReachableError(
                f"Rental {rental_id} is not tracked here: %gpu_rentals lists your rentals.",
                rental_id=rental_id,
            )
        return record

    def target(self, record: RentalRecord) -> SSHTarget:
        """The rental's SSH target, or NotReachableError saying why there is none."""
        ssh = record.ssh
        if not record.watched or record.rental.status != "running":
            state = "gone" if record.gone else record.rental.status
            raise NotReachableError(
                f"Rental {record.id} is {state}: only a running rental's pod can be reached "
                "(a stopped pod and its disk are gone).",
                rental_id=record.id,
            )
        if ssh is None or not ssh.alias or not ssh.config_file:
            why = ssh.error if ssh is not None and ssh.error else "its SSH entry is not written yet"
            raise NotReachableError(
                f"Rental {record.id} cannot be reached over SSH: {why}", rental_id=record.id
            )
        return SSHTarget(record.id, ssh.alias, Path(ssh.config_file))

    async def remote(self, record: RentalRecord) -> RentalRemote:
        return await self.remotes.rental(self.target(record))

    def local_path(self, text: str) -> Path:
        """A local folder as given: ``~`` expanded, a relative one under ``local_root``."""
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else self.local_root / path

    # Save paths and sizes.

    async def set_save_paths(self, rental_id: str, paths: list[Any] | None) -> RentalRecord:
        """Set the rental's save paths (None or empty: the remote working folder)."""
        checked = check_save_paths(paths or [], field="paths") or None
        self.record(rental_id)

        def change(work: WorkInfo) -> None:
            work.save_paths = checked

        record = await self.work.change(rental_id, change)
        assert record is not None
        return record

    async def size(self, rental_id: str) -> dict[str, Any]:
        """How much the save paths hold on the pod now (one ``du``), and where they would go."""
        record = self.record(rental_id)
        remote = await self.remote(record)
        paths = list(record.work.paths)
        try:
            sizes = await measure(remote.connection, paths)
        except (RemoteError, OSError) as exc:
            raise PodUnreachableError(
                f"Could not measure {', '.join(paths)} on rental {rental_id}'s pod: {exc}",
                rental_id=rental_id,
            ) from None
        known = [s.bytes for s in sizes if s.exists]
        total = sum(b or 0 for b in known) if all(b is not None for b in known) else None
        cap = self.options.byte_cap
        return {
            "rentalId": rental_id,
            "paths": [_size_json(s) for s in sizes],
            "totalBytes": total,
            "maxSaveBytes": cap,
            "fits": None if total is None else (cap is None or total <= cap),
            "saveTimeoutSeconds": self.options.time_cap,
            "localDir": shown_path(
                save_folder(self.options.saves_path, record.id, record.rental.name)
            ),
            "text": _size_sentence(sizes, total),
        }

    # Saves.

    async def save(self, rental_id: str, *, reason: str) -> SaveInfo | None:
        """Save the rental's work now and wait for it; what it did (None: nothing to reach).

        Never raises for the pod's sake: a failure is in the save's ``error`` and on the
        rental. A transfer running for the rental is cancelled first (a save is about to
        matter more), or waited for when it is a save itself.
        """
        record = self.work.record(rental_id)
        if record is None:
            return None
        running = self._jobs.get(rental_id)
        if running is not None:
            info, task = running
            if info.kind == "save":
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(task)
            else:
                await self._cancel_job(rental_id)
        try:
            task = await self.start_save_job(record, reason)
        except NotReachableError as exc:
            return await self._record_failed_save(record, reason, str(exc))
        try:
            result: SaveInfo | None = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise
        return result

    async def save_now(self, rental_id: str, *, reason: str = "manual") -> TransferInfo:
        """Start a save as a job (``POST rentals/{id}/save``); its progress is on the rental."""
        record = self.record(rental_id)
        self._check_free(record)
        await self.start_save_job(record, reason)
        return self._jobs[rental_id][0]

    async def start_save_job(
        self, record: RentalRecord, reason: str
    ) -> asyncio.Task[SaveInfo | None]:
        """Start a save of the rental in its transfer slot (the caller checked it is free)."""
        target = self.target(record)  # raises when it cannot be reached
        paths = record.work.paths
        dest = save_folder(self.options.saves_path, record.id, record.rental.name)
        info = new_transfer("save", str(dest), paths)
        reporter = Reporter(self.work, record.id, info)

        async def run() -> SaveInfo | None:
            try:
                remote = await self.remotes.rental(target)
                saved = await save_paths(
                    remote,
                    paths,
                    dest,
                    reason=reason,
                    max_bytes=self.options.byte_cap,
                    timeout=self.options.time_cap,
                    reporter=reporter,
                )
            except asyncio.CancelledError:
                await _finish_quietly(reporter, "cancelled", error="Cancelled before it finished.")
                raise
            except Exception as exc:  # anything: the stop that waits must still happen
                log.exception("rental %s: the save failed", record.id)
                saved = _failed_save(paths, str(dest), reason, info.started_at, str(exc))

            def keep(work: WorkInfo) -> None:
                work.add_save(saved)
                if reason in ("auto_stop", "wallet") and (saved.files or not saved.error):
                    work.vendor_saves[reason] = saved.finished_at  # else the next look retries

            await reporter.finish(
                "failed" if saved.error and not saved.files else "done",
                summary=saved.summary,
                error=saved.error,
                then=keep,
            )
            level = logging.WARNING if saved.error or not saved.complete else logging.INFO
            log.log(level, "rental %s: %s", record.id, saved.summary)
            return saved

        task = self._register(record.id, info, run())
        await reporter.begin()  # on the rental before the caller answers (the job waits)
        return task

    async def _record_failed_save(self, record: RentalRecord, reason: str, error: str) -> SaveInfo:
        paths = record.work.paths
        saved = _failed_save(paths, "", reason, None, error)
        await self.work.change(record.id, lambda work: work.add_save(saved))
        log.warning("rental %s: could not save before the stop: %s", record.id, error)
        return saved

    # Syncs.

    async def start_sync(
        self,
        rental_id: str,
        direction: Direction,
        local_dir: str,
        remote_dir: str | None = None,
        *,
        bwlimit: float | None = None,
    ) -> TransferInfo:
        """Start an upload or download between a local folder and the pod (a job);
        ``bwlimit``: at most that many bytes per second."""
        record = self.record(rental_id)
        target = self.target(record)
        self._check_free(record)
        local = self.local_path(local_dir)
        remote_dir = (check_save_paths([remote_dir], field="remoteDir") if remote_dir else (None,))[
            0
        ] or self.service.options.remote_workdir
        if direction == "up" and not local.is_dir():
            raise RequestValidationError(
                [("localDir", f"{local} is not a folder on this machine: nothing to upload")]
            )
        kind = "upload" if direction == "up" else "download"
        info = new_transfer(kind, str(local), (remote_dir,))
        reporter = Reporter(self.work, rental_id, info)

        async def run() -> None:
            try:
                remote = await self.remotes.rental(target)
                sync = remote.sync_up if direction == "up" else remote.sync_down
                result = await sync(local, remote_dir, progress=reporter, bwlimit=bwlimit)
            except asyncio.CancelledError:
                await _finish_quietly(reporter, "cancelled", error="Cancelled.")
                raise
            except (SyncError, RemoteError, OSError) as exc:
                partial = exc.result if isinstance(exc, SyncError) else None
                if partial is not None:
                    reporter.folder_done(partial)
                await reporter.finish("failed", error=str(exc))
                return
            reporter.folder_done(result)
            await reporter.finish("done", summary=result.summary())

        self._register(rental_id, info, run())
        await reporter.begin()
        return info

    async def cancel(self, rental_id: str) -> TransferInfo:
        """Cancel the rental's running transfer (what arrived whole is kept)."""
        self.record(rental_id)
        if rental_id not in self._jobs:
            raise NoTransferError(
                f"Rental {rental_id} has no transfer running.", rental_id=rental_id
            )
        info = self._jobs[rental_id][0]
        await self._cancel_job(rental_id)
        record = self.record(rental_id)
        return record.work.transfer or info

    # Jobs: one per rental.

    def busy(self, rental_id: str) -> TransferInfo | None:
        job = self._jobs.get(rental_id)
        return job[0] if job is not None else None

    def _check_free(self, record: RentalRecord) -> None:
        running = self.busy(record.id)
        if running is not None:
            raise TransferRunningError(
                f"Rental {record.id} has a {running.kind} running already (one transfer per "
                "rental at a time): wait for it, or cancel it first.",
                rental_id=record.id,
            )

    def _register(
        self, rental_id: str, info: TransferInfo, coro: Awaitable[Any]
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._jobs[rental_id] = (info, task)

        def done(finished: asyncio.Task[Any]) -> None:
            if self._jobs.get(rental_id, (None, None))[1] is finished:
                del self._jobs[rental_id]
            if not finished.cancelled() and finished.exception() is not None:
                log.error("rental %s: a transfer failed", rental_id, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    def run_job(
        self, rental_id: str, info: TransferInfo, coro: Callable[[], Awaitable[Any]]
    ) -> asyncio.Task[Any]:
        """Run another kind of job in the rental's one slot (the working folder's push)."""
        return self._register(rental_id, info, coro())

    async def _cancel_job(self, rental_id: str) -> None:
        job = self._jobs.get(rental_id)
        if job is None:
            return
        task = job[1]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _failed_save(
    paths: tuple[str, ...], local_dir: str, reason: str, started: float | None, error: str
) -> SaveInfo:
    import time

    now = time.time()
    return SaveInfo(
        reason=reason,
        paths=paths,
        local_dir=local_dir,
        started_at=started or now,
        finished_at=now,
        error=error,
        summary=f"Could not save {', '.join(paths)}: {error}",
    )


async def _finish_quietly(reporter: Reporter, state: str, *, error: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.shield(reporter.finish(state, error=error))


def _size_json(size: PathSize) -> dict[str, Any]:
    return {"path": size.path, "exists": size.exists, "bytes": size.bytes}


def _size_sentence(sizes: list[PathSize], total: int | None) -> str:
    """``~/work (412 MB)`` / ``~/work (412 MB) and ~/outputs (not on the pod)``."""
    parts = []
    for size in sizes:
        if not size.exists:
            parts.append(f"{size.path} (not on the pod)")
        elif size.bytes is None:
            parts.append(f"{size.path} (size unknown)")
        else:
            parts.append(f"{size.path} ({size_text(size.bytes)})")
    return " and ".join(parts) if len(parts) <= 2 else ", ".join(parts)
