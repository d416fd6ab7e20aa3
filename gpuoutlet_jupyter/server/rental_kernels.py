"""The kernels of a rental that ended: shut down by the server, with their sessions, never restarted.

A rental's kernel runs on its machine; when the rental stops (or fails, or the API no longer
reports it) the machine is gone and the kernel with it. The provisioner stops the server's
restarter as soon as its connection tells it (kernel/provisioner.py), so no "Kernel Restarting"
and no restart that could only fail; this hook, run by RentalService once the rental has ended
(``RentalHooks.ended``), then shuts the kernels down and deletes their sessions, so a notebook
does not get a dead session back at every page load. The notebook says why (the labextension).
"""

from __future__ import annotations

import logging
from typing import Any

from ..kernel.specs import KERNEL_PREFIX, kernel_name_for
from ..service.record import RentalRecord
from ..ssh import SSHConfigError

log = logging.getLogger(__name__)


class RentalKernels:
    """The server's kernels, by rental: ``ended`` is a ``RentalHooks.ended`` hook."""

    def __init__(self, kernel_manager: Any, session_manager: Any = None) -> None:
        self._kernels = kernel_manager
        self._sessions = session_manager

    def of(self, rental_id: str) -> list[str]:
        """The ids of the server's kernels that run on the rental."""
        try:
            name = kernel_name_for(rental_id)
        except SSHConfigError:
            return []  # no kernelspec could ever be written for such an id
        found = []
        for kernel_id in list(self._kernels.list_kernel_ids()):
            try:
                kernel = self._kernels.get_kernel(kernel_id)
            except KeyError:
                continue  # shut down meanwhile
            provisioner = getattr(kernel, "provisioner", None)
            kernel_name = getattr(kernel, "kernel_name", "")
            if getattr(provisioner, "rental_id", None) == rental_id or (
                isinstance(kernel_name, str)
                and kernel_name.startswith(KERNEL_PREFIX)
                and kernel_name == name
            ):
                found.append(kernel_id)
        return found

    async def ended(self, record: RentalRecord) -> None:
        """Shut down the rental's kernels and delete their sessions (no restart is tried)."""
        for kernel_id in self.of(record.id):
            try:
                await self._shut_down(record, kernel_id)
            except Exception:
                # One kernel that will not go must not keep the others (or the service) back.
                log.exception(
                    "rental %s ended: could not shut down kernel %s", record.id, kernel_id
                )

    async def _shut_down(self, record: RentalRecord, kernel_id: str) -> None:
        try:
            kernel = self._kernels.get_kernel(kernel_id)
        except KeyError:
            return
        provisioner = getattr(kernel, "provisioner", None)
        end_with_rental = getattr(provisioner, "end_with_rental", None)
        if callable(end_with_rental):
            end_with_rental()  # no restart, and the kernel says why it died
        sessions = await self._sessions_of(kernel_id)
        for session in sessions:
            # Deleting the session shuts its kernel down too.
            await self._sessions.delete_session(session["id"])
        if kernel_id in self._kernels:
            await self._kernels.shutdown_kernel(kernel_id, now=True)
        where = ", ".join(str(s.get("path")) for s in sessions) or "no notebook"
        log.info(
            "rental %s ended (%s): shut down its kernel %s (%s)",
            record.id,
            "gone" if record.gone else record.rental.status,
            kernel_id,
            where,
        )

    async def _sessions_of(self, kernel_id: str) -> list[dict[str, Any]]:
        if self._sessions is None:
            return []
        sessions = await self._sessions.list_sessions()
        return [s for s in sessions if (s.get("kernel") or {}).get("id") == kernel_id]
