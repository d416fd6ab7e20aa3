"""The sandbox clock: wall time at start, plus scaled elapsed time, plus manual advances."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timezone

#: Manual advances are capped so timestamps stay far inside datetime's range.
MAX_ADVANCE_SECONDS = 10 * 365 * 24 * 3600


class SandboxClock:
    """Sandbox time in epoch seconds; `time_scale` sandbox seconds pass per real second."""

    def __init__(
        self,
        time_scale: float,
        *,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_scale < 0 or not math.isfinite(time_scale):
            raise ValueError("time_scale must be a finite number >= 0")
        self.time_scale = time_scale
        self._start = time.time() if start is None else start
        self._monotonic = monotonic
        self._mono_start = monotonic()
        self.advanced_seconds = 0.0

    def now(self) -> float:
        elapsed = (self._monotonic() - self._mono_start) * self.time_scale
        return self._start + elapsed + self.advanced_seconds

    def now_seconds(self) -> int:
        """Whole sandbox seconds: the unit rentals are timestamped and billed in."""
        return math.floor(self.now())

    def advance(self, seconds: float) -> None:
        if seconds < 0 or seconds > MAX_ADVANCE_SECONDS or not math.isfinite(seconds):
            raise ValueError(f"advance by 0..{MAX_ADVANCE_SECONDS} seconds")
        self.advanced_seconds += seconds


def iso_utc(epoch_seconds: float) -> str:
    """`2026-06-07T08:14:22Z`, the seed's timestamp format (whole seconds, UTC)."""
    moment = datetime.fromtimestamp(math.floor(epoch_seconds), tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
