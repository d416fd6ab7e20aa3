"""The rentals the service tracks: one record each, its lock, its version, and the viewers'
long-polls on those versions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ..api import Rental
from .options import ServiceOptions
from .phase import describe
from .record import RentalRecord

RentalView = dict[str, Any]


class Tracker:
    """Every tracked record by id. ``bump`` publishes a change to the viewers (and persists it
    through ``persist`` when it is more than poll progress); ``version`` grows with each."""

    def __init__(self, options: ServiceOptions, persist: Callable[[], Awaitable[None]]) -> None:
        self._options = options
        self._persist = persist
        self._records: dict[str, RentalRecord] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._version = 0
        # The last version of the service this one replaced (see `continue_after`).
        self._floor = 0
        self._changed = asyncio.Condition()
        # Closed: every long-poll answers at once (the service that held them is going away).
        self._closed = False

    # The records.

    def get(self, rental_id: str) -> RentalRecord | None:
        return self._records.get(rental_id)

    def __getitem__(self, rental_id: str) -> RentalRecord:
        return self._records[rental_id]

    def all(self) -> list[RentalRecord]:
        return list(self._records.values())

    def watched(self) -> list[RentalRecord]:
        """The records of rentals that may cost money (not final, not gone)."""
        return [r for r in self._records.values() if r.watched]

    def add(self, rental: Rental, *, created_here: bool) -> RentalRecord:
        """A record for a rental seen for the first time (not announced until its first bump)."""
        record = RentalRecord(rental=rental, version=0, phase="", created_here=created_here)
        record.idle_warn_minutes = self._options.idle_warning_minutes
        record.decided_here = False  # no owner yet (a create makes this process its owner)
        self._records[rental.id] = record
        return record

    def continue_after(self, version: int) -> None:
        """Number every record restored from now on, and every change, above ``version``: the
        last version of a service this one replaces (a sign-in), so the cursors its viewers hold
        stay valid and each of them sees this service's records as news."""
        self._version = max(self._version, version)
        self._floor = max(self._floor, version)

    def restore(self, record: RentalRecord) -> None:
        """A record as it was saved: consistent, so viewers may see it at once."""
        record.idle_warn_minutes = self._options.idle_warning_minutes
        if self._floor and record.version <= self._floor:
            record.version = self._floor + 1
        record.publish()
        self._records[record.id] = record
        self._version = max(self._version, record.version)

    def lock(self, rental_id: str) -> asyncio.Lock:
        """The lock every change of one record is made under."""
        return self._locks.setdefault(rental_id, asyncio.Lock())

    # What viewers see.

    @property
    def version(self) -> int:
        """Grows on every change of any rental: the list long-poll's cursor."""
        return self._version

    def views(self) -> list[RentalView]:
        """Every announced rental, newest first."""
        # A record not yet announced (its first update still running) is not listed yet.
        announced = [r for r in self._records.values() if r.announced]
        announced.sort(key=lambda r: (r.rental.started_at, r.id), reverse=True)
        return [record.view() for record in announced]

    async def bump(self, record: RentalRecord, *, persist: bool = True) -> None:
        """Publish a change to the viewers; persist it when it is more than poll progress."""
        record.phase = describe(record, max_polls=self._options.max_polls)
        self._version += 1
        record.version = self._version
        record.publish()
        if persist:
            record.changed = True
            await self._persist()
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Until ``predicate()`` holds after a change, ``timeout`` seconds, or ``close``."""
        async with self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._closed or predicate()), timeout
                )

    async def close(self) -> None:
        """Answer every long-poll now (the viewers then ask the service that replaces this)."""
        self._closed = True
        async with self._changed:
            self._changed.notify_all()


def durable(record: RentalRecord) -> dict[str, Any]:
    """The part of a record worth persisting and announcing: all but poll progress."""
    state = record.to_state()
    for key in ("polls", "version", "phase", "checkedAt"):
        state.pop(key)
    return state
