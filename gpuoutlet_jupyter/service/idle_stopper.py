"""Idle auto-stop: looks at the kernels on each rental, warns, then stops the ones nobody uses.

The rule itself (when to warn, when to stop) is ``idle.decide``; this is the part that applies it
to the tracked rentals, with the other servers on the state dir (see owners.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from ..api import GpuOutletError, RentalNotActiveError, RequestValidationError
from .idle import (
    GPU_FIELD,
    NEEDS_IDLE_STOP,
    NEEDS_SERVER,
    NO_KERNELS,
    ActivitySource,
    IdleDecision,
    KernelActivity,
    decide,
    default_idle_minutes,
)
from .options import ServiceOptions
from .owners import combine
from .pods import GpuLook
from .record import RentalRecord
from .state import SharedState
from .tracker import Tracker

log = logging.getLogger(__name__)

#: Stops a rental for being idle (the service's stop, with its before-stop hooks).
StopIdle = Callable[[str], Awaitable[object]]
#: What a rental's GPUs did since the last look, against a utilisation threshold (pods.py).
LookAtGpus = Callable[[RentalRecord, float], Awaitable[GpuLook]]


class IdleStopper:
    """Times each running rental's idle stop from its kernels' activity, and stops it at the end.

    Without an activity source (a kernel renting by itself sees no remote kernels) there is no
    idle stop at all: ``setting`` refuses one.
    """

    def __init__(
        self,
        tracker: Tracker,
        state: SharedState,
        activity: ActivitySource | None,
        options: ServiceOptions,
        *,
        stop: StopIdle,
        sync: Callable[[], Awaitable[None]],
        gpus: LookAtGpus | None = None,
    ) -> None:
        self._tracker = tracker
        self._gpus = gpus
        self._state = state
        self.activity = activity
        self._options = options
        self._stop = stop
        self._sync = sync
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Look every ``idle_check_interval`` seconds (only with an activity source)."""
        if self.activity is not None and self._task is None:
            self._task = asyncio.create_task(self._check_forever(), name="gpuoutlet-idle")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def setting(self, minutes: float | None) -> float | None:
        """The idle stop a create or a keep asks for (None: the default) as minutes or None (off)."""
        if minutes is None:
            return default_idle_minutes(
                self._options.idle_stop_minutes, can_judge=self.activity is not None
            )
        if minutes > 0 and self.activity is None:
            raise RequestValidationError([("idleStopMinutes", NEEDS_SERVER)])
        return minutes or None

    def gpu_setting(self, percent: float | None, minutes: float | None) -> float | None:
        """The GPU threshold a create or a keep asks for (None: the default) with the idle stop
        it gets (``minutes``, None: off): percent or None (GPUs do not count)."""
        if percent is None:
            default = self._options.idle_gpu_util
            return default if default > 0 and minutes and self.activity is not None else None
        if percent > 0 and self.activity is None:
            raise RequestValidationError([(GPU_FIELD, NEEDS_SERVER)])
        if percent > 0 and not minutes:
            raise RequestValidationError([(GPU_FIELD, NEEDS_IDLE_STOP)])
        return percent or None

    async def keep(
        self, record: RentalRecord, minutes: float | None, gpu_util: float | None
    ) -> None:
        """ "Keep it": restart the idle timer; with minutes or a GPU threshold, change them."""
        if not record.watched:
            raise RentalNotActiveError(record.id, "gone" if record.gone else record.rental.status)
        async with self._tracker.lock(record.id):
            if minutes is not None:
                record.idle_stop_minutes = self.setting(minutes)
                if not record.idle_stop_minutes:
                    record.idle_gpu_util = None  # no idle stop: nothing for the GPUs to decide
            if gpu_util is not None:
                record.idle_gpu_util = self.gpu_setting(gpu_util, record.idle_stop_minutes)
            if minutes is not None or gpu_util is not None:
                # Whoever sets the idle stop decides it: this server sees its kernels.
                self._state.claim(record)
            if record.rental.status == "running":
                record.last_active_at = time.time()
            record.idle_warned_at = record.idle_stop_at = None
            self.judge(record, time.time())
            await self._tracker.bump(record)

    async def set_gpu_util(self, record: RentalRecord, percent: float) -> None:
        """A rental just created gets its GPU threshold (saved with its idle stop)."""
        async with self._tracker.lock(record.id):
            record.idle_gpu_util = percent
            self._state.claim(record)
            await self._tracker.bump(record)

    async def check(self) -> None:
        """One look at every running rental with an idle stop: warn, then stop the idle ones.

        Other servers on the state dir count: their settings are read first (the save merges
        them in, and takes over the idle stops of servers that are gone), this server's kernels
        are published for them, and theirs count as activity here.
        """
        await self._sync()
        now = time.time()
        owners = self._state.owners
        timed = [
            r for r in self._tracker.all() if r.idle_stop_minutes and r.watched and r.decided_here
        ]
        if not owners.others_present():
            # Alone on the state dir (the usual case): this server's kernels are all there is.
            if not timed:
                return
            activity = self.activity([r.id for r in timed]) if self.activity is not None else {}
        else:
            # Published for every rental of the state file that may run, this server's or not
            # yet known here (made in another server since this one last reconciled).
            watched = self._state.shared_active | {r.id for r in self._tracker.watched()}
            own = self.activity(sorted(watched)) if self.activity is not None and watched else {}
            try:
                await asyncio.to_thread(owners.publish, own, now)
            except OSError as exc:
                log.warning("gpuoutlet: could not publish the kernels' activity: %s", exc)
            if not timed:
                return
            others = await asyncio.to_thread(owners.others, [r.id for r in timed], now)
            activity = {
                r.id: combine(own.get(r.id, NO_KERNELS), others.get(r.id, NO_KERNELS))
                for r in timed
            }
        gpu_looks = await self._look_at_gpus(timed)
        for record in timed:
            seen = activity.get(record.id)
            gpus = gpu_looks.get(record.id)
            if gpus is not None and gpus.busy_at is not None:
                seen = seen or NO_KERNELS
                last = max(seen.last_activity or gpus.busy_at, gpus.busy_at)
                seen = replace(seen, last_activity=last)
            async with self._tracker.lock(record.id):
                before = shown(record)
                if gpus is not None:
                    record.idle_gpu = (gpus.peak, gpus.problem)
                decision = self.judge(record, now, seen)
                after = shown(record)
                if after != before:
                    # A warning shown or withdrawn is worth keeping; a moved deadline is not.
                    await self._tracker.bump(record, persist=after[0] != before[0])
            if decision is not None and decision.stop_now:
                await self._stop_idle(record)

    async def _look_at_gpus(self, timed: list[RentalRecord]) -> dict[str, GpuLook]:
        """The GPUs count too (a job started over plain ssh keeps the rental alive): every
        rental's looked at together, so that a slow pod does not hold the others back."""
        gpus = self._gpus
        looked = [r for r in timed if r.idle_gpu_util and r.rental.status == "running"]
        if gpus is None or not looked:
            return {}
        found = await asyncio.gather(*(gpus(r, r.idle_gpu_util or 0.0) for r in looked))
        return {r.id: look for r, look in zip(looked, found, strict=True)}

    def judge(
        self, record: RentalRecord, now: float, activity: KernelActivity | None = None
    ) -> IdleDecision | None:
        """Bring the record's idle timer up to date from its kernels' activity (None: look)."""
        if not (
            record.idle_stop_minutes
            and record.watched
            and record.rental.status == "running"
            and record.decided_here
        ):
            record.idle_warned_at = record.idle_stop_at = None
            record.idle_kernels = record.idle_busy = 0
            return None
        if activity is None:
            looked = self.activity([record.id]) if self.activity is not None else {}
            activity = combine(
                looked.get(record.id, NO_KERNELS),
                self._state.owners.others([record.id]).get(record.id, NO_KERNELS),
            )
        decision = decide(
            minutes=record.idle_stop_minutes,
            warn_minutes=self._options.idle_warning_minutes,
            last_active=record.last_active_at if record.last_active_at is not None else now,
            warned_at=record.idle_warned_at,
            activity=activity,
            now=now,
        )
        record.last_active_at = decision.last_active
        record.idle_warned_at = decision.warned_at
        record.idle_stop_at = decision.stop_at
        record.idle_kernels, record.idle_busy = activity.kernels, activity.busy
        return decision

    async def _stop_idle(self, record: RentalRecord) -> None:
        log.warning(
            "rental %s has been idle for %g min (no kernel on it ran anything): stopping it",
            record.id,
            record.idle_stop_minutes,
        )
        record.stop_reason = "idle"
        try:
            await self._stop(record.id)
        except GpuOutletError as exc:
            # Still billed: say so where the user looks, and try again at the next look.
            record.stop_reason = None
            async with self._tracker.lock(record.id):
                record.upstream_error = f"The idle auto-stop could not stop it: {exc}"
                await self._tracker.bump(record, persist=False)
            log.warning("rental %s: the idle auto-stop failed, will retry: %s", record.id, exc)

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self._options.idle_check_interval)
            try:
                await self.check()
            except Exception:
                # One bad look (a kernel manager in flux) must not end idle auto-stop for good.
                log.exception("gpuoutlet: the idle check failed; trying again")


def shown(record: RentalRecord) -> tuple[Any, ...]:
    """What viewers see of the idle timer: the warning, the deadline (to the second), kernels,
    what its GPUs did."""
    stop_at = None if record.idle_stop_at is None else round(record.idle_stop_at)
    return (
        record.idle_warned_at is not None,
        stop_at,
        record.idle_kernels,
        record.idle_busy,
        record.idle_gpu,
    )
