"""What the Jupyter server's kernels on each rental are doing: the idle auto-stop's evidence."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..kernel.specs import kernel_name_for
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

    def __call__(self, rental_id: str) -> KernelActivity:
        try:
            name = kernel_name_for(rental_id)
        except SSHConfigError:
            return NO_KERNELS  # an id no kernelspec could be written for: no kernels on it
        kernels = busy = 0
        last: float | None = None
        for kernel_id in list(self._kernels.list_kernel_ids()):
            try:
                kernel = self._kernels.get_kernel(kernel_id)
            except KeyError:
                continue  # shut down since the list was read
            if getattr(kernel, "kernel_name", None) != name:
                continue
            kernels += 1
            if getattr(kernel, "execution_state", None) == "busy":
                busy += 1
            when = getattr(kernel, "last_activity", None)
            if isinstance(when, datetime):
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                last = when.timestamp() if last is None else max(last, when.timestamp())
        return KernelActivity(kernels=kernels, busy=busy, last_activity=last)
