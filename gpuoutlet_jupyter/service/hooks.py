"""Where other work joins a rental's life: just before the service stops it, and once it has ended.

A stop destroys the pod and its disk, so whatever must happen on the pod first (saving its
work) runs in ``before_stop``; whatever lives only as long as the pod (a shared SSH connection,
port forwards, a telemetry sampler) is closed in ``ended``. A hook never prevents either: its
failure is logged and the stop goes ahead (a rental left running costs money).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from .record import RentalRecord

log = logging.getLogger(__name__)

#: Who asked for a stop: a person (a REST call: the sidebar, the panel, ``%gpu_stop``) or the
#: idle auto-stop.
StopReason = Literal["user", "idle"]


@dataclass(frozen=True)
class StopRequest:
    """What the service knows of a stop it is about to make (what a stop asks of the hooks
    grows here, not in their signature)."""

    reason: StopReason
    #: Save the rental's work first. Only a person may say no (``%gpu_stop --no-save``, the
    #: sidebar's "Stop without saving"); the service's own stops always save.
    save: bool = True


#: Runs before the stop request is sent; the rental may still be running.
BeforeStop = Callable[[RentalRecord, StopRequest], Awaitable[None]]
#: Runs once a rental is no longer watched: stopped, failed or gone from the API's list.
Ended = Callable[[RentalRecord], Awaitable[None]]


@dataclass
class RentalHooks:
    """The hooks of one RentalService; add to the lists before ``start()``."""

    before_stop: list[BeforeStop] = field(default_factory=list)
    ended: list[Ended] = field(default_factory=list)

    async def stopping(self, record: RentalRecord, request: StopRequest) -> None:
        """Run every ``before_stop`` hook, one after the other, whatever each one does."""
        for hook in self.before_stop:
            try:
                await hook(record, request)
            except Exception:
                log.exception("rental %s: a before-stop hook failed; stopping it anyway", record.id)

    async def end(self, record: RentalRecord) -> None:
        """Run every ``ended`` hook (once per rental: the service calls this on the change)."""
        for hook in self.ended:
            try:
                await hook(record)
            except Exception:
                log.exception("rental %s: an ended hook failed", record.id)
