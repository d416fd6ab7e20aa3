"""What the service knows about one rental: the API's last word plus what it did about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api import Rental


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
        self.published = self.to_json()
        self.published_rental = self.rental

    def view(self) -> dict[str, Any]:
        """The last announced state, with the cost so far brought up to now."""
        if self.published is None or self.published_rental is None:
            return self.to_json()
        return {**self.published, "costCents": self.published_rental.cost_cents()}

    def to_json(self) -> dict[str, Any]:
        """The REST shape: the API's fields, plus version, phase, ssh, kernel, watch state, cost."""
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
                # Cost so far at the locked rate, so every viewer shows the same amount.
                "costCents": self.rental.cost_cents(),
            }
        )
        return data

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
        )
