"""Watching: one poller per rental that may cost money (however many viewers), and the periodic
reconcile with the API's list, which adopts rentals made elsewhere and notices vanished ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..api import GpuOutletError, NotFoundError, Rental
from .health import ApiHealth
from .options import ServiceOptions
from .record import RentalRecord
from .tracker import Tracker
from .upstream import Upstream

log = logging.getLogger(__name__)

#: Takes the API's latest word on a rental (``polled``: from a watcher's poll).
Apply = Callable[[RentalRecord, Rental, bool], Awaitable[None]]
#: Marks a rental the API no longer reports.
MarkGone = Callable[[RentalRecord], Awaitable[None]]


class Watcher:
    """Polls each watched rental until it is final or gone, and reconciles with the list.

    What a poll brings is handed to ``apply``; the API's 404 to ``mark_gone``. A failed poll
    is shown on the rental and backed off; the rental is never dropped for it.
    """

    def __init__(
        self,
        tracker: Tracker,
        upstream: Upstream,
        options: ServiceOptions,
        *,
        apply: Apply,
        mark_gone: MarkGone,
        health: ApiHealth | None = None,
    ) -> None:
        self._tracker = tracker
        self._upstream = upstream
        self._options = options
        self._apply = apply
        self._mark_gone = mark_gone
        #: Told of every failed poll and list, so viewers can say why what they show is old.
        self._health = health or ApiHealth()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._reconciler: asyncio.Task[None] | None = None
        self._running = False

    # Lifecycle.

    def open(self) -> None:
        """From now on, every watched rental gets a poller."""
        self._running = True

    def start_reconciling(self) -> None:
        """Reconcile every ``reconcile_interval`` seconds (0: never after the start)."""
        if self._options.reconcile_interval > 0 and self._reconciler is None:
            self._reconciler = asyncio.create_task(self._reconcile_forever())

    @property
    def reconciling(self) -> bool:
        """Whether the periodic reconcile runs."""
        return self._reconciler is not None and not self._reconciler.done()

    async def close(self) -> None:
        """End every poller and the reconcile (the rentals go on upstream)."""
        self._running = False
        tasks = list(self._tasks.values())
        if self._reconciler is not None:
            tasks.append(self._reconciler)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._reconciler = None

    # Pollers.

    def ensure(self, rental_id: str) -> None:
        """A poller for the rental, if it is watched and has none running."""
        record = self._tracker.get(rental_id)
        if record is None or not record.watched or not self._running:
            return
        task = self._tasks.get(rental_id)
        if task is None or task.done():
            self._wake.setdefault(rental_id, asyncio.Event())
            self._tasks[rental_id] = asyncio.create_task(
                self._watch(rental_id), name=f"gpuoutlet-watch-{rental_id}"
            )

    def poke(self, rental_id: str) -> None:
        """Poll the rental now rather than at its next interval (after a stop, say)."""
        event = self._wake.get(rental_id)
        if event is not None:
            event.set()

    def watching(self) -> list[str]:
        """Ids of the rentals that have a live poller."""
        return [
            rid
            for rid, task in self._tasks.items()
            if not task.done() and self._tracker[rid].watched
        ]

    def _delay(self, record: RentalRecord, failures: int, retry_after: float | None) -> float:
        o = self._options
        status = record.rental.status
        if status == "provisioning":
            base = o.poll_interval if record.polls < o.max_polls else o.slow_poll_interval
        elif status == "running":
            base = o.running_poll_interval
        else:
            base = o.poll_interval
        if failures:
            base = min(o.backoff_max, max(base, o.poll_interval * 2**failures))
        if retry_after is not None:
            base = max(base, retry_after)
        return base

    async def _watch(self, rental_id: str) -> None:
        """The one poller of one rental: runs until the rental is final or gone."""
        failures = 0
        retry_after: float | None = None
        wake = self._wake[rental_id]
        while True:
            record = self._tracker[rental_id]
            if not record.watched:
                return
            delay = self._delay(record, failures, retry_after)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)
            wake.clear()
            # It may have been stopped, failed or forgotten while this watcher slept.
            if not self._tracker[rental_id].watched:
                return
            try:
                try:
                    rental = await self._upstream.poll(rental_id)
                except NotFoundError:
                    await self._mark_gone(record)
                    return
                except GpuOutletError as exc:
                    # Network, 5xx, 429, a garbled body, an expired sid: shown, backed off,
                    # retried. The rental is never dropped for it: it may be costing money.
                    failures += 1
                    retry_after = getattr(exc, "retry_after", None)
                    await self._poll_failed(record, exc)
                    continue
                failures, retry_after = 0, None
                await self._apply(record, rental, True)
            except Exception:
                # A bug or a failing disk below (acting on the poll, saving the state): the
                # watcher is all that follows a rental that may cost money, so it never ends
                # here. Logged, backed off, tried again.
                failures += 1
                log.exception("rental %s: the watcher hit an unexpected error; going on", rental_id)

    async def _poll_failed(self, record: RentalRecord, exc: GpuOutletError) -> None:
        self._health.failed(str(exc))
        async with self._tracker.lock(record.id):
            record.polls += 1
            record.upstream_error = str(exc)
            await self._tracker.bump(record, persist=False)
        log.info("rental %s: poll failed (%s), will retry", record.id, type(exc).__name__)

    # The API's list.

    async def reconcile(self) -> list[Rental] | None:
        """Match the tracked rentals with the API's list: adopt unknown ones, mark vanished ones.

        Returns the list, or None when the API did not give one.
        """
        try:
            listed = await self._upstream.rentals()
        except GpuOutletError as exc:
            log.warning("could not list rentals to reconcile: %s", exc)
            self._health.failed(str(exc))
            return None
        self._health.ok()
        seen = set()
        for rental in listed:
            seen.add(rental.id)
            record = self._tracker.get(rental.id)
            if record is None:
                if rental.is_final:
                    continue
                record = self._tracker.add(rental, created_here=False)
            try:
                await self._apply(record, rental, False)
            except Exception:
                # One rental that cannot be acted on must not keep the others from the list.
                log.exception("rental %s: could not take the API's list entry", rental.id)
            self.ensure(rental.id)
        for record in self._tracker.all():
            if record.id not in seen and record.watched:
                try:
                    await self._mark_gone(record)
                except Exception:
                    log.exception("rental %s: could not mark it gone", record.id)
        return listed

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._options.reconcile_interval)
            try:
                await self.reconcile()
            except Exception:
                # It finds rentals made elsewhere: one bad round must not end that for good.
                log.exception("gpuoutlet: the reconcile with the API's list failed; going on")
