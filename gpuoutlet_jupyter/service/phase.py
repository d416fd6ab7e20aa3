"""The one-line, human `phase` message of a rental, derived from what the service knows."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ..api import format_cents
from ..api.models import STOP_NOTICE
from .record import RentalRecord

__all__ = ["STOP_NOTICE", "describe"]


def describe(record: RentalRecord, *, max_polls: int, now: float | None = None) -> str:
    """What is happening to this rental now, and what (if anything) the user should do."""
    rental = record.rental
    status = rental.status
    # Once it is over, an SSH error can only be a failed removal of its entry.
    left_over = ""
    if not record.watched and record.ssh is not None and record.ssh.error:
        left_over = f" {record.ssh.error}"
    if record.gone:
        removed = (
            "its kernel was removed." if left_over else "its SSH entry and kernel were removed."
        )
        return (
            f"The rentals API no longer reports this rental; {removed} Check your gpuoutlet "
            f"account if you think it is still running.{left_over}"
        )
    if status == "provisioning":
        text = _provisioning(record, max_polls=max_polls, now=now)
    elif status == "running":
        if record.ssh is None:
            text = "Running: writing the SSH entry."
        elif record.ssh.error:
            text = (
                f"Running, but no SSH entry was written: {record.ssh.error} The rental is "
                "billed; stop it if you cannot use it."
            )
        else:
            text = f"Running: connect with `{record.ssh.command}`."
        text += _idle(record)
    elif status == "failed":
        text = (
            f"Failed: {rental.error or 'the API gave no reason'}. gpuoutlet refunds a failed "
            "rental."
        )
    elif status == "stopping":
        text = "Stopping: the pod and its disk are being destroyed."
        if record.stop_reason == "idle":
            text = (
                f"Stopping: idle for {record.idle_stop_minutes:g} min (idle auto-stop); the "
                "pod and its disk are being destroyed."
            )
        text += _settled(record)
    elif status == "stopped":
        text = "Stopped: the pod and its disk are gone."
        if record.stop_reason == "idle":
            text = (
                f"Stopped by the idle auto-stop: no kernel on it ran anything for "
                f"{record.idle_stop_minutes:g} min."
            )
        text += _settled(record)
    else:
        text = f"Status {status!r} (not known to this version of gpuoutlet-jupyter)."
    if record.upstream_error and record.watched:
        text += f" The last poll failed, retrying: {record.upstream_error}"
    return text + left_over


def _provisioning(record: RentalRecord, *, max_polls: int, now: float | None) -> str:
    """Progress against gpuoutlet's own estimate, in time (not in polls)."""
    started = record.provision_started_at or record.rental.started_at.timestamp()
    elapsed = max(0.0, (time.time() if now is None else now) - started)
    so_far = _clock(elapsed)
    estimate = record.quote.estimated_provision_seconds if record.quote else None
    if estimate is None:
        text = f"Provisioning: {so_far} so far (gpuoutlet says 20–60 s is usual)."
    elif elapsed <= estimate:
        text = (
            f"Provisioning: about {_clock(estimate - elapsed)} left of the ~{_clock(estimate)} "
            "gpuoutlet expects."
        )
    else:
        text = (
            f"Provisioning: taking longer than the ~{_clock(estimate)} gpuoutlet expected "
            f"({so_far} so far)."
        )
    if record.polls >= max_polls:
        text += (
            " Still watching, more slowly. It is not billed until it runs, but its first hour "
            "stays reserved: stop it if you no longer need it."
        )
    return text


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{secs} s"


def _settled(record: RentalRecord) -> str:
    stop = record.stop
    if stop is None or stop.already_stopped:
        cost = record.rental.total_charged_cents
        return f" It cost {format_cents(cost)} in all." if cost is not None else ""
    text = f" It cost {format_cents(stop.final_charged_cents)} in all"
    if stop.refunded_cents:
        text += f"; {format_cents(stop.refunded_cents)} was refunded (it ran under a minute)"
    return text + "."


def _idle(record: RentalRecord) -> str:
    """The idle auto-stop's part of a running rental's phase."""
    minutes = record.idle_stop_minutes
    if minutes and not record.decided_here:
        return (
            f" Its idle stop ({minutes:g} min) is decided by another Jupyter server of yours, "
            "the one that set it; kernels on it here count as activity."
        )
    if not minutes or record.idle_stop_at is None:
        return ""
    if record.idle_warned_at is None:
        return f" Stops after {minutes:g} min with no kernel running anything on it."
    at = datetime.fromtimestamp(record.idle_stop_at, timezone.utc).strftime("%H:%M:%S UTC")
    return (
        f" Idle: it will be stopped at {at} unless a kernel on it runs something (a stop "
        f"destroys the pod and its disk). Keep it (the sidebar's or widget's button, or "
        f"%gpu_keep {record.id}) to wait another {minutes:g} min."
    )
