"""A rental's view with its clocks brought up to now: idle seconds left, time provisioning."""

from __future__ import annotations

import time
from typing import Any


def brought_up_to_now(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot with its clocks computed now (the epochs are ours): idle seconds left, time
    spent provisioning, the stop's ISO time."""
    now = time.time()
    data = dict(snapshot)
    idle = data.get("idleStop")
    if idle is not None:
        idle = dict(idle)
        stop_at = idle.pop("stopAtEpoch", None)
        idle["secondsLeft"] = None if stop_at is None else round(max(0.0, stop_at - now), 1)
        data["idleStop"] = idle
    provisioning = data.get("provisioning")
    if provisioning is not None:
        provisioning = dict(provisioning)
        started = provisioning.pop("startedAtEpoch")
        provisioning["elapsedSeconds"] = round(max(0.0, now - started), 1)
        data["provisioning"] = provisioning
    stop = data.get("stop")
    if stop is not None:
        stop = dict(stop)
        stop.pop("requestedAtEpoch", None)
        data["stop"] = stop
    return data
