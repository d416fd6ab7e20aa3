"""The request budget: every upstream request of one host of RentalService takes its turn here.

gpuoutlet allows 100 requests a minute and 1,000 an hour per session, GETs included, and the
dashboard and the user's other tools spend from the same allowance (sheet 1.8). One budget per
host (the Jupyter server, or a kernel renting by itself) keeps the host within its own share
(``max_requests_per_minute``, ``max_requests_per_hour``), counted in sliding windows, so the
share holds whatever windows the vendor counts in (they are not documented). Besides:

- the most urgent go first: stops, then creates, then provisioning polls, then running
  refreshes, then the reconcile, the catalog and the balance; and each kind may fill only part
  of a window (``SHARES``), so what is left is kept for the more urgent ones: a stop always
  finds room; past half its part, a kind's requests are spread over the window instead of spent
  at once; creates may fill only half a window themselves (``OWN_SHARES``), so a burst of them
  leaves room for the polls of the rentals they made;
- it slows down as the API's ``X-RateLimit-Remaining`` nears 0 (others spend from the same
  allowance), spreading what is left over what is left of the API's window;
- on a 429 it holds every request until ``Retry-After`` has passed (30 s when it is missing).

A request that would wait longer than its caller is willing to (a viewer's) is refused here
with ``RequestsHeldError``: nothing is sent. The watchers wait as long as it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import heapq
import itertools
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

import httpx

from ..api.contract import DEFAULT_RETRY_AFTER_SECONDS, Endpoint
from ..api.errors import RequestsHeldError
from ..api.responses import retry_after_seconds
from .idle import iso

MINUTE: Final = 60.0
HOUR: Final = 3600.0


class Priority(IntEnum):
    """What a request is for, most urgent first."""

    #: A stop: it ends the billing (and always finds room).
    STOP = 0
    #: A create and what it asks just before it (the quote, the balance); a person's action.
    ACT = 1
    #: Polls of rentals that are provisioning (or stopping): a person waits on them.
    PROVISIONING = 2
    #: The refresh of running rentals (a stop made elsewhere, the cost so far).
    RUNNING = 3
    #: The reconcile, the catalog, the balance, the keys, the session.
    BACKGROUND = 4


#: The part of each window a kind of request may fill: the rest is kept for the more urgent.
SHARES: Final = {
    Priority.STOP: 1.0,
    Priority.ACT: 1.0,
    Priority.PROVISIONING: 0.9,
    Priority.RUNNING: 0.8,
    Priority.BACKGROUND: 0.7,
}
#: The part of each window a kind may fill with its own requests: a burst of creates (three
#: requests each) leaves room for the polls of the rentals it made, which would otherwise not
#: be seen running until the window moved on (bench/request_budget.py measured 47 s at 16).
OWN_SHARES: Final = {Priority.ACT: 0.5}
#: The kinds that are neither spread over the window nor slowed near gpuoutlet's limit.
_PROMPT: Final = (Priority.STOP, Priority.ACT)
#: Under this part of the API's ``X-RateLimit-Limit`` left, requests are spread out (creates
#: and stops excepted) so that what is left lasts until the API's window ends.
SLOW_BELOW: Final = 0.2

# Unnamed requests count as the least urgent (Upstream names every one).
_priority: ContextVar[Priority] = ContextVar(
    "gpuoutlet_request_priority", default=Priority.BACKGROUND
)
# Seconds the caller is willing to wait for its turn; None: as long as it takes.
_patience: ContextVar[float | None] = ContextVar("gpuoutlet_request_patience", default=None)


@contextlib.contextmanager
def purpose(priority: Priority, patience: float | None = None) -> Iterator[None]:
    """The requests made inside (by this task, and tasks it starts) are for ``priority`` and
    wait at most ``patience`` seconds for their turn (None: as long as it takes)."""
    tokens = (_priority.set(priority), _patience.set(patience))
    try:
        yield
    finally:
        _patience.reset(tokens[1])
        _priority.reset(tokens[0])


@dataclass(frozen=True)
class Pause:
    """A 429, and how long every request was held after it."""

    #: Epoch seconds it came.
    at: float
    seconds: float
    #: Whether the API said how long (Retry-After); otherwise the vendor's 30 s.
    said: bool

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "seconds": self.seconds, "retryAfterGiven": self.said}


@dataclass
class _ApiWindow:
    """The API's own count, as its last ``X-RateLimit-*`` headers said."""

    limit: int
    remaining: int
    #: When its window ends, on the budget's clock.
    reset: float
    #: Requests sent since those headers were written (they are not in ``remaining``).
    sent_since: int


@dataclass
class _Waiter:
    priority: Priority
    seq: int
    future: asyncio.Future[None] = field(compare=False)

    def __lt__(self, other: _Waiter) -> bool:
        return (self.priority, self.seq) < (other.priority, other.seq)


class RequestBudget:
    """One host's upstream requests: when each may go (see the module's text)."""

    def __init__(
        self,
        per_minute: int,
        per_hour: int,
        *,
        default_retry_after: float = DEFAULT_RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if per_minute < 1 or per_hour < 1:
            raise ValueError("a request budget needs at least one request a minute and an hour")
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.default_retry_after = default_retry_after
        self._clock = clock
        self._wall = wall
        self._minute: deque[float] = deque()
        self._hour: deque[float] = deque()
        # The sends of the kinds with a share of their own (OWN_SHARES), by window.
        self._own: dict[Priority, tuple[deque[float], deque[float]]] = {
            kind: (deque(), deque()) for kind in OWN_SHARES
        }
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._held_until = -math.inf
        self._last_send = -math.inf
        self._in_flight = 0
        self._api: _ApiWindow | None = None
        #: The latest 429s (the last one last), and how long each held every request.
        self.pauses: list[Pause] = []
        #: How many 429s the API answered in all.
        self.rate_limited = 0
        #: Requests sent, by priority.
        self.sent: Counter[Priority] = Counter()
        #: The API's clock minus ours, in seconds, from its last ``Date`` header (None: unknown).
        self.skew: float | None = None

    # Taking a turn.

    async def acquire(self, priority: Priority | None = None) -> None:
        """Wait for a request's turn (its priority and patience from ``purpose`` unless given);
        RequestsHeldError when it would wait longer than its caller is willing to."""
        priority = _priority.get() if priority is None else priority
        patience = _patience.get()
        now = self._clock()
        if not self._waiting(priority) and self._wait(priority, now) <= 0:
            self._send(priority, now)
            return
        held = self._held_until - now
        if patience is not None and held > patience:
            raise self._held_error(held)
        waiter = _Waiter(priority, next(self._seq), asyncio.get_running_loop().create_future())
        heapq.heappush(self._queue, waiter)
        self._dispatch()
        try:
            await asyncio.wait({waiter.future}, timeout=patience)
        finally:
            if not waiter.future.done():
                waiter.future.cancel()
                self._queue.remove(waiter)
                heapq.heapify(self._queue)
                self._dispatch()
        if waiter.future.cancelled():
            raise self._held_error(self._wait(priority, self._clock()))

    def ready(self, priority: Priority) -> bool:
        """Whether a request of ``priority`` would go at once."""
        return not self._waiting(priority) and self._wait(priority, self._clock()) <= 0

    # The API's answers (RequestGate).

    async def before(self, endpoint: Endpoint) -> None:
        await self.acquire()

    def after(self, endpoint: Endpoint, response: httpx.Response | None) -> None:
        """Take what an answer says about the limits; ``None``: no answer came."""
        self._in_flight = max(0, self._in_flight - 1)
        if response is not None:
            now = self._clock()
            self._read_date(response)
            self._read_window(response, now)
            # The sign-in endpoints' 429s are their own caps (per email), not the session's.
            if response.status_code == 429 and endpoint.session:
                self._hold(response, now)
        self._dispatch()

    def _read_date(self, response: httpx.Response) -> None:
        header = response.headers.get("Date")
        if not header:
            return
        with contextlib.suppress(TypeError, ValueError, IndexError):
            self.skew = email.utils.parsedate_to_datetime(header).timestamp() - self._wall()

    def _read_window(self, response: httpx.Response, now: float) -> None:
        headers = response.headers
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
            reset_at = float(headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            return
        if limit <= 0:
            return
        # Unix time on the API's clock; a window is never longer than the hour.
        reset_in = min(HOUR, max(0.0, reset_at - self._wall() - (self.skew or 0.0)))
        self._api = _ApiWindow(limit, max(0, remaining), now + reset_in, self._in_flight)

    def _hold(self, response: httpx.Response, now: float) -> None:
        said = bool(response.headers.get("Retry-After"))
        seconds = retry_after_seconds(response) if said else self.default_retry_after
        self._held_until = max(self._held_until, now + seconds)
        self.rate_limited += 1
        self.pauses.append(Pause(self._wall(), seconds, said))
        del self.pauses[:-50]

    # When a request may go.

    def _waiting(self, priority: Priority) -> bool:
        """Whether a request at least as urgent is queued (it goes first)."""
        return any(w.priority <= priority and not w.future.done() for w in self._queue)

    def _wait(self, priority: Priority, now: float) -> float:
        """Seconds until a request of ``priority`` may go (0 or less: now)."""
        waits = [self._held_until - now]
        windows = ((MINUTE, self.per_minute, 0), (HOUR, self.per_hour, 1))
        for window, limit, index in windows:
            sent = (self._minute, self._hour)[index]
            _forget(sent, now - window)
            allowed = max(1, math.floor(limit * SHARES[priority]))
            if len(sent) >= allowed:
                # When enough of the requests in the window have left it.
                waits.append(sent[len(sent) - allowed] + window - now)
            elif priority not in _PROMPT and len(sent) >= allowed // 2:
                # Past half the share, the rest is spread over the window rather than spent at
                # once (a loop polling faster than the share slows down; it does not stall).
                waits.append(sent[-1] + window / allowed - now)
            own = self._own.get(priority)
            if own is not None:
                mine = own[index]
                _forget(mine, now - window)
                allowed = max(1, math.floor(limit * OWN_SHARES[priority]))
                if len(mine) >= allowed:
                    waits.append(mine[len(mine) - allowed] + window - now)
        api = self._api
        if api is not None and now < api.reset:
            left = api.remaining - api.sent_since
            if left <= 0:
                waits.append(api.reset - now)
            elif priority not in _PROMPT and left < SLOW_BELOW * api.limit:
                waits.append(self._last_send + (api.reset - now) / left - now)
        return max(waits)

    def _send(self, priority: Priority, now: float) -> None:
        self._minute.append(now)
        self._hour.append(now)
        for mine in self._own.get(priority, ()):
            mine.append(now)
        self._last_send = now
        self._in_flight += 1
        self.sent[priority] += 1
        if self._api is not None:
            self._api.sent_since += 1

    def _dispatch(self) -> None:
        """Let go every queued request whose turn it is, most urgent first; then sleep until
        the first of the others may go.

        All are looked at, not only the most urgent: one held by its kind's own share (a
        burst of creates) must not hold up the polls behind it. A less urgent one never takes
        a more urgent one's room: its shares are smaller, so it waits at least as long."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._clock()
        soonest = math.inf
        for waiter in sorted(self._queue):
            if waiter.future.done():
                continue
            wait = self._wait(waiter.priority, now)
            if wait > 0:
                soonest = min(soonest, wait)
                continue
            self._send(waiter.priority, now)
            waiter.future.set_result(None)
        self._queue = [w for w in self._queue if not w.future.done()]
        heapq.heapify(self._queue)
        if self._queue and soonest < math.inf:
            self._timer = asyncio.get_running_loop().call_later(soonest, self._dispatch)

    def _held_error(self, seconds: float) -> RequestsHeldError:
        seconds = max(1.0, math.ceil(seconds))
        if self._held_until > self._clock() and self.pauses:
            pause = self.pauses[-1]
            said = f"asked to wait {pause.seconds:g} s" if pause.said else "said no more"
            message = (
                f"gpuoutlet answered 429 (too many requests) and {said}; gpuoutlet-jupyter holds "
                "every request until then, so this one was not sent. Try again in "
                f"{seconds:.0f} s."
            )
        else:
            message = (
                f"gpuoutlet-jupyter keeps to {self.per_minute} requests a minute and "
                f"{self.per_hour} an hour (gpuoutlet allows 100 and 1,000 per session, shared with "
                "its website and your other tools), and that share is used up for now, so this "
                f"request was not sent. Try again in {seconds:.0f} s (the settings "
                "max_requests_per_minute and max_requests_per_hour set the share)."
            )
        return RequestsHeldError(message, retry_after=seconds)

    # What the status shows.

    def to_json(self) -> dict[str, Any]:
        """The budget as the REST status shows it (``rest.models.BudgetView``)."""
        now = self._clock()
        self._wait(Priority.ACT, now)  # drops the requests that left the windows
        held = self._held_until - now
        api = self._api if self._api is not None and now < self._api.reset else None
        return {
            "perMinute": self.per_minute,
            "perHour": self.per_hour,
            "usedLastMinute": len(self._minute),
            "usedLastHour": len(self._hour),
            "waiting": sum(1 for w in self._queue if not w.future.done()),
            "heldUntil": iso(self._wall() + held) if held > 0 else None,
            "heldSeconds": round(held, 1) if held > 0 else None,
            "rateLimitedCount": self.rate_limited,
            "lastPause": self.pauses[-1].to_json() if self.pauses else None,
            "apiLimit": api.limit if api else None,
            "apiRemaining": max(0, api.remaining - api.sent_since) if api else None,
            "apiResetAt": iso(self._wall() + api.reset - now) if api else None,
        }


def _forget(sent: deque[float], before: float) -> None:
    """Drop the sends that have left the window (those at or before ``before``)."""
    while sent and sent[0] <= before:
        sent.popleft()
