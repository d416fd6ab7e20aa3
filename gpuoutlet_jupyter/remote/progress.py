"""Progress of a transfer (bytes done, total, rate) and a bandwidth throttle for the tar stream."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: Callbacks are called at most this often, plus once at the end.
MIN_INTERVAL = 0.2
#: The rate is measured over about this many seconds.
RATE_WINDOW = 3.0


@dataclass(frozen=True)
class SyncProgress:
    """One progress report of a sync."""

    direction: str  #: ``"up"`` or ``"down"``
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    rate: float  #: bytes per second over the last few seconds
    elapsed: float  #: seconds since the transfer started
    current: str | None = None  #: the file being sent, when known
    final: bool = False  #: the last report of this transfer

    @property
    def fraction(self) -> float:
        return 1.0 if self.bytes_total <= 0 else min(1.0, self.bytes_done / self.bytes_total)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, or ``None`` while the rate is unknown."""
        if self.rate <= 0:
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) / self.rate)


ProgressCallback = Callable[[SyncProgress], None]


class ProgressMeter:
    """Turns byte counts into :class:`SyncProgress` reports, safe to feed from a worker thread.

    Reports go to the callback on the event loop's thread (never the worker's), at most every
    :data:`MIN_INTERVAL` seconds and once more at :meth:`finish`.
    """

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        direction: str,
        bytes_total: int,
        files_total: int,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._callback = callback
        self._direction = direction
        self.bytes_total = bytes_total
        self.files_total = files_total
        self._loop = loop or asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_report = 0.0
        self._samples: deque[tuple[float, int]] = deque()
        self.bytes_done = 0
        self.files_done = 0
        self._current: str | None = None

    def update(
        self,
        *,
        bytes_done: int | None = None,
        add_bytes: int = 0,
        files_done: int | None = None,
        add_files: int = 0,
        current: str | None = None,
    ) -> None:
        """Record progress (absolute or incremental) and report it if it is time to."""
        with self._lock:
            if bytes_done is not None:
                self.bytes_done = bytes_done
            self.bytes_done += add_bytes
            if files_done is not None:
                self.files_done = files_done
            self.files_done += add_files
            if current is not None:
                self._current = current
            now = time.monotonic()
            self._samples.append((now, self.bytes_done))
            while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
                self._samples.popleft()
            if now - self._last_report < MIN_INTERVAL:
                return
            self._last_report = now
            report = self._snapshot(now, final=False)
        self._emit(report)

    def finish(self) -> SyncProgress:
        """The last report (always delivered)."""
        with self._lock:
            report = self._snapshot(time.monotonic(), final=True)
        self._emit(report)
        return report

    def rate(self) -> float:
        with self._lock:
            return self._rate()

    def _rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def _snapshot(self, now: float, *, final: bool) -> SyncProgress:
        elapsed = now - self._started
        rate = self._rate()
        if final and elapsed > 0:
            rate = self.bytes_done / elapsed
        return SyncProgress(
            direction=self._direction,
            bytes_done=self.bytes_done,
            bytes_total=self.bytes_total,
            files_done=self.files_done,
            files_total=self.files_total,
            rate=rate,
            elapsed=elapsed,
            current=self._current,
            final=final,
        )

    def _emit(self, report: SyncProgress) -> None:
        if self._callback is None:
            return
        if threading.get_ident() == self._thread:
            self._callback(report)
        else:
            self._loop.call_soon_threadsafe(self._callback, report)


class Throttle:
    """Sleeps a worker thread so that it moves at most ``rate`` bytes per second."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("bwlimit must be a positive number of bytes per second")
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self._bytes = 0

    def consume(self, count: int, stop: threading.Event | None = None) -> float:
        """Account for ``count`` bytes; wait until they fit the rate. Returns the wait."""
        if self.rate is None:
            return 0.0
        self._bytes += count
        ahead = self._bytes / self.rate - (self._clock() - self._start)
        if ahead <= 0:
            return 0.0
        if stop is not None:
            stop.wait(ahead)  # returns at once when the transfer is told to stop
        else:
            self._sleep(ahead)
        return ahead
