"""Watching the rentals that may cost money, in batches, and the reconcile with the API's list.

Polls do not grow with the number of rentals (gpuoutlet allows 100 requests a minute for the
whole account, sheet 1.8). The watched rentals are polled by status, one loop each:

- provisioning: every ``poll_interval`` (2 s, as the vendor asks; ``slow_poll_interval`` once
  all of them are slow), one ``GET /v1/rentals?status=provisioning`` for them all (one GET by id
  when only one provisions);
- stopping: the same, every ``poll_interval``, until they are stopped;
- running: one ``GET /v1/rentals?status=running`` every ``running_poll_interval`` (a GET by id
  for one); when the reconcile is due, the account's whole list instead: one call serves both;
- a status this version does not know: one GET each, every ``poll_interval``.

A rental missing from its status's list has moved on: where to is found in the same round (one
GET each when few, else the account's whole list), so a rental that flips to running is seen
within one 2 s poll. List items lack ``provider`` and ``error`` (sheet 2.2): a rental listed as
failed costs one GET, for its error. Rentals a list shows that are not tracked yet (made
elsewhere) are taken in, as the reconcile does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence

from ..api import GpuOutletError, NotFoundError, Rental
from .budget import Priority
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

#: The loops, by the status they poll ("other": a status this version does not know).
LISTED = ("provisioning", "stopping", "running")
RUNNING = "running"
OTHER = "other"
#: Rentals missing from their list up to this many are looked up one GET each; more, with the
#: account's whole list.
FEW = 3
_PRIORITIES = {RUNNING: Priority.RUNNING}


def group_of(record: RentalRecord) -> str | None:
    """The loop that polls the record (None: not watched)."""
    if not record.watched:
        return None
    status = record.rental.status
    return status if status in LISTED else OTHER


class Watcher:
    """Polls the watched rentals by status until each is final or gone, and reconciles.

    What a poll brings is handed to ``apply``; the API's 404 (or a rental vanished from its
    list) to ``mark_gone``. A failed poll is shown on its rentals and backed off; a rental is
    never dropped for it.
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
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._poked: set[str] = set()
        self._running = False
        self._periodic = False
        self._last_reconcile = -math.inf
        self._last_refresh = -math.inf

    # Lifecycle.

    def open(self) -> None:
        """From now on, every watched rental is polled."""
        self._running = True

    def start_reconciling(self) -> None:
        """Reconcile every ``reconcile_interval`` seconds (0: never after the start)."""
        if self._options.reconcile_interval > 0:
            self._periodic = True
            self._start(RUNNING)

    @property
    def reconciling(self) -> bool:
        """Whether the periodic reconcile runs."""
        task = self._loops.get(RUNNING)
        return self._periodic and task is not None and not task.done()

    async def close(self) -> None:
        """End every loop (the rentals go on upstream)."""
        self._running = False
        tasks = list(self._loops.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()

    # Which rentals are polled.

    def ensure(self, rental_id: str) -> None:
        """The rental is polled by the loop of its status (started if it is not running)."""
        record = self._tracker.get(rental_id)
        group = group_of(record) if record is not None else None
        if group is not None:
            self._start(group)

    def poke(self, rental_id: str) -> None:
        """Poll the rental's status now rather than at the next interval (after a stop, say)."""
        record = self._tracker.get(rental_id)
        group = group_of(record) if record is not None else None
        if group is not None and group in self._wake:
            self._poked.add(group)
            self._wake[group].set()

    def watching(self) -> list[str]:
        """Ids of the rentals a live loop polls."""
        return [
            record.id
            for record in self._tracker.watched()
            if (task := self._loops.get(group_of(record) or "")) is not None and not task.done()
        ]

    def _start(self, group: str) -> None:
        if not self._running:
            return
        task = self._loops.get(group)
        if task is None or task.done():
            self._wake.setdefault(group, asyncio.Event())
            loop = self._account() if group == RUNNING else self._statuses(group)
            self._loops[group] = asyncio.create_task(loop, name=f"gpuoutlet-watch-{group}")
        elif group == RUNNING:
            # Its first running rental may have come: it works out again when to look.
            self._wake[group].set()

    def _members(self, group: str) -> list[RentalRecord]:
        return [r for r in self._tracker.watched() if group_of(r) == group]

    # The loops.

    async def _sleep(self, group: str, seconds: float) -> None:
        """``seconds``, or until the group is poked."""
        wake = self._wake[group]
        if not wake.is_set():
            # asyncio.wait, not wait_for: wait_for (3.11) may swallow a cancel that comes as
            # the event is set, and ``close`` would then wait for a loop that goes on.
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait({woken}, timeout=max(0.0, seconds))
            finally:
                woken.cancel()
        wake.clear()

    def _backoff(self, base: float, failures: int, retry_after: float | None) -> float:
        o = self._options
        if failures:
            base = min(o.backoff_max, max(base, o.poll_interval * 2**failures))
        return base if retry_after is None else max(base, retry_after)

    async def _statuses(self, group: str) -> None:
        """The loop of the provisioning, the stopping (or the unknown-status) rentals."""
        o = self._options
        failures, retry_after = 0, None
        while self._running:
            members = self._members(group)
            if not members:
                return
            base = o.poll_interval
            if group == "provisioning" and all(r.polls >= o.max_polls for r in members):
                base = o.slow_poll_interval
            await self._sleep(group, self._backoff(base, failures, retry_after))
            members = self._members(group)
            if not members:
                return
            self._poked.discard(group)
            ok, retry_after = await self._guarded(group, members, self._round(group, members))
            failures = 0 if ok else failures + 1

    async def _account(self) -> None:
        """The loop of the running rentals, and the periodic reconcile: when the reconcile is
        due before the next refresh, the account's whole list serves both."""
        o = self._options
        loop = asyncio.get_running_loop()
        not_before = -math.inf
        failures, retry_after = 0, None
        self._last_refresh = loop.time()
        while self._running:
            members = self._members(RUNNING)
            if not members and not self._periodic:
                return
            reconcile_at = self._last_reconcile + o.reconcile_interval
            due = min(
                reconcile_at if self._periodic else math.inf,
                self._last_refresh + o.running_poll_interval if members else math.inf,
            )
            due = max(due, not_before)
            if RUNNING not in self._poked and loop.time() < due:
                await self._sleep(RUNNING, due - loop.time())
                continue  # woken early (a rental started running): work out when again
            self._poked.discard(RUNNING)
            ahead = o.running_poll_interval if members else 0.0
            if self._periodic and loop.time() + ahead >= reconcile_at:
                work: Awaitable[object] = self._reconcile()
            elif members:
                work = self._round(RUNNING, members)
            else:
                continue
            ok, retry_after = await self._guarded(RUNNING, members, work)
            failures = 0 if ok else failures + 1
            self._last_refresh = loop.time()
            not_before = loop.time() + self._backoff(0.0, failures, retry_after)

    async def _guarded(
        self, group: str, members: Sequence[RentalRecord], work: Awaitable[object]
    ) -> tuple[bool, float | None]:
        """Run one round: (whether it went well, the API's Retry-After). A failure is shown on
        its rentals and backed off; a loop is all that follows rentals that may cost money, so
        nothing ends it."""
        try:
            await work
        except GpuOutletError as exc:
            # Network, 5xx, 429, a garbled body, an expired sid: shown, backed off, retried.
            self._health.failed(str(exc))
            for record in members:
                if record.watched:
                    await self._poll_failed(record, exc)
            log.info("%s rentals: poll failed (%s), will retry", group, type(exc).__name__)
            return False, getattr(exc, "retry_after", None)
        except Exception:
            # A bug or a failing disk below (acting on a poll, saving the state): logged,
            # backed off, tried again.
            log.exception("%s rentals: the watcher hit an unexpected error; going on", group)
            return False, None
        return True, None

    async def _poll_failed(self, record: RentalRecord, exc: GpuOutletError) -> None:
        async with self._tracker.lock(record.id):
            record.polls += 1
            if record.upstream_error == str(exc):
                # Shown already: the same failure again is no news for the viewers (with the
                # budget spreading the polls, it would wake every long-poll each time).
                return
            record.upstream_error = str(exc)
            await self._tracker.bump(record, persist=False)

    # One round.

    async def _round(self, group: str, members: Sequence[RentalRecord]) -> None:
        """One look at every rental of the group: one request for them all."""
        priority = _PRIORITIES.get(group, Priority.PROVISIONING)
        if len(members) == 1 or group == OTHER:
            for record in members:
                await self._poll_one(record, priority)
            return
        listed = await self._upstream.listed(group, priority)
        await self._take_all(listed, members, priority)

    async def _poll_one(self, record: RentalRecord, priority: Priority) -> None:
        try:
            rental = await self._upstream.poll(record.id, priority)
        except NotFoundError:
            await self._mark_gone(record)
            return
        await self._take(record, rental, polled=True, priority=priority)

    async def _take_all(
        self, listed: list[Rental], members: Sequence[RentalRecord], priority: Priority
    ) -> None:
        """A list's word on the group's rentals; where the missing ones went; the rentals it
        shows that are not tracked yet, taken in. Acting on one rental failing does not keep
        the others from the list (the first such failure is raised at the end)."""
        listed_by_id = {rental.id: rental for rental in listed}
        member_ids = {record.id for record in members}
        missing: list[RentalRecord] = []
        problems: list[Exception] = []
        for record in members:
            rental = listed_by_id.get(record.id)
            if rental is None:
                missing.append(record)
                continue
            await _collect(problems, self._take(record, rental, polled=True, priority=priority))
        for rental in listed:
            if rental.id not in member_ids:
                await _collect(problems, self._seen(rental, priority))
        await self._find(missing, priority)
        if problems:
            raise problems[0]

    async def _find(self, missing: Sequence[RentalRecord], priority: Priority) -> None:
        """Where rentals missing from their status's list went."""
        if not missing:
            return
        if len(missing) <= FEW:
            for record in missing:
                await self._poll_one(record, priority)
            return
        everything = {rental.id: rental for rental in await self._upstream.rentals(priority)}
        for record in missing:
            rental = everything.get(record.id)
            if rental is None:
                await self._mark_gone(record)
            else:
                await self._take(record, rental, polled=True, priority=priority)

    async def _seen(self, rental: Rental, priority: Priority) -> None:
        """A list shows a rental outside the round: tracked, its news is taken; untracked and
        not final, it is taken in (made elsewhere)."""
        record = self._tracker.get(rental.id)
        if record is None:
            if rental.is_final:
                return
            record = self._tracker.add(rental, created_here=False)
        await self._take(record, rental, polled=False, priority=priority)

    async def _take(
        self, record: RentalRecord, rental: Rental, *, polled: bool, priority: Priority
    ) -> None:
        """Hand the API's word to ``apply``; a listed failure is completed with its error."""
        if rental.status == "failed" and "error" not in rental.model_fields_set:
            try:
                rental = await self._upstream.poll(rental.id, priority)
            except NotFoundError:
                await self._mark_gone(record)
                return
        await self._apply(record, rental, polled)
        self.ensure(record.id)

    # The API's whole list.

    async def reconcile(self) -> list[Rental] | None:
        """Match the tracked rentals with the API's list: adopt unknown ones, mark vanished ones.

        Returns the list, or None when the API did not give one.
        """
        try:
            return await self._reconcile()
        except GpuOutletError as exc:
            log.warning("could not list rentals to reconcile: %s", exc)
            self._health.failed(str(exc))
            return None

    async def _reconcile(self) -> list[Rental]:
        listed = await self._upstream.rentals()
        self._last_reconcile = asyncio.get_running_loop().time()
        self._health.ok()
        seen = set()
        for rental in listed:
            seen.add(rental.id)
            try:
                await self._seen(rental, Priority.BACKGROUND)
            except Exception:
                # One rental that cannot be acted on must not keep the others from the list.
                log.exception("rental %s: could not take the API's list entry", rental.id)
        for record in self._tracker.all():
            if record.id not in seen and record.watched:
                try:
                    await self._mark_gone(record)
                except Exception:
                    log.exception("rental %s: could not mark it gone", record.id)
        return listed


async def _collect(problems: list[Exception], work: Awaitable[None]) -> None:
    """Run ``work``; a failure other than the API's is noted in ``problems`` and the round goes
    on (the API's own failures end the round: the next ones would fail alike)."""
    try:
        await work
    except GpuOutletError:
        raise
    except Exception as exc:
        log.exception("a rental of a list could not be acted on; going on with the others")
        problems.append(exc)
