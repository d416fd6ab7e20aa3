"""One upstream call shared by every concurrent caller, reused for a while: viewers never multiply requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cached(Generic[T]):
    """``get()`` answers from one fetch for ``ttl`` seconds; callers arriving while it runs
    share it. A failed fetch is answered (raised again) for ``error_ttl`` seconds, so viewers
    polling through an outage or an expired session do not each ask upstream. ``fresh()``
    fetches now (for a decision that moves money). ``hold``: see ``__init__``."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        ttl: float,
        *,
        error_ttl: float = 10.0,
        hold: Callable[[], bool] | None = None,
        refresh: Callable[[], Awaitable[T]] | None = None,
    ) -> None:
        self._fetch = fetch
        self.ttl = ttl
        # While it says so (the request budget is tight), ``get()`` answers an expired value
        # rather than wait, and has ``refresh`` (one that waits its turn as long as it takes;
        # ``fetch`` by default) bring it up to date meanwhile: a viewer sees it a little late.
        self._hold = hold
        self._refresh = refresh or fetch
        self._refreshing: asyncio.Task[T] | None = None
        self.error_ttl = min(error_ttl, ttl)
        self._value: T | None = None
        self._at = -float("inf")
        self._error: BaseException | None = None
        self._error_at = -float("inf")
        self._pending: asyncio.Future[T] | None = None

    def close(self) -> None:
        """Cancel a refresh still waiting for its turn (its service is going away)."""
        if self._refreshing is not None:
            self._refreshing.cancel()

    def invalidate(self) -> None:
        """The next ``get()`` fetches again."""
        self._at = self._error_at = -float("inf")

    @property
    def value(self) -> T | None:
        """The last value fetched, however old (None: never fetched)."""
        return self._value

    @property
    def fetched_at(self) -> float:
        """When the value ``get()`` answers now was fetched (``time.monotonic()`` seconds)."""
        return self._at

    async def get(self) -> T:
        now = time.monotonic()
        if self._error is not None and now - self._error_at < self.error_ttl:
            raise self._error
        if self._value is not None and now - self._at < self.ttl:
            return self._value
        if self._value is not None and self._pending is None and self._hold and self._hold():
            if self._refreshing is None:
                self._refreshing = asyncio.ensure_future(self._refresh())
                self._refreshing.add_done_callback(self._refreshed)
            return self._value
        return await self._shared()

    def _refreshed(self, task: asyncio.Task[T]) -> None:
        """A refresh behind a held ``get()`` landed: its value is the one answered from now on
        (a failure keeps the old one; the next ``get()`` tries again)."""
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled() and task.exception() is None and self._pending is None:
            self._value, self._at = task.result(), time.monotonic()
            self._error = None

    async def fresh(self) -> T:
        self.invalidate()
        return await self._shared()

    async def _shared(self) -> T:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._fetch())
        pending = self._pending
        try:
            value = await asyncio.shield(pending)
        except Exception as exc:
            self._error, self._error_at = exc, time.monotonic()
            raise
        finally:
            if self._pending is pending and pending.done():
                self._pending = None
        self._value, self._at = value, time.monotonic()
        self._error = None
        return value
