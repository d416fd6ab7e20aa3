"""The one-line, human `phase` message of a rental, derived from what the service knows."""

from __future__ import annotations

from datetime import datetime, timezone

from .record import RentalRecord


def describe(record: RentalRecord, *, max_polls: int, poll_interval: float) -> str:
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
        if record.polls >= max_polls:
            minutes = max_polls * poll_interval / 60
            text = (
                f"Not ready after {minutes:g} minutes; still watching, more slowly. It may be "
                "billed while it provisions: stop it if you no longer need it."
            )
        elif record.polls == 0:
            text = "Provisioning: the provider is allocating a machine."
        else:
            text = f"Provisioning: waiting for the pod's SSH daemon (poll {record.polls} of ~{max_polls})."
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
        text = f"Failed: {rental.error or 'the API gave no reason'}."
    elif status == "stopping":
        text = "Stopping: the pod is being torn down."
        if record.stop_reason == "idle":
            text = f"Stopping: idle for {record.idle_stop_minutes:g} min (idle auto-stop)."
    elif status == "stopped":
        text = "Stopped."
        if record.stop_reason == "idle":
            text = (
                f"Stopped by the idle auto-stop: no kernel on it ran anything for "
                f"{record.idle_stop_minutes:g} min. Nothing more is billed."
            )
    else:
        text = f"Status {status!r} (not known to this version of gpuoutlet-jupyter)."
    if record.upstream_error and record.watched:
        text += f" The last poll failed, retrying: {record.upstream_error}"
    return text + left_over


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
        f" Idle: it will be stopped at {at} unless a kernel on it runs something. Keep it "
        f"(the sidebar's or widget's button, or %gpu_keep {record.id}) to wait another "
        f"{minutes:g} min."
    )
