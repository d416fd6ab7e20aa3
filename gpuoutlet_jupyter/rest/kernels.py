"""Remote kernels in the REST API: the kernel records read once per change for every viewer,
their views, and what "Reattach" and "Shut down" do. Shared by the server and the in-process
host, like ``layer.py``; no tornado, no jupyter_server.

The records (``kernel/records.py``) are the truth: each provisioner writes its kernel's state
there as it changes (connected, reconnecting with its attempt, detached), in whatever process
drives it. Nothing here asks the rentals API anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..api import GpuOutletError
from ..kernel.records import KernelRecord, KernelRecords, State, request_adoption
from . import models

JSON = dict[str, Any]

#: Seconds between two looks at the records while someone long-polls (one look for all).
LOOK_INTERVAL = 0.5
#: A folder's mtime is as fine as the kernel's coarse clock: a change made within this many
#: seconds of a read may share its mtime, so such a read is not trusted to be the last word.
STAMP_SLACK = 1.0
#: The longest a "Shut down" may take (ssh's connect timeout and the keeper's answer).
SHUT_DOWN_TIMEOUT = 60.0


class KernelActionError(GpuOutletError):
    """A kernel action that cannot be done: a stable code, the HTTP status, what to do."""

    def __init__(self, message: str, *, code: str, status: int, rental_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.rental_id = rental_id


# Views.


def _iso(epoch: float | None) -> str | None:
    if not epoch or not math.isfinite(epoch):
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def notice(record: KernelRecord, state: str) -> str:
    """A kernel's state in words, the same in the sidebar and the magics."""
    on = f"kernel on {record.rental_id}"
    if state == State.RECONNECTING:
        text = f"{on} lost its connection, reconnecting, attempt {max(1, record.attempt)}"
        return f"{text} (last try: {record.error})" if record.error else text
    if state == State.DETACHED:
        until = "until its rental stops"
        if record.detach_timeout is not None:
            ends = _iso(record.since + record.detach_timeout) or "soon"
            until = f"until {ends} (its detach timeout)"
        text = (
            f"{on} is detached: it runs on with its variables, no Jupyter attached, {until}. "
            "Reattach it, or shut it down."
        )
        if record.adopt_next:
            text += f" Reattach asked for: the next start of {record.kernel_name} adopts it."
        return text
    if state == State.CONNECTING:
        return f"{on} is connecting"
    return f"{on} is connected"


def kernel_view(record: KernelRecord, *, here: int | None = None) -> JSON:
    """The REST view of one record (``models.KernelView``): everything but the key."""
    detached = record.detached
    state = State.DETACHED if detached else record.state
    driven_here = not detached and record.owner_pid == (here if here is not None else os.getpid())
    ends = None
    if detached and record.detach_timeout is not None:
        ends = _iso(record.since + record.detach_timeout)
    return {
        "wrapper": record.wrapper,
        "rentalId": record.rental_id,
        "kernelName": record.kernel_name,
        "state": state,
        "attempt": record.attempt if state == State.RECONNECTING else 0,
        "error": (record.error or None) if state == State.RECONNECTING else None,
        "since": _iso(record.since),
        "startedAt": _iso(record.started_at),
        "detached": detached,
        "drivenHere": driven_here,
        "kernelId": (record.kernel_id or None) if driven_here else None,
        "notebook": record.session_name or None,
        "detachTimeoutSeconds": record.detach_timeout,
        "endsAt": ends,
        "reattachRequested": record.adopt_next and detached,
        "notice": notice(record, state),
    }


def _order(view: JSON) -> tuple[str, float]:
    started = view["startedAt"] or ""
    return (view["rentalId"], -datetime.fromisoformat(started).timestamp() if started else 0.0)


# One read per change, for every viewer.


class KernelBoard:
    """The kernel records of one state dir and their views, shared by every viewer.

    A look is one ``stat`` of the records folder: its mtime moves with every record written or
    removed (they are written by rename), and only then are the files read again. What the views
    say also moves without a write (a Jupyter that died leaves its kernels detached, a detach
    timeout runs out), so they are worked out again at most every ``interval`` seconds. However
    many viewers ask or long-poll, that is one look and at most one read per interval.
    """

    def __init__(
        self,
        state_dir: Path | str,
        *,
        interval: float = LOOK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = KernelRecords(state_dir)
        self.interval = interval
        self._clock = clock
        #: Grows with every change a viewer could see; from the clock, so that it grows across
        #: a restart of the server too (a long-poll's ``since`` from before stays behind it).
        self.version = int(time.time() * 1000)
        #: How many times the record files were read (a change costs one, whoever asks).
        self.reads = 0
        self._stamp: tuple[int, int, int] | None = None
        self._sure = False
        self._read_at = -math.inf
        self._viewed_at = -math.inf
        self._records: list[KernelRecord] = []
        self._views: list[JSON] | None = None
        self._changed: asyncio.Event | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._waiting = 0

    def snapshot(self) -> tuple[int, list[JSON]]:
        """The version and every kernel's view, as of now (at most ``interval`` old)."""
        self._look()
        return self.version, list(self._views or [])

    def invalidate(self) -> None:
        """Something was just changed here (a reattach, a shut down): read it at the next look."""
        self._sure = False
        self._read_at = self._viewed_at = -math.inf

    def record(self, wrapper: str) -> KernelRecord | None:
        """One record as it is on disk now (an action acts on the latest)."""
        try:
            record = self.records.read(wrapper)
        except ValueError:
            return None  # not a wrapper id
        return None if record is None or record.expired else record

    async def wait_for_change(self, since: int, timeout: float) -> tuple[int, list[JSON]]:
        """Long-poll: the snapshot once the version exceeds ``since``, or after ``timeout`` s."""
        version, views = self.snapshot()
        if version > since or timeout <= 0:
            return version, views
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiting += 1
        try:
            self._start_ticker()
            while self.version <= since:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                changed = self._event()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._waiting -= 1
        return self.snapshot()

    async def close(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        """One look every interval while anyone long-polls, for all of them."""
        while self._waiting > 0:
            await asyncio.sleep(self.interval)
            self._look()

    def _folder_stamp(self) -> tuple[int, int, int] | None:
        try:
            found = os.stat(self.records.folder)
        except OSError:
            return None
        return (found.st_mtime_ns, found.st_ctime_ns, found.st_ino)

    def _look(self) -> None:
        now = self._clock()
        stamp = self._folder_stamp()
        read = stamp != self._stamp or (not self._sure and now - self._read_at >= self.interval)
        if read:
            self._records = self.records.all()
            self.reads += 1
            self._read_at = now
            self._stamp = stamp
            # A write in the same tick of the coarse clock as this read would leave the stamp
            # as it is: until the stamp is older than that, look at the files again later.
            self._sure = stamp is None or time.time_ns() - stamp[0] > STAMP_SLACK * 1e9
        elif now - self._viewed_at < self.interval:
            return
        self._viewed_at = now
        here = os.getpid()
        views = sorted(
            (kernel_view(r, here=here) for r in self._records if not r.expired), key=_order
        )
        if views != self._views:
            self._views = views
            self.version += 1
            changed, self._changed = self._changed, None
            if changed is not None:
                changed.set()


# The JSON layer of the kernel endpoints.


@dataclass(frozen=True)
class Started:
    """What a host's start of a kernelspec for "Reattach" did."""

    kernel_id: str
    path: str | None  #: the notebook with a session on it (relative to Jupyter's root)
    adopted: bool  #: the kernel started is the detached one (else it had ended: a new one)


#: The server's "start the rental's kernelspec for its notebook" (the in-process host has none).
Starter = Callable[[KernelRecord], Awaitable[Started]]


class KernelsJson:
    """Every kernel endpoint's work below HTTP: the listing, Reattach and Shut down."""

    def __init__(self, board: KernelBoard, *, starter: Starter | None = None) -> None:
        self.board = board
        self._starter = starter

    @property
    def state_dir(self) -> Path:
        return self.board.records.folder.parent

    async def kernels(
        self, *, rental_id: str | None = None, since: int | None = None, wait: float = 0.0
    ) -> JSON:
        """Every remote kernel (or one rental's); with ``since``, once any kernel changed."""
        if since is None:
            version, views = self.board.snapshot()
        else:
            version, views = await self.board.wait_for_change(since, wait)
        if rental_id is not None:
            views = [v for v in views if v["rentalId"] == rental_id]
        return models.KernelsView.model_validate({"kernels": views, "version": version}).to_json()

    def _detached(self, wrapper: str, action: str) -> KernelRecord:
        record = self.board.record(wrapper)
        if record is None:
            raise KernelActionError(
                f"There is no remote kernel {wrapper!r} to {action}: it ended (shut down, its "
                "detach timeout ran out, or its rental stopped), or the id is mistyped. "
                "%gpu_kernels lists the kernels there are.",
                code="kernel_not_found",
                status=404,
            )
        if not record.detached:
            raise KernelActionError(
                f"The kernel {wrapper} on {record.rental_id} is attached: a Jupyter drives it "
                f"({record.state}), so there is nothing to {action} here. Use that notebook "
                "(Kernel → Shut Down ends it there).",
                code="kernel_attached",
                status=409,
                rental_id=record.rental_id,
            )
        return record

    async def reattach(self, wrapper: str) -> JSON:
        """Mark the detached kernel for adoption, then (on a server) start its kernelspec for
        its notebook, which adopts it: the notebook finds its variables again."""
        record = self._detached(wrapper, "reattach")
        try:
            record = await asyncio.to_thread(request_adoption, wrapper, self.state_dir)
        except LookupError as exc:
            raise KernelActionError(str(exc), code="kernel_not_found", status=404) from None
        self.board.invalidate()
        view = kernel_view(record)
        started = await self._starter(record) if self._starter is not None else None
        self.board.invalidate()
        return models.ReattachReply.model_validate(
            {
                "kernel": view,
                "kernelName": record.kernel_name,
                "kernelId": started.kernel_id if started else None,
                "path": started.path if started else None,
                "adopted": started.adopted if started else None,
                "message": _reattached(record, started),
            }
        ).to_json()

    async def shut_down(self, wrapper: str) -> JSON:
        """End a detached kernel and its folder on its machine, and forget it."""
        from ..kernel.link import RemoteKernelError, shut_down_detached

        record = self._detached(wrapper, "shut down")
        try:
            await asyncio.wait_for(
                shut_down_detached(wrapper, self.state_dir), timeout=SHUT_DOWN_TIMEOUT
            )
        except LookupError as exc:
            # Ended meanwhile, or just adopted by a start of its kernelspec: say which.
            self.board.invalidate()
            self._detached(wrapper, "shut down")
            raise KernelActionError(str(exc), code="kernel_not_found", status=404) from None
        except (RemoteKernelError, OSError, asyncio.TimeoutError) as exc:
            reason = str(exc) or f"no answer within {SHUT_DOWN_TIMEOUT:g} s"
            raise KernelActionError(
                f"The kernel {wrapper} on {record.rental_id} could not be reached to shut it "
                f"down: {reason}. It is still listed: try again once the machine answers (a "
                "stop of the rental ends it with the machine).",
                code="kernel_unreachable",
                status=502,
                rental_id=record.rental_id,
            ) from None
        finally:
            self.board.invalidate()
        return models.KernelShutDownReply.model_validate(
            {
                "wrapper": wrapper,
                "rentalId": record.rental_id,
                "message": f"Shut down: the kernel {wrapper} and its folder on "
                f"{record.rental_id} are gone, and its variables with them.",
            }
        ).to_json()


def _reattached(record: KernelRecord, started: Started | None) -> str:
    if started is None:
        return (
            f"The kernel {record.wrapper} on {record.rental_id} is marked for reattaching: the "
            f"next start of the kernel {record.kernel_name} adopts it, variables and all "
            "(open a notebook with that kernel, or change a notebook's kernel to it)."
        )
    if not started.adopted:
        return (
            f"The detached kernel {record.wrapper} had ended on {record.rental_id}; a new "
            f"kernel was started instead (Jupyter kernel {started.kernel_id}): the old one's "
            "variables are gone."
        )
    where = f"for {started.path}: open it" if started.path else "(no notebook was known)"
    return (
        f"Reattached: the kernel {record.wrapper} on {record.rental_id} runs as Jupyter kernel "
        f"{started.kernel_id} again {where}; its variables are there."
    )
