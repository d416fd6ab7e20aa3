"""Saving ahead of the stops gpuoutlet makes itself, and starting the working folders' pushes.

gpuoutlet stops a rental at its ``autoStopAfterHours``, and every pod when the wallet reaches
$0; either destroys the pod's disk, and nothing asks us first. So the guard saves a rental
``auto_stop_save_minutes`` before its auto-stop, and every running rental once the wallet will
reach $0 within ``wallet_save_minutes`` at the current burn.

It adds no polling per rental: it wakes on the service's own changes (the watchers' polls) or
every ``save_check_interval`` seconds, and reads only what the service has. The wallet is the
one account-wide read: the shared balance (one answer for every viewer), at most every
``wallet_check_interval`` seconds (every minute once $0 is near), and projected in between
from the burn, since gpuoutlet charges every running second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from ..api import GpuOutletError
from ..service.record import RentalRecord
from ..service.work import WorkInfo
from .errors import WorkError
from .workdir import start_workdir

if TYPE_CHECKING:
    from ..service import RentalService
    from .saver import Saver

log = logging.getLogger(__name__)

#: Seconds between two looks at the service's version (a change wakes the guard this soon).
WAKE_SECONDS = 0.25
#: Seconds between two balance reads once $0 is less than twice the save horizon away.
NEAR_READ_INTERVAL = 60.0


class Guard:
    """The look ahead of gpuoutlet's own stops (see the module)."""

    def __init__(self, saver: Saver) -> None:
        self._saver = saver
        self._task: asyncio.Task[None] | None = None
        #: The last balance read: its total in cents and when (monotonic seconds).
        self._total_cents: int | None = None
        self._read_at = -float("inf")
        #: Minutes the wallet lasted at the last look (None: nothing burns, or unknown).
        self.minutes_left: float | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gpuoutlet-save-guard")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        service = self._saver.service
        interval = self._saver.options.save_check_interval
        while True:
            try:
                await self.look()
            except Exception:
                # One bad look must not end the saves ahead of gpuoutlet's stops for good.
                log.exception("gpuoutlet: the look ahead of gpuoutlet's stops failed")
            await self._next_look(service, interval)

    @staticmethod
    async def _next_look(service: RentalService, interval: float) -> None:
        """Until the service changed (a watcher's poll, a create, a stop) or ``interval`` passed.

        It looks at the service's version every ``WAKE_SECONDS`` rather than waiting on the
        service's change condition: this task is cancelled at every shutdown, and on Python
        3.11 a waiter cancelled inside ``asyncio.wait_for(Condition.wait_for(...))`` can hang
        (the condition's lock is never handed back), which kept the Jupyter server from
        stopping. Comparing two integers costs nothing and makes no request.
        """
        since = service.version
        deadline = time.monotonic() + interval
        # An Event would need the service to set it: the version is what the service has.
        while service.version == since and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(min(WAKE_SECONDS, max(0.0, deadline - time.monotonic())))

    def _reachable(self, record: RentalRecord) -> bool:
        return (
            record.watched
            and record.rental.status == "running"
            and record.ssh is not None
            and bool(record.ssh.alias)
        )

    async def look(self) -> None:
        """One look at every running rental: due pushes and saves are started (as jobs)."""
        saver = self._saver
        options = saver.options
        now = time.time()
        running = [r for r in saver.work.records() if self._reachable(r)]
        for record in running:
            workdir = record.work.workdir
            if workdir is not None and workdir.state == "pending":
                if saver.busy(record.id) is None:
                    await self._start(record, "workdir")
                continue  # its kernel waits for it; nothing else to save there yet
            stop_at = record.work.auto_stop_at(record.rental)
            if (
                stop_at is not None
                and "auto_stop" not in record.work.vendor_saves
                and now >= stop_at - options.auto_stop_save_minutes * 60
            ):
                await self._start(record, "auto_stop")
        await self._look_at_wallet(running)

    async def _look_at_wallet(self, running: list[RentalRecord]) -> None:
        horizon = self._saver.options.wallet_save_minutes
        minutes = await self._wallet_minutes(bool(running))
        self.minutes_left = minutes
        if minutes is None:
            return
        if minutes <= horizon:
            for record in running:
                workdir = record.work.workdir
                if "wallet" not in record.work.vendor_saves and not (
                    workdir is not None and workdir.holds_kernel
                ):
                    await self._start(record, "wallet")
        elif minutes > 2 * horizon:
            # Topped up since: a later fall towards $0 saves again.
            for record in running:
                if "wallet" in record.work.vendor_saves:
                    await self._saver.work.change(record.id, _rearm_wallet)

    async def _wallet_minutes(self, needed: bool) -> float | None:
        """Minutes until the wallet reaches $0 at the current burn (None: nothing burns)."""
        service = self._saver.service
        burn = service.spending().burn_cents_per_hour
        if not needed or burn <= 0:
            return None
        age = time.monotonic() - self._read_at
        near = self.minutes_left is not None and self.minutes_left <= 2 * (
            self._saver.options.wallet_save_minutes
        )
        if (
            self._total_cents is None
            or age >= self._saver.options.wallet_check_interval
            or (near and age >= NEAR_READ_INTERVAL)
        ):
            try:
                balance = await service.balance()
            except GpuOutletError as exc:
                log.info("gpuoutlet: could not read the balance to look ahead: %s", exc)
            else:
                # The shared balance may be older than this read (cached, or held while the
                # request budget is tight): project from when it was fetched.
                fetched = min(time.monotonic(), service.upstream.balance_fetched_at())
                self._total_cents, self._read_at = balance.total_cents, fetched
                age = time.monotonic() - fetched
        if self._total_cents is None:
            return None
        projected = self._total_cents - burn * age / 3600
        return max(0.0, projected) / burn * 60

    async def _start(self, record: RentalRecord, what: str) -> None:
        saver = self._saver
        if saver.busy(record.id) is not None:
            return  # one transfer at a time: the next look starts it
        try:
            if what == "workdir":
                await start_workdir(saver, record)
            else:
                log.warning(
                    "rental %s: saving %s %s",
                    record.id,
                    ", ".join(record.work.paths),
                    "ahead of its auto-stop"
                    if what == "auto_stop"
                    else f"ahead of the wallet reaching $0 (about {self.minutes_left or 0:.0f} "
                    "min left at the current burn)",
                )
                await saver.start_save_job(record, what)
        except WorkError as exc:
            log.info("rental %s: %s", record.id, exc)


def _rearm_wallet(work: WorkInfo) -> None:
    work.vendor_saves.pop("wallet", None)
