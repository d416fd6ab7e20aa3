"""One upstream call shared by every concurrent caller, reused for a while: viewers never multiply requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cached(Generic[T]):
    """``get()`` answers from one fetch for ``ttl`` seconds; callers arriving while it runs
    share it. ``fresh()`` fetches now (for a decision that moves money)."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._value: T | None = None
        self._at = -float("inf")
        self._pending: asyncio.Future[T] | None = None

    def invalidate(self) -> None:
        """The next ``get()`` fetches again."""
        self._at = -float("inf")

    @property
    def value(self) -> T | None:
        """The last value fetched, however old (None: never fetched)."""
        return self._value

    async def get(self) -> T:
        if self._value is not None and time.monotonic() - self._at < self.ttl:
            return self._value
        return await self._shared()

    async def fresh(self) -> T:
        self.invalidate()
        return await self._shared()

    async def _shared(self) -> T:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._fetch())
        pending = self._pending
        try:
            value = await asyncio.shield(pending)
        finally:
            if self._pending is pending and pending.done():
                self._pending = None
        self._value, self._at = value, time.monotonic()
        return value
