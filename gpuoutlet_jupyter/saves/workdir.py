"""A rental's working folder made ready before its kernel is offered: pushed, then set up.

``%gpu_rent … --sync-workdir --setup "pip install -r requirements.txt"``: once the rental runs,
the notebook's folder is pushed to the remote working folder, then the setup command runs
there once (its output streamed onto the rental, for the progress widget and the sidebar), and
only then is its kernel written (as SkyPilot's ``workdir:`` and ``setup:``). A failed push or
setup is said on the rental; the kernel is offered all the same, for the user to look into it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..remote import RemoteError, SyncError
from ..remote.sync import shell_path
from ..service.record import RentalRecord
from ..service.work import MAX_OUTPUT_LINES, WorkdirInfo, WorkInfo
from .transfer import PUBLISH_INTERVAL, Reporter, new_transfer

if TYPE_CHECKING:
    from .saver import Saver

log = logging.getLogger(__name__)


async def start_workdir(saver: Saver, record: RentalRecord) -> None:
    """Push and set up the rental's working folder, in its transfer slot."""
    workdir = record.work.workdir
    assert workdir is not None
    target = saver.target(record)
    info = new_transfer("workdir", workdir.local_dir or "", (workdir.remote_dir,))
    reporter = Reporter(saver.work, record.id, info)

    async def set_state(**changes: object) -> None:
        def change(work: WorkInfo) -> None:
            if work.workdir is not None:
                work.workdir = replace(work.workdir, **changes)  # type: ignore[arg-type]

        await saver.work.change(record.id, change)

    async def run() -> None:
        try:
            remote = await saver.remotes.rental(target)
            if workdir.local_dir:
                await reporter.begin()
                local = saver.local_path(workdir.local_dir)
                result = await remote.sync_up(local, workdir.remote_dir, progress=reporter)
                reporter.folder_done(result)
                await reporter.finish("done", summary=result.summary())
            else:
                where = shell_path(workdir.remote_dir)
                await remote.connection.run(f"mkdir -p -- {where}", timeout=60, check=True)
            if workdir.setup:
                await set_state(state="setup")
                status = await _run_setup(saver, record.id, remote.connection, workdir)
                if status != 0:
                    await set_state(
                        state="failed",
                        exit_status=status,
                        error=f"The setup command exited with status {status}: its output is "
                        "above. The kernel is offered all the same; fix it there, or stop the "
                        "rental.",
                    )
                    return
                await set_state(exit_status=0)
            await set_state(state="done")
        except asyncio.CancelledError:
            await asyncio.shield(set_state(state="failed", error="Cancelled before it finished."))
            raise
        except (SyncError, RemoteError, OSError) as exc:
            if reporter.info.state == "running" and workdir.local_dir:
                await reporter.finish("failed", error=str(exc))
            log.warning("rental %s: the working folder could not be made ready: %s", record.id, exc)
            await set_state(
                state="failed",
                error=f"The working folder could not be made ready: {exc}. The kernel is "
                "offered all the same.",
            )

    saver.run_job(record.id, info, run)
    await set_state(state="syncing")  # before the next look: it is not pending any more


async def _run_setup(saver: Saver, rental_id: str, connection: object, workdir: WorkdirInfo) -> int:
    """Run the setup command in the remote working folder, its output onto the rental."""
    from ..remote import SharedConnection

    assert isinstance(connection, SharedConnection)
    assert workdir.setup is not None
    lines: list[str] = [f"$ {workdir.setup}"]
    loop = asyncio.get_running_loop()
    published = 0.0

    async def publish() -> None:
        shown = tuple(lines[-MAX_OUTPUT_LINES:])

        def change(work: WorkInfo) -> None:
            if work.workdir is not None:
                work.workdir = replace(work.workdir, output=shown)

        await saver.work.change(rental_id, change, persist=False)

    command = f"cd -- {shell_path(workdir.remote_dir)} && {{ {workdir.setup}\n}} 2>&1"
    async with connection.process(command) as proc:
        await publish()
        async for _stream, line in proc.lines():
            lines.append(line)
            if loop.time() - published >= PUBLISH_INTERVAL:
                published = loop.time()
                await publish()
        status = await proc.wait()
    lines.append(f"[exit status {status}]")
    await publish()
    return status
