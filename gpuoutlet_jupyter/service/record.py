"""What the service knows about one rental: the API's last word plus what it did about it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..api import Rental
from .idle import iso


@dataclass
class SSHInfo:
    """The SSH step's outcome: an alias to use, or the reason none was written."""

    alias: str | None = None
    command: str | None = None
    config_file: str | None = None
    error: str | None = None
    include_warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `ssh` member of a rental's JSON; empty members left out."""
        data = {
            "alias": self.alias,
            "command": self.command,
            "configFile": self.config_file,
            "error": self.error,
            "includeWarning": self.include_warning,
        }
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SSHInfo:
        """Inverse of `to_json`."""
        return cls(
            alias=data.get("alias"),
            command=data.get("command"),
            config_file=data.get("configFile"),
            error=data.get("error"),
            include_warning=data.get("includeWarning"),
        )


@dataclass
class RentalRecord:
    """One tracked rental. `version` grows on every change a viewer could see."""

    rental: Rental
    version: int
    phase: str
    created_here: bool = True
    polls: int = 0
    # The last transient upstream error while watching (cleared by the next good poll).
    upstream_error: str | None = None
    # The API stopped reporting this rental (404 on a poll, or absent from the list).
    gone: bool = False
    ssh: SSHInfo | None = None
    # The host and port the SSH entry was written for, so a change is noticed and rewritten.
    ssh_target: tuple[str, int] | None = None
    kernel: str | None = None
    # Idle auto-stop, in minutes (None: off). Set at create, or changed with "keep it".
    idle_stop_minutes: float | None = None
    # Epoch seconds: when one of its kernels last ran something, it was kept, or it came up.
    last_active_at: float | None = None
    # Not persisted: a restarted server shows the warning afresh before it stops anything.
    idle_warned_at: float | None = field(default=None, compare=False)
    idle_stop_at: float | None = field(default=None, compare=False)
    idle_kernels: int = field(default=0, compare=False)
    idle_busy: int = field(default=0, compare=False)
    # The service's warning time (a setting, so not persisted with the rental).
    idle_warn_minutes: float = field(default=5.0, compare=False)
    # Why the service stopped it ("idle"), when it was the service.
    stop_reason: str | None = None
    # Epoch seconds it ended (stopped, failed or gone): the API's stoppedAt, else when the
    # service saw it end. The seed does not document stoppedAt: without this, the cost so far of
    # an ended rental would grow for ever.
    ended_at: float | None = None
    # What viewers see: a snapshot taken when a change is announced, so that nobody reads a
    # record half-way through an update (status already running, phase not yet rewritten).
    published: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    published_rental: Rental | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        """The rental id."""
        return self.rental.id

    @property
    def watched(self) -> bool:
        """Whether the service still polls it: anything not final and not gone may cost money."""
        return not self.rental.is_final and not self.gone

    def publish(self) -> None:
        """Take the snapshot viewers read (see `view`)."""
        self.published = self._snapshot()
        self.published_rental = self.rental

    def view(self) -> dict[str, Any]:
        """The last announced state, with the cost so far brought up to now."""
        if self.published is None or self.published_rental is None:
            return self.to_json()
        return _brought_up_to_now(self.published, self.published_rental, self.ended_at)

    def to_json(self) -> dict[str, Any]:
        """The REST shape: the API's fields, plus version, phase, ssh, kernel, watch state, cost."""
        return _brought_up_to_now(self._snapshot(), self.rental, self.ended_at)

    def cost_cents(self) -> int:
        """Cost so far at the locked rate, up to now or to when it ended."""
        return _cost(self.rental, self.ended_at)

    def mark_ended(self, now: float) -> None:
        """Note when it ended, once: the API's stoppedAt, else `now`."""
        if self.ended_at is None and (self.rental.is_final or self.gone):
            stopped = self.rental.stopped_at
            self.ended_at = stopped.timestamp() if stopped is not None else now

    def _snapshot(self) -> dict[str, Any]:
        """`to_json` before the time-dependent members (cost, idle seconds left) are computed."""
        data = self.rental.model_dump(mode="json", by_alias=True)
        data.update(
            {
                "version": self.version,
                "phase": self.phase,
                "polls": self.polls,
                "upstreamError": self.upstream_error,
                "gone": self.gone,
                "createdHere": self.created_here,
                "ssh": self.ssh.to_json() if self.ssh else None,
                "kernel": self.kernel,
                "idleStop": self._idle_json(),
                "stopReason": self.stop_reason,
                "endedAt": iso(self.ended_at),
            }
        )
        return data

    def _idle_json(self) -> dict[str, Any] | None:
        if not self.idle_stop_minutes:
            return None
        timing = self.rental.status == "running" and self.watched
        stop_at = self.idle_stop_at if timing else None
        return {
            "minutes": self.idle_stop_minutes,
            "warnMinutes": min(self.idle_warn_minutes, self.idle_stop_minutes),
            "lastActiveAt": iso(self.last_active_at) if timing else None,
            "stopAt": iso(stop_at),
            "stopAtEpoch": stop_at,
            "warning": timing and self.idle_warned_at is not None,
            "kernels": self.idle_kernels if timing else 0,
            "busyKernels": self.idle_busy if timing else 0,
        }

    def to_state(self) -> dict[str, Any]:
        """What is persisted: enough to resume watching after a restart."""
        return {
            "rental": self.rental.model_dump(mode="json", by_alias=True),
            "version": self.version,
            "phase": self.phase,
            "createdHere": self.created_here,
            "polls": self.polls,
            "gone": self.gone,
            "ssh": self.ssh.to_json() if self.ssh else None,
            "sshTarget": list(self.ssh_target) if self.ssh_target else None,
            "kernel": self.kernel,
            "idleStopMinutes": self.idle_stop_minutes,
            "lastActiveAt": self.last_active_at,
            "stopReason": self.stop_reason,
            "endedAt": self.ended_at,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> RentalRecord:
        """Inverse of `to_state`."""
        ssh = data.get("ssh")
        target = data.get("sshTarget")
        return cls(
            rental=Rental.model_validate(data["rental"]),
            version=int(data.get("version", 0)),
            phase=str(data.get("phase", "")),
            created_here=bool(data.get("createdHere", True)),
            polls=int(data.get("polls", 0)),
            gone=bool(data.get("gone", False)),
            ssh=SSHInfo.from_json(ssh) if isinstance(ssh, dict) else None,
            ssh_target=(str(target[0]), int(target[1])) if isinstance(target, list) else None,
            kernel=data.get("kernel"),
            idle_stop_minutes=_float_or_none(data.get("idleStopMinutes")),
            last_active_at=_float_or_none(data.get("lastActiveAt")),
            stop_reason=data.get("stopReason"),
            ended_at=_float_or_none(data.get("endedAt")),
        )


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cost(rental: Rental, ended_at: float | None) -> int:
    end = None if ended_at is None else datetime.fromtimestamp(ended_at, timezone.utc)
    return rental.cost_cents(now=end)


def _brought_up_to_now(
    snapshot: dict[str, Any], rental: Rental, ended_at: float | None
) -> dict[str, Any]:
    """A snapshot with its cost so far and idle seconds left computed now (the epoch is ours)."""
    # Cost so far at the locked rate, so every viewer shows the same amount.
    data = {**snapshot, "costCents": _cost(rental, ended_at)}
    idle = data.get("idleStop")
    if idle is not None:
        idle = dict(idle)
        stop_at = idle.pop("stopAtEpoch", None)
        left = None if stop_at is None else round(max(0.0, stop_at - time.time()), 1)
        idle["secondsLeft"] = left
        data["idleStop"] = idle
    return data
