"""The vendor's request limits (sheet 1.8): per session, 100 a minute and 1,000 an hour by
default, in fixed windows that start at a window's first request, on real time.

Every answer says where the caller stands (`X-RateLimit-Limit/Remaining/Reset`); the headers
describe whichever window has less left, so a client that slows down as `Remaining` nears 0
respects both. Requests without a session are not counted (INFERRED: the sheet speaks only of
sessions; the sign-in endpoints have caps of their own)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MINUTE = 60
HOUR = 3600
#: Buckets idle for this long are forgotten (both windows have long ended).
_FORGET_AFTER = 2 * HOUR


@dataclass
class _Window:
    start: float = 0.0
    count: int = 0


@dataclass
class _Bucket:
    minute: _Window = field(default_factory=_Window)
    hour: _Window = field(default_factory=_Window)
    last: float = 0.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    #: Unix time (whole seconds, rounded up) when the reported window ends.
    reset: int
    #: Seconds to wait (only when refused).
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(
        self, per_minute: int, per_hour: int, *, now: Callable[[], float] = time.time
    ) -> None:
        self._now = now
        self._buckets: dict[str, _Bucket] = {}
        self.per_minute = per_minute
        self.per_hour = per_hour
        #: How many requests were refused (a test counts them: no normal flow should see one).
        self.refused = 0
        self._last_sweep = now()

    def configure(self, per_minute: int, per_hour: int) -> None:
        """New limits; every window starts over."""
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._buckets.clear()
        self.refused = 0

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0 or self.per_hour > 0

    def hit(self, key: str) -> Verdict | None:
        """Count one request of `key`; None when no limit is set."""
        if not self.enabled:
            return None
        now = self._now()
        self._sweep(now)
        bucket = self._buckets.setdefault(key, _Bucket())
        bucket.last = now
        windows = [
            (limit, seconds, window)
            for limit, seconds, window in (
                (self.per_minute, MINUTE, bucket.minute),
                (self.per_hour, HOUR, bucket.hour),
            )
            if limit > 0
        ]
        for _limit, seconds, window in windows:
            if window.count == 0 or now >= window.start + seconds:
                window.start, window.count = now, 0
        full = [(limit, seconds, w) for limit, seconds, w in windows if w.count >= limit]
        if full:
            self.refused += 1
            limit, seconds, window = max(full, key=lambda x: x[2].start + x[1])
            end = window.start + seconds
            return Verdict(False, limit, 0, math.ceil(end), max(1, math.ceil(end - now)))
        for _limit, _seconds, window in windows:
            window.count += 1
        # Report the window with the least left (the minute's on a tie).
        limit, seconds, window = min(windows, key=lambda x: x[0] - x[2].count)
        return Verdict(True, limit, limit - window.count, math.ceil(window.start + seconds))

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < MINUTE:
            return
        self._last_sweep = now
        for key in [k for k, b in self._buckets.items() if now - b.last > _FORGET_AFTER]:
            del self._buckets[key]
