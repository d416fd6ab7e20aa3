"""The worker: the per-second heartbeat that meters money, and the provider poll that boots
pods and finishes stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .clock import SandboxClock
from .faults import FaultState
from .provider import Provider
from .rentals import Rentals
from .store import RentalRow, Store

logger = logging.getLogger(__name__)

CLOCK_META_KEY = "clock_high_water"


class Worker:
    """One pass every `sleep` real seconds; passes never overlap (manual ticks wait). Every
    pass meters; the provider is polled when `poll_interval` sandbox seconds have passed."""

    def __init__(
        self,
        store: Store,
        clock: SandboxClock,
        rentals: Rentals,
        provider: Provider,
        faults: FaultState,
        *,
        sleep: float,
        poll_interval: float,
    ) -> None:
        self._store = store
        self._clock = clock
        self._rentals = rentals
        self._provider = provider
        self._faults = faults
        self._sleep = sleep
        self._poll_interval = poll_interval
        self._last_poll: float | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sandbox-worker")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once(poll=None)
            except Exception:
                # A bad pass must not end the worker; the next one retries.
                logger.exception("worker pass failed")
            await asyncio.sleep(self._sleep)

    async def run_once(self, *, poll: bool | None = True) -> None:
        """Meter; poll the provider when asked (True), or when it is due (None)."""
        async with self._lock:
            now = self._clock.now()
            if poll is None:
                frozen = self._clock.time_scale <= 0
                poll = (
                    frozen
                    or self._last_poll is None
                    or now - self._last_poll >= self._poll_interval
                )
            await self._rentals.meter()
            if poll:
                self._last_poll = now
                await self._boot_due()
                await self._finish_stops()
            async with self._store.transaction() as tx:
                # Persisted so a restart never moves the clock backwards past rentals.
                tx.set_meta(CLOCK_META_KEY, f"{self._clock.now():.6f}")

    async def _boot_due(self) -> None:
        due = self._store.read.rentals_in(["provisioning"], ready_by=self._clock.now())
        for rental in due:
            try:
                await self._boot(rental)
            except Exception:
                # One broken rental must not hold up the others.
                logger.exception("rental %s: boot step failed", rental.id)

    async def _boot(self, rental: RentalRow) -> None:
        if self._faults.current.neverReady:
            return
        pod = self._provider.pod(rental.id)
        if pod is None:
            error = self._provider.boot_failure(rental)
            if error is not None:
                await self._rentals.fail(rental.id, error, only_if="provisioning")
                return
            try:
                pod = await self._provider.start_pod(rental)
            except (OSError, ValueError) as exc:
                logger.warning("rental %s: pod did not start: %s", rental.id, exc)
                await self._rentals.fail(
                    rental.id,
                    f"provider: host {rental.provider_host} did not boot "
                    f"({getattr(exc, 'strerror', None) or exc})",
                    only_if="provisioning",
                )
                return
        # Running only once the pod's SSH daemon answers, as the sheet says.
        if not await self._provider.is_ready(pod):
            return
        faults = self._faults.current
        host = pod.host if faults.hostileHost is None else faults.hostileHost
        port = pod.port if faults.hostilePort is None else faults.hostilePort
        if not await self._rentals.mark_running(rental.id, host, port, pod.port):
            # Stopped, failed or forgotten while booting: nobody will use this pod.
            await self._provider.destroy(rental.id)

    async def _finish_stops(self) -> None:
        for rental in self._store.read.rentals_in(["stopping"]):
            try:
                # Waits for the terminate the stop sent (the pod gone, its disk deleted).
                await self._provider.destroy(rental.id)
                await self._rentals.finish_stopping(rental.id)
            except Exception:
                logger.exception("rental %s: stop step failed", rental.id)

    async def restore_pods(self) -> None:
        """After a restart: running rentals get their pods back, same port, same disk."""
        for rental in self._store.read.rentals_in(["running"]):
            try:
                await self._provider.start_pod(rental, port=rental.pod_port or 0)
            except (OSError, ValueError) as exc:
                logger.warning("rental %s: pod not restored: %s", rental.id, exc)
                await self._rentals.fail(
                    rental.id,
                    f"provider: host {rental.provider_host} lost its pod when the sandbox "
                    "restarted",
                )
