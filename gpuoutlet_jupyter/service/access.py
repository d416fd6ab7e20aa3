"""How the user reaches a rental: its SSH entry and its kernelspec, present exactly while it runs."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ..api import Rental
from ..ssh import SSHConfigError, SSHConfigWriter, SSHEntry
from .record import RentalRecord, SSHInfo

log = logging.getLogger(__name__)


class KernelSpecs(Protocol):
    """Installs and removes the per-rental kernelspec (supplied by the remote-kernel layer)."""

    def install(self, rental: Rental, entry: SSHEntry) -> str:
        """Write the rental's kernelspec; return its kernel name."""

    def remove(self, rental_id: str) -> None:
        """Delete the rental's kernelspec if there is one."""

    def installed(self) -> dict[str, str]:
        """``{kernel name: rental id}`` of the kernelspecs present."""


class AccessWriter:
    """Writes a running rental's SSH entry and kernelspec, and removes both once it stops.

    Failures are the rental's, said on it (``record.ssh.error``), never the service's: a hostile
    host from the API writes nothing, a disk error is tried again at the next poll.
    """

    def __init__(self, ssh: SSHConfigWriter | None, kernelspecs: KernelSpecs | None) -> None:
        self.ssh = ssh
        self.kernelspecs = kernelspecs

    async def act(self, record: RentalRecord, *, rewrite: bool = False) -> None:
        """Make the SSH entry and kernelspec match the rental: present while it runs, else gone.
        ``rewrite``: write the entry again even if it seems current (after a restart)."""
        rental = record.rental
        if rental.is_ready and record.watched:
            target = (str(rental.host), rental.port if rental.port is not None else -1)
            if rewrite or record.ssh is None or record.ssh_target != target:
                await self._write(record, target)
        elif not record.watched or rental.status == "stopping":
            await self._remove(record)

    async def _write(self, record: RentalRecord, target: tuple[str, int]) -> None:
        record.ssh_target = target
        if self.ssh is None:
            record.ssh = SSHInfo(error="SSH entries are turned off on this server.")
            return
        try:
            entry = await asyncio.to_thread(self.ssh.write, record.id, target[0], target[1])
        except SSHConfigError as exc:
            # A hostile or broken host/port from the API: nothing was written, and we say so.
            log.warning("rental %s: SSH entry refused: %s", record.id, exc)
            record.ssh = SSHInfo(error=str(exc))
            return
        except OSError as exc:
            # The disk's fault, not the rental's (a read-only or missing ~/.ssh, a full disk):
            # said on the rental, and tried again at its next poll, once the user has fixed it.
            error = (
                f"The SSH entry could not be written in {self.ssh.ssh_dir}: {os_error(exc)}. "
                "Make sure that folder can be created and written by you; the entry is written "
                "at the next poll once it can."
            )
            if record.ssh is None or record.ssh.error != error:
                log.warning("rental %s: %s", record.id, error)
            record.ssh = SSHInfo(error=error)
            record.ssh_target = None
            return
        record.ssh = SSHInfo(
            alias=entry.alias,
            command=entry.command,
            config_file=str(entry.config_file),
            include_warning=entry.include_warning,
        )
        # Its kernel is offered once its working folder is pushed and set up (work.py).
        if self.kernelspecs is not None and not record.work.holds_kernel:
            try:
                record.kernel = await asyncio.to_thread(
                    self.kernelspecs.install, record.rental, entry
                )
            except Exception:
                log.exception("rental %s: could not write its kernelspec", record.id)

    async def _remove(self, record: RentalRecord) -> None:
        if record.ssh is None and record.kernel is None:
            return
        removal_error = None
        if self.ssh is not None:
            try:
                await asyncio.to_thread(self.ssh.remove, record.id)
            except (SSHConfigError, OSError) as exc:
                shown = os_error(exc) if isinstance(exc, OSError) else str(exc)
                removal_error = (
                    f"Its SSH entry {self.ssh.entry_file(record.id)} could not be removed: "
                    f"{shown}. Delete it yourself, or it is tried again at the next restart."
                )
                log.warning("rental %s: %s", record.id, removal_error)
        if self.kernelspecs is not None:
            try:
                await asyncio.to_thread(self.kernelspecs.remove, record.id)
            except Exception:
                log.exception("rental %s: could not remove its kernelspec", record.id)
        # A failed removal stays on the rental (its phase says so); the alias points nowhere.
        record.ssh = SSHInfo(error=removal_error) if removal_error else None
        record.ssh_target = None
        record.kernel = None

    async def sweep(self, listed: list[Rental], records: list[RentalRecord]) -> None:
        """Remove the kernelspecs left by rentals that stopped while nothing watched them.

        Only after a successful list, and only those whose rental is known to be over: listed
        as stopped or failed, or tracked here and over. A spec of a rental this process knows
        nothing of (another account's, a kernel renting by itself) is none of its business.
        """
        if self.kernelspecs is None:
            return
        over = {rental.id for rental in listed if rental.is_final}
        over.update(record.id for record in records if not record.watched)
        try:
            installed = await asyncio.to_thread(self.kernelspecs.installed)
            for rental_id in sorted(set(installed.values()) & over):
                log.info("removing the kernelspec of rental %s: it is over", rental_id)
                await asyncio.to_thread(self.kernelspecs.remove, rental_id)
        except OSError as exc:
            log.warning("gpuoutlet: could not sweep the kernelspecs of ended rentals: %s", exc)


def os_error(exc: OSError) -> str:
    """``No such file or directory: '<path>'`` (what failed, without a traceback)."""
    text = exc.strerror or type(exc).__name__
    return f"{text}: {exc.filename!r}" if exc.filename else text
