"""Errors of saving and syncing a rental's work: each with the REST code and status it answers."""

from __future__ import annotations

from ..api import GpuOutletError


class WorkError(GpuOutletError):
    """A save or sync that cannot be done now; ``code`` and ``status`` are the REST reply's."""

    code = "work_error"
    status = 409

    def __init__(self, message: str, *, rental_id: str) -> None:
        super().__init__(message)
        self.rental_id = rental_id


class NotReachableError(WorkError):
    """The rental has no pod to reach now: not running, or no SSH entry was written for it."""

    code = "not_reachable"


class TransferRunningError(WorkError):
    """A transfer of this rental is running already: one at a time per rental."""

    code = "transfer_running"


class PodUnreachableError(WorkError):
    """The pod did not answer over SSH (a quick look such as the save's size)."""

    code = "pod_unreachable"
    status = 502


class NoTransferError(WorkError):
    """There is no transfer to cancel."""

    code = "no_transfer"
    status = 404
