"""What the service knows about one rental: the API's last word plus what it did about it."""

from __future__ import annotations

import math
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
    # The process that decides its idle stop (see service/owners.py): the one that created the
    # rental or last set its idle stop, or that took it over from one that ended. None: nobody
    # yet (made elsewhere, or saved by a version without owners).
    owner: str | None = None
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
    # Not persisted: whether this process changed it (its settings) since its last save, so a
    # save writes this process's view of what it changed and nothing else (see store.py).
    changed: bool = field(default=False, compare=False, repr=False)
    settings_changed: bool = field(default=False, compare=False, repr=False)
    # Whether this process decides its idle stop (its owner is this process); set by the service.
    decided_here: bool = field(default=True, compare=False, repr=False)

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
        # Only the process that owns the idle stop times it (see service/owners.py).
        timing = self.rental.status == "running" and self.watched and self.decided_here
        stop_at = self.idle_stop_at if timing else None
        return {
            "minutes": self.idle_stop_minutes,
            "decidedHere": self.decided_here,
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
            "owner": self.owner,
            "lastActiveAt": self.last_active_at,
            "stopReason": self.stop_reason,
            "endedAt": self.ended_at,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> RentalRecord:
        """Inverse of `to_state`; raises on a record that cannot be read (see `from_saved`)."""
        return cls.from_saved(data)[0]

    @classmethod
    def from_saved(cls, data: Any) -> tuple[RentalRecord, list[str]]:
        """A record from the state file, and what of it had to be ignored.

        The file may be damaged, or edited by hand: a record without a readable rental raises
        (the caller skips it). Any other member that is not what it must be is ignored (as if
        it were absent) and named: they are what this process noted about the rental, and the
        next poll notes them again.
        """
        if not isinstance(data, dict):
            raise TypeError(f"a record must be a JSON object, not {type(data).__name__}")
        rental = Rental.model_validate(data.get("rental"))
        ignored: list[str] = []

        def take(name: str, check: Any, default: Any = None) -> Any:
            value = data.get(name)
            if value is None:
                return default
            checked = check(value)
            if checked is None:
                shown = repr(value)
                shown = shown if len(shown) <= 40 else shown[:40] + "…"
                ignored.append(f"{name} {shown} is not usable; ignored")
                return default
            return checked

        ssh = take("ssh", _ssh_info)
        return (
            cls(
                rental=rental,
                version=take("version", _count, 0),
                phase=take("phase", _text, ""),
                created_here=take("createdHere", _flag, True),
                polls=take("polls", _count, 0),
                gone=take("gone", _flag, False),
                ssh=ssh,
                ssh_target=take("sshTarget", _target),
                kernel=take("kernel", _text),
                idle_stop_minutes=take("idleStopMinutes", _minutes),
                owner=take("owner", _text),
                last_active_at=take("lastActiveAt", _epoch),
                stop_reason=take("stopReason", _text),
                ended_at=take("endedAt", _epoch),
            ),
            ignored,
        )


#: Latest epoch second accepted from the state file (the year 9999): beyond it, no date.
_MAX_EPOCH = 253_402_300_799.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and 0 <= number < 2**53 else None


def _epoch(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and 0 <= number <= _MAX_EPOCH else None


def _minutes(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _target(value: Any) -> tuple[str, int] | None:
    if not (isinstance(value, list) and len(value) == 2):
        return None
    host, port = value
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        return None
    return host, port


def _ssh_info(value: Any) -> SSHInfo | None:
    if not isinstance(value, dict):
        return None
    members = ("alias", "command", "configFile", "error", "includeWarning")
    if any(value.get(name) is not None and not isinstance(value[name], str) for name in members):
        return None
    return SSHInfo.from_json(value)


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
