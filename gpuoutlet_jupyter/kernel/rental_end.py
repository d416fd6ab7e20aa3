"""A rental that ended takes its remote kernels with it: the kernel layer's ``ended`` hook.

A stop destroys the machine, and every kernel on it, detached or not, ends there. What is left
on this side is their records: forgotten here, whatever path ended the rental (a stop from the
sidebar, a magic, the idle stop, the website, the vendor's own auto-stop or the wallet at $0),
so no kernel is listed for Reattach that cannot come back, and a provisioner still reconnecting
to one gives up (it checks its record before every try).

It is an ``ended`` hook, not a ``before_stop`` one, on purpose: before a stop the saver copies
the pod's files, which a detached kernel may still be writing (a checkpoint), and a stop that
fails must leave the kernel running.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Protocol

from .records import KernelRecords

log = logging.getLogger(__name__)


class EndedRental(Protocol):
    """What the hook needs of the service's record of a rental."""

    @property
    def id(self) -> str: ...


class EndedRentalKernels:
    """``RentalHooks.ended``: forget the kernel records of a rental that ended."""

    def __init__(self, state_dir: Path | str) -> None:
        self.records = KernelRecords(state_dir)

    async def ended(self, rental: EndedRental) -> None:
        gone = await asyncio.to_thread(self.records.forget_rental, rental.id)
        detached = sum(1 for record in gone if record.detached)
        if gone:
            log.info(
                "rental %s ended: its %d remote kernel(s) (%d detached) ended with its machine",
                rental.id,
                len(gone),
                detached,
            )
