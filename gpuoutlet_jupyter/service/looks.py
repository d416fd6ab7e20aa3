"""Who looks at a rental's GPU telemetry: one sampler per rental, running while any look lasts.

A viewer (a sidebar card's poll, ``%gpu_top``'s long-poll) takes a *look*: a lease on the
rental's telemetry for the length of its request plus a grace period. While a lease lasts, the
rental's ``TelemetryMonitor`` is subscribed once, whatever the number of viewers; when the last
lease runs out, the sampler stops. Every viewer reads the same samples, so what the pod is asked
does not grow with viewers. A pod without ``nvidia-smi`` is found out once and never asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal

from ..remote import Subscription, TelemetryEvent, TelemetryMonitor

#: ``waiting``: looked at, no sample yet; ``sampling``: samples come; ``unavailable``: no
#: nvidia-smi on the pod (said once, then never asked again); ``error``: the last sample failed.
LookState = Literal["waiting", "sampling", "unavailable", "error"]


@dataclass
class Look:
    """The telemetry of one rental as its viewers see it."""

    monitor: TelemetryMonitor
    state: LookState = "waiting"
    message: str | None = None
    #: Grows with every event (a sample, an error): the long-poll's cursor.
    version: int = 0
    #: Loop time until which someone looks.
    expires: float = 0.0
    subscription: Subscription | None = None
    timer: asyncio.TimerHandle | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def sampling(self) -> bool:
        """Whether the sampler runs for this look now."""
        return self.subscription is not None and self.monitor.running

    def event(self, event: TelemetryEvent) -> None:
        if event.kind == "sample":
            self.state, self.message = "sampling", None
        elif event.kind == "unavailable":
            self.state, self.message = "unavailable", event.message
        else:
            self.state, self.message = "error", event.message
        self.version += 1
        woken, self.changed = self.changed, asyncio.Event()
        woken.set()


class TelemetryLooks:
    """The looks of every rental of one service (one event loop)."""

    def __init__(self, *, grace: float) -> None:
        #: Seconds a look outlasts the request that took it (a poll every few seconds keeps it).
        self.grace = grace
        self._looks: dict[str, Look] = {}

    def get(self, rental_id: str) -> Look | None:
        return self._looks.get(rental_id)

    def take(self, rental_id: str, monitor: TelemetryMonitor, seconds: float = 0.0) -> Look:
        """Someone looks at the rental for ``seconds`` (plus the grace): sample while they do."""
        look = self._looks.get(rental_id)
        if look is None or look.monitor is not monitor:
            if look is not None:
                self._end(look)
            look = self._looks[rental_id] = Look(monitor)
        loop = asyncio.get_running_loop()
        look.expires = max(look.expires, loop.time() + seconds + self.grace)
        if monitor.unavailable is not None:
            look.state, look.message = "unavailable", monitor.unavailable
            self._unsubscribe(look)
            return look
        if look.subscription is not None and not monitor.running:
            self._unsubscribe(look)  # its sampler ended (the connection closed): start afresh
        if look.subscription is None:
            look.subscription = monitor.subscribe(look.event)
        if look.timer is None:
            look.timer = loop.call_at(look.expires, self._expire, rental_id)
        return look

    async def wait(self, look: Look, since: int, seconds: float) -> None:
        """Until the look's version exceeds ``since``, or ``seconds`` pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while look.version <= since and look.state != "unavailable":
            left = deadline - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(look.changed.wait(), left)

    def _expire(self, rental_id: str) -> None:
        look = self._looks.get(rental_id)
        if look is None:
            return
        look.timer = None
        loop = asyncio.get_running_loop()
        if loop.time() < look.expires:
            look.timer = loop.call_at(look.expires, self._expire, rental_id)
            return
        # Nobody looks any more: the sampler stops (the history is kept for the next look).
        self._unsubscribe(look)

    @staticmethod
    def _unsubscribe(look: Look) -> None:
        if look.subscription is not None:
            look.subscription.close()
            look.subscription = None

    def _end(self, look: Look) -> None:
        self._unsubscribe(look)
        if look.timer is not None:
            look.timer.cancel()
            look.timer = None
        look.changed.set()  # wake the waiters: there is nothing more to wait for

    def drop(self, rental_id: str) -> None:
        """The rental ended: its look goes (its monitor is closed with its remote)."""
        look = self._looks.pop(rental_id, None)
        if look is not None:
            self._end(look)

    def close(self) -> None:
        for rental_id in list(self._looks):
            self.drop(rental_id)

    def looked_at(self) -> list[str]:
        """The rentals sampled now because someone looks."""
        return sorted(r for r, look in self._looks.items() if look.sampling)


def telemetry_view(rental_id: str, look: Look, *, running: bool = True) -> dict[str, Any]:
    """The REST shape of a rental's telemetry (``rest.models.TelemetryView``)."""
    monitor = look.monitor
    snapshots = monitor.history.snapshots()
    latest = snapshots[-1] if snapshots else None
    names = [g.name for g in latest.gpus] if latest is not None else []
    return {
        "rentalId": rental_id,
        "state": look.state,
        "message": look.message,
        "version": look.version,
        "sampling": look.sampling and running,
        "intervalSeconds": monitor.interval,
        "historySeconds": monitor.history.seconds,
        "gpuCount": len(names),
        "gpuModel": (names[0] if len(set(names)) == 1 else ", ".join(names)) if names else None,
        "gpus": [
            {"index": g.index, "name": g.name, "memoryTotal": g.memory_total}
            for g in (latest.gpus if latest is not None else ())
        ],
        "samples": [
            {
                "at": s.at.isoformat().replace("+00:00", "Z"),
                "gpus": [
                    {
                        "index": g.index,
                        "utilization": g.utilization,
                        "memoryUsed": g.memory_used,
                        "memoryTotal": g.memory_total,
                        "temperature": g.temperature,
                        "power": g.power,
                    }
                    for g in s.gpus
                ],
            }
            for s in snapshots
        ],
    }
