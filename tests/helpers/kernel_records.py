"""Kernel records written by hand, for tests of what reads them (the board, the ended hook)."""

from __future__ import annotations

import os
import time
from typing import Any

from gpuoutlet_jupyter.kernel.records import KernelRecord, State, process_start


def a_record(
    wrapper: str, rental_id: str, *, owner_pid: int | None = None, **fields: Any
) -> KernelRecord:
    """A remote kernel's record; ``owner_pid`` 0 makes it detached (no Jupyter drives it),
    None makes this process its owner."""
    pid = os.getpid() if owner_pid is None else owner_pid
    now = time.time()
    values: dict[str, Any] = {
        "wrapper": wrapper,
        "rental_id": rental_id,
        "kernel_name": f"gpuoutlet-{rental_id}",
        "ssh_alias": f"gpuoutlet-{rental_id}",
        "ssh_config_file": "/nonexistent/config",
        "known_hosts_file": "/nonexistent/known_hosts",
        "folder": f"/tmp/gpuoutlet-kernel-{wrapper}",
        "transport": "ipc",
        "remote_ports": {},
        "key": "secret-key-" + wrapper,
        "signature_scheme": "hmac-sha256",
        "started_at": now,
        "since": now,
        "state": State.CONNECTED if pid else State.DETACHED,
        "owner_pid": pid,
        "owner_start": process_start(pid) if pid else "",
    }
    values.update(fields)
    return KernelRecord(**values)
