"""A rental's idle auto-stop as the service reported it (``idleStop`` in its JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .text import number, parse_time


@dataclass(frozen=True)
class IdleStop:
    """A rental's idle auto-stop, as the service reported it (``idleStop`` in its JSON)."""

    #: Idle time after which the Jupyter server stops the rental.
    minutes: float
    #: The warning is shown this long before the stop.
    warn_minutes: float
    #: Last execution or busy state of one of its remote kernels, the last keep, or its start.
    last_active_at: datetime | None
    stop_at: datetime | None
    #: Seconds to the stop when the reply was made; None until the rental runs.
    seconds_left: float | None
    #: Show the warning, with a "Keep it" button.
    warning: bool
    kernels: int
    busy_kernels: int

    @classmethod
    def from_json(cls, data: Any) -> IdleStop | None:
        """None for a rental without idle stop (or a reply from a server that has none)."""
        if not isinstance(data, dict):
            return None
        minutes = number(data.get("minutes"))
        if minutes is None:
            return None
        return cls(
            minutes=minutes,
            warn_minutes=number(data.get("warnMinutes")) or 0.0,
            last_active_at=parse_time(data.get("lastActiveAt")),
            stop_at=parse_time(data.get("stopAt")),
            seconds_left=number(data.get("secondsLeft")),
            warning=data.get("warning") is True,
            kernels=int(number(data.get("kernels")) or 0),
            busy_kernels=int(number(data.get("busyKernels")) or 0),
        )
