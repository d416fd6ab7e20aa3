"""GPU telemetry of a pod: ``nvidia-smi`` over the shared connection, sampled only while watched.

One sample is one ``nvidia-smi --query-gpu=… --format=csv,noheader,nounits`` (a multiplexed
session: no new SSH login). A :class:`TelemetryMonitor` per rental keeps the last ten minutes
and runs its sampler only while someone subscribes (an open sidebar card, ``%gpu_top``). A pod
without ``nvidia-smi`` (exit 127) is reported once, and then no longer asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Literal, Protocol

from .connection import CommandResult
from .errors import (
    ConnectionClosed,
    NoNvidiaSmi,
    RemoteError,
    TelemetryError,
    TelemetryParseError,
    stderr_tail,
)

log = logging.getLogger(__name__)

QUERY_FIELDS = (
    "index",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
)
NVIDIA_SMI_COMMAND = (
    f"nvidia-smi --query-gpu={','.join(QUERY_FIELDS)} --format=csv,noheader,nounits"
)
DEFAULT_INTERVAL = 5.0
DEFAULT_HISTORY_SECONDS = 600.0
DEFAULT_SAMPLE_TIMEOUT = 15.0
#: What nvidia-smi prints for a value it cannot give.
_MISSING_VALUES = ("[n/a]", "n/a", "[not supported]", "not supported", "[unknown error]", "")
_NUMERIC_FIELDS = len(QUERY_FIELDS) - 2  # the ones after index and name


@dataclass(frozen=True)
class GPUSample:
    """One GPU at one moment. A value the GPU does not report is ``None``."""

    index: int
    name: str
    utilization: float | None  #: percent, 0-100
    memory_used: float | None  #: MiB
    memory_total: float | None  #: MiB
    temperature: float | None  #: degrees Celsius
    power: float | None  #: watts

    @property
    def memory_fraction(self) -> float | None:
        if self.memory_used is None or not self.memory_total:
            return None
        return self.memory_used / self.memory_total


@dataclass(frozen=True)
class TelemetrySnapshot:
    """Every GPU of a pod at one moment."""

    at: datetime  #: wall clock (UTC), for display
    monotonic: float  #: ``loop.time()`` when taken, for windows
    gpus: tuple[GPUSample, ...]

    @property
    def max_utilization(self) -> float | None:
        values = [g.utilization for g in self.gpus if g.utilization is not None]
        return max(values) if values else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``at`` in ISO 8601, one object per GPU (``None`` for missing values)."""
        return {"at": self.at.isoformat(), "gpus": [asdict(g) for g in self.gpus]}


def _value(raw: str, field: str, line: str) -> float | None:
    text = raw.strip()
    if text.lower() in _MISSING_VALUES or (text.startswith("[") and text.endswith("]")):
        return None
    try:
        number = float(text)
    except ValueError:
        raise TelemetryParseError(
            f"nvidia-smi gave {text!r} for {field} in {line!r}, not a number"
        ) from None
    return number if math.isfinite(number) else None


def parse_csv(text: str) -> tuple[GPUSample, ...]:
    """Parse the CSV lines of :data:`NVIDIA_SMI_COMMAND` (one per GPU).

    Values reported as ``[N/A]``, ``[Not Supported]`` and the like become ``None``. The GPU name
    may hold commas (nvidia-smi does not quote it): the fields are taken from both ends.
    Raises :class:`TelemetryParseError` for a line that is not this format.
    """
    samples = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < len(QUERY_FIELDS):
            raise TelemetryParseError(
                f"nvidia-smi printed {line!r}: expected {len(QUERY_FIELDS)} comma-separated "
                f"fields ({', '.join(QUERY_FIELDS)})"
            )
        numeric = fields[-_NUMERIC_FIELDS:]
        name = ", ".join(fields[1:-_NUMERIC_FIELDS])
        try:
            index = int(fields[0])
        except ValueError:
            raise TelemetryParseError(
                f"nvidia-smi printed {line!r}: the GPU index {fields[0]!r} is not a number"
            ) from None
        values = [
            _value(raw, field, line) for raw, field in zip(numeric, QUERY_FIELDS[2:], strict=True)
        ]
        samples.append(GPUSample(index, name, *values))
    if not samples:
        raise TelemetryParseError("nvidia-smi printed no GPU lines")
    return tuple(sorted(samples, key=lambda s: s.index))


class CommandRunner(Protocol):
    """What telemetry needs from a connection (a :class:`SharedConnection`)."""

    async def run(
        self, command: str, *, timeout: float | None = None
    ) -> CommandResult: ...  # pragma: no cover


async def sample(
    runner: CommandRunner, *, timeout: float = DEFAULT_SAMPLE_TIMEOUT
) -> TelemetrySnapshot:
    """Take one sample over ``runner`` (the rental's shared connection).

    Raises :class:`NoNvidiaSmi` when the pod has no ``nvidia-smi``, :class:`TelemetryError`
    when it fails (no driver, no GPU) and :class:`TelemetryParseError` for output it cannot read.
    """
    result = await runner.run(NVIDIA_SMI_COMMAND, timeout=timeout)
    taken = asyncio.get_running_loop().time()
    if result.exit_status == 127:
        raise NoNvidiaSmi(
            "this pod has no nvidia-smi, so there is no GPU telemetry for it (the template "
            "has no NVIDIA driver tools on its PATH)"
        )
    if result.exit_status != 0:
        said = stderr_tail(result.stdout) or stderr_tail(result.stderr) or "no output"
        raise TelemetryError(
            f"nvidia-smi failed on the pod (exit status {result.exit_status}): {said}"
        )
    return TelemetrySnapshot(datetime.now(timezone.utc), taken, parse_csv(result.text))


class TelemetryHistory:
    """The last ``seconds`` of samples (120 at the default 5 s over 10 minutes)."""

    def __init__(
        self, seconds: float = DEFAULT_HISTORY_SECONDS, interval: float = DEFAULT_INTERVAL
    ) -> None:
        self.seconds = seconds
        self._samples: deque[TelemetrySnapshot] = deque(maxlen=max(1, round(seconds / interval)))

    def add(self, snapshot: TelemetrySnapshot) -> None:
        self._samples.append(snapshot)

    def snapshots(self) -> list[TelemetrySnapshot]:
        """Oldest first."""
        return list(self._samples)

    def latest(self) -> TelemetrySnapshot | None:
        return self._samples[-1] if self._samples else None

    def __len__(self) -> int:
        return len(self._samples)

    def peak_utilization(self, window: float, now: float) -> float | None:
        """The highest utilisation of any GPU in samples taken in ``[now - window, now]``."""
        values = [
            u
            for s in self._samples
            if now - window <= s.monotonic <= now and (u := s.max_utilization) is not None
        ]
        return max(values) if values else None


@dataclass(frozen=True)
class TelemetryEvent:
    """What subscribers receive: a sample, the pod having no nvidia-smi (once), or an error."""

    kind: Literal["sample", "unavailable", "error"]
    snapshot: TelemetrySnapshot | None = None
    message: str | None = None


TelemetryCallback = Callable[[TelemetryEvent], None]


class Subscription:
    """A subscriber's handle; :meth:`close` (or leaving ``with``) stops its events."""

    def __init__(self, monitor: TelemetryMonitor, callback: TelemetryCallback) -> None:
        self._monitor: TelemetryMonitor | None = monitor
        self.callback = callback

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor._unsubscribe(self)
            self._monitor = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TelemetryWatch:
    """A subscription read as an async iterator (see :meth:`TelemetryMonitor.watch`)."""

    def __init__(self, monitor: TelemetryMonitor, maxsize: int = 100) -> None:
        self._monitor = monitor
        self._queue: asyncio.Queue[TelemetryEvent] = asyncio.Queue(maxsize=maxsize)
        self._subscription: Subscription | None = None
        self._done = False

    def _put(self, event: TelemetryEvent) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a slow reader loses old samples only
            self._queue.put_nowait(event)

    def _ensure(self) -> None:
        if self._subscription is None and not self._done:
            self._subscription = self._monitor.subscribe(self._put)

    async def __aenter__(self) -> TelemetryWatch:
        self._ensure()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> TelemetryWatch:
        return self

    async def __anext__(self) -> TelemetryEvent:
        if self._done:
            raise StopAsyncIteration
        self._ensure()
        event = await self._queue.get()
        if event.kind == "unavailable":
            self.close()
        return event

    def close(self) -> None:
        """Unsubscribe (the sampler stops if nobody else watches)."""
        self._done = True
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None


class TelemetryMonitor:
    """Samples one rental's GPUs every ``interval`` seconds while anyone subscribes."""

    def __init__(
        self,
        runner: CommandRunner,
        *,
        interval: float = DEFAULT_INTERVAL,
        history_seconds: float = DEFAULT_HISTORY_SECONDS,
        sample_timeout: float = DEFAULT_SAMPLE_TIMEOUT,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be a positive number of seconds")
        self._runner = runner
        self.interval = interval
        self._sample_timeout = sample_timeout
        self.history = TelemetryHistory(history_seconds, interval)
        self._subscribers: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Why there is no telemetry from this pod (set once, when it has no nvidia-smi).
        self.unavailable: str | None = None
        self.last_error: str | None = None
        self.samples_taken = 0

    @property
    def running(self) -> bool:
        """Whether the sampler runs now (only while someone subscribes)."""
        return self._task is not None and not self._task.done()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, callback: TelemetryCallback) -> Subscription:
        """Call ``callback`` with every event from now on; start sampling if nobody was.

        A pod already known to have no nvidia-smi gets its one ``unavailable`` event at once.
        Callbacks run on the event loop's thread and must not block.
        """
        if self._closed:
            raise ConnectionClosed("the rental has stopped: no telemetry any more")
        subscription = Subscription(self, callback)
        self._subscribers.append(subscription)
        if self.unavailable is not None:
            asyncio.get_running_loop().call_soon(
                callback, TelemetryEvent("unavailable", message=self.unavailable)
            )
        elif not self.running:
            self._task = asyncio.get_running_loop().create_task(self._sample_loop())
        return subscription

    def watch(self) -> TelemetryWatch:
        """Events as an async iterator, for ``%gpu_top``; stops at ``unavailable``.

        Use it as ``async with monitor.watch() as events: async for event in events: ...`` so
        that leaving the loop (a break, an interrupt) unsubscribes at once.
        """
        return TelemetryWatch(self)

    def _unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscription)
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    def _emit(self, event: TelemetryEvent) -> None:
        for subscription in list(self._subscribers):
            try:
                subscription.callback(event)
            except Exception:
                log.exception("a telemetry subscriber failed")

    async def sample_once(self) -> TelemetrySnapshot:
        """Take one sample now and add it to the history (whether or not anyone subscribes)."""
        snapshot = await sample(self._runner, timeout=self._sample_timeout)
        self.history.add(snapshot)
        self.samples_taken += 1
        self.last_error = None
        return snapshot

    async def _sample_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while self._subscribers and not self._closed:
            try:
                snapshot = await self.sample_once()
            except NoNvidiaSmi as exc:
                self.unavailable = str(exc)
                self._emit(TelemetryEvent("unavailable", message=self.unavailable))
                return
            except ConnectionClosed as exc:
                self._emit(TelemetryEvent("error", message=str(exc)))
                return
            except (RemoteError, OSError) as exc:
                self.last_error = str(exc)
                self._emit(TelemetryEvent("error", message=self.last_error))
            else:
                self._emit(TelemetryEvent("sample", snapshot=snapshot))
            # Keep the cadence (a slow sample does not push every later one back) without
            # bursting to catch up after a stall.
            next_at = max(next_at + self.interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def close(self) -> None:
        """Stop sampling for good (the rental stopped); subscribers get no more events."""
        self._closed = True
        self._subscribers.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
