"""What the Jupyter server's kernels on each rental are doing: the idle auto-stop's evidence."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any

from ..kernel.specs import KERNEL_PREFIX, kernel_name_for
from ..service.idle import NO_KERNELS, KernelActivity
from ..ssh import SSHConfigError


class KernelManagerActivity:
    """Reads the server's kernel manager, which follows every kernel's IOPub messages.

    jupyter_server updates a kernel's `last_activity` on each message but its own bookkeeping
    (kernel_info, comm_info…) and keeps `execution_state` from the status messages: the same
    evidence its own idle-kernel culler uses.
    """

    def __init__(self, kernel_manager: Any) -> None:
        self._kernels = kernel_manager

    def __call__(self, rental_ids: Collection[str]) -> dict[str, KernelActivity]:
        # One pass over the kernels whatever the number of rentals: a look stays O(kernels).
        by_name: dict[str, KernelActivity] = {}
        for kernel_id in list(self._kernels.list_kernel_ids()):
            try:
                kernel = self._kernels.get_kernel(kernel_id)
            except KeyError:
                continue  # shut down since the list was read
            name = getattr(kernel, "kernel_name", None)
            if not isinstance(name, str) or not name.startswith(KERNEL_PREFIX):
                continue
            by_name[name] = _add(by_name.get(name, NO_KERNELS), kernel)
        return {rental_id: by_name.get(_name(rental_id), NO_KERNELS) for rental_id in rental_ids}


def _name(rental_id: str) -> str:
    try:
        return kernel_name_for(rental_id)
    except SSHConfigError:
        return ""  # an id no kernelspec could be written for: no kernels on it


def _add(activity: KernelActivity, kernel: Any) -> KernelActivity:
    """`activity` plus one kernel."""
    last = activity.last_activity
    when = getattr(kernel, "last_activity", None)
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        last = when.timestamp() if last is None else max(last, when.timestamp())
    busy = getattr(kernel, "execution_state", None) == "busy"
    return KernelActivity(
        kernels=activity.kernels + 1, busy=activity.busy + int(busy), last_activity=last
    )
