"""Idle auto-stop: the setting on a create, the activity of a rental's kernels, the timer's rule."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from ..api import RequestValidationError

#: The create body's member (ours, never sent upstream).
IDLE_FIELD = "idleStopMinutes"
#: The create (and keep) body's member for the GPU-aware idle stop (ours too).
GPU_FIELD = "idleGpuUtil"
#: What a GPU threshold without an idle stop is told.
NEEDS_IDLE_STOP = (
    "needs an idle stop: the GPUs' utilisation only decides when an idle rental is stopped. "
    "Give idleStopMinutes (--idle-stop MINUTES) too"
)
#: Longest idle stop accepted: a week. Longer is a typo, and `autoStopAfterHours` exists.
MAX_IDLE_MINUTES = 7 * 24 * 60.0
#: What the in-process host says when asked for an idle stop it cannot honour (a predicate of
#: the field's name, as every validation problem is).
NEEDS_SERVER = (
    "cannot be used here: idle auto-stop needs the Jupyter server, which runs the rental's "
    "remote kernels and so sees whether they are busy; this kernel rents by itself. Start "
    "JupyterLab or Jupyter Server with gpuoutlet-jupyter installed, or cap the rental with "
    "--auto-stop HOURS instead"
)


@dataclass(frozen=True)
class KernelActivity:
    """What the kernels running on one rental have been doing, as the Jupyter server sees it."""

    kernels: int = 0
    #: Kernels mid-execution: while any is, the rental is never idle.
    busy: int = 0
    #: The last time (epoch seconds) one of them executed something or was busy; None: never.
    last_activity: float | None = None


NO_KERNELS = KernelActivity()


class ActivitySource(Protocol):
    """The host's view of the rentals' kernels (the server's kernel manager knows them)."""

    def __call__(self, rental_ids: Collection[str]) -> dict[str, KernelActivity]:
        """The activity of the kernels on each of these rentals (all of them in one look)."""


def default_idle_minutes(configured: float, *, can_judge: bool) -> float | None:
    """The idle stop a create gets when it says nothing: the host's default (0 there means
    off, not an idle stop of 0 minutes), and none where no kernels can be judged."""
    return configured if configured > 0 and can_judge else None


def parse_idle_minutes(value: Any, *, field: str = IDLE_FIELD) -> float | None:
    """A requested idle stop: None (not given), 0 (off) or minutes; anything else is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RequestValidationError([(field, f"must be a number of minutes (got {value!r})")])
    try:
        minutes = float(value)
    except ValueError:
        raise RequestValidationError(
            [(field, f"must be a number of minutes (got {value!r})")]
        ) from None
    if not math.isfinite(minutes) or minutes < 0 or minutes > MAX_IDLE_MINUTES:
        raise RequestValidationError(
            [
                (
                    field,
                    f"must be from 0 (no idle stop) to {MAX_IDLE_MINUTES:g} minutes "
                    f"(got {value!r})",
                )
            ]
        )
    return minutes


def parse_gpu_util(value: Any, *, field: str = GPU_FIELD) -> float | None:
    """A requested GPU threshold: None (not given), 0 (GPUs do not count) or a percentage."""
    if value is None:
        return None
    number: float | None = None
    if not isinstance(value, bool) and isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0 <= number <= 100:
        raise RequestValidationError(
            [(field, f"must be a GPU utilisation from 0 (off) to 100 percent (got {value!r})")]
        )
    return number


@dataclass(frozen=True)
class IdleDecision:
    """Where a rental stands on its idle timer at one moment."""

    last_active: float
    #: When it is stopped if nothing runs (never before its warning has been shown long enough).
    stop_at: float
    warning: bool
    #: When the warning was first shown (None: not shown).
    warned_at: float | None
    stop_now: bool


def decide(
    *,
    minutes: float,
    warn_minutes: float,
    last_active: float,
    warned_at: float | None,
    activity: KernelActivity,
    now: float,
) -> IdleDecision:
    """Apply the rule: idle for `minutes` after a warning shown for `warn_minutes` → stop.

    A busy kernel counts as activity now; the warning never lasts less than its time, even when
    the idle time was already over (say, after the server was down): nobody is surprised.
    """
    if activity.busy:
        last_active = now
    elif activity.last_activity is not None:
        last_active = max(last_active, activity.last_activity)
    idle = minutes * 60
    warn = min(warn_minutes * 60, idle)
    stop_at = last_active + idle
    if now < stop_at - warn:
        return IdleDecision(last_active, stop_at, False, None, False)
    warned_at = now if warned_at is None else warned_at
    stop_at = max(stop_at, warned_at + warn)
    return IdleDecision(last_active, stop_at, True, warned_at, now >= stop_at)


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``…Z``), as the rentals API writes its times."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")
