"""What the service knows about one rental: the API's last word plus what it did about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api import Preview, Rental, StopResult
from .clocks import brought_up_to_now
from .idle import iso
from .values import count as _count
from .values import epoch as _epoch
from .values import flag as _flag
from .values import minutes as _minutes
from .values import text as _text
from .work import WorkInfo


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


@dataclass(frozen=True)
class QuoteInfo:
    """The ``rentals/preview`` quote a create was made on."""

    price_per_hour_cents: int
    estimated_provision_seconds: float
    provider_code: str | None = None
    region: str | None = None
    model: str | None = None
    listing_id: str | None = None

    @classmethod
    def from_preview(cls, preview: Preview) -> QuoteInfo:
        listing = preview.matched_listing
        return cls(
            price_per_hour_cents=preview.price_per_hour_cents,
            estimated_provision_seconds=preview.estimated_provision_seconds,
            provider_code=listing.provider_code if listing else None,
            region=listing.region if listing else None,
            model=listing.model if listing else None,
            listing_id=listing.id if listing else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pricePerHourCents": self.price_per_hour_cents,
            "estimatedProvisionSeconds": self.estimated_provision_seconds,
            "providerCode": self.provider_code,
            "region": self.region,
            "model": self.model,
            "listingId": self.listing_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuoteInfo:
        return cls(
            price_per_hour_cents=int(data["pricePerHourCents"]),
            estimated_provision_seconds=float(data["estimatedProvisionSeconds"]),
            provider_code=data.get("providerCode"),
            region=data.get("region"),
            model=data.get("model"),
            listing_id=data.get("listingId"),
        )


@dataclass(frozen=True)
class StopInfo:
    """The API's answer to our stop: what the rental cost in all, and what was refunded."""

    final_charged_cents: int
    refunded_cents: int
    #: Epoch seconds the stop was asked for.
    requested_at: float
    #: The API said it was stopped already (a second stop): nothing was done, nothing charged.
    already_stopped: bool = False

    @classmethod
    def from_result(cls, result: StopResult, now: float) -> StopInfo:
        return cls(result.final_charged_cents, result.refunded_cents, now)

    def to_json(self) -> dict[str, Any]:
        return {
            "finalChargedCents": self.final_charged_cents,
            "refundedCents": self.refunded_cents,
            "requestedAt": iso(self.requested_at),
            "requestedAtEpoch": self.requested_at,
            "alreadyStopped": self.already_stopped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StopInfo:
        return cls(
            final_charged_cents=int(data["finalChargedCents"]),
            refunded_cents=int(data.get("refundedCents") or 0),
            requested_at=float(data.get("requestedAtEpoch") or 0.0),
            already_stopped=bool(data.get("alreadyStopped")),
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
    # The template it was created with (the API does not echo it on the rental).
    template_id: str | None = None
    # The quote it was created on (None: made elsewhere).
    quote: QuoteInfo | None = None
    # Epoch seconds provisioning began as this process saw it: the create, or first sight.
    provision_started_at: float | None = None
    # Our stop and the API's answer to it.
    stop: StopInfo | None = None
    # Idle auto-stop, in minutes (None: off). Set at create, or changed with "keep it".
    idle_stop_minutes: float | None = None
    # GPU utilisation (percent) that counts as activity for the idle stop (None: GPUs do not).
    idle_gpu_util: float | None = None
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
    # What the idle stop last saw of its GPUs: the peak utilisation, or why it could not see.
    idle_gpu: tuple[float | None, str | None] = field(default=(None, None), compare=False)
    # The service's warning time (a setting, so not persisted with the rental).
    idle_warn_minutes: float = field(default=5.0, compare=False)
    # Why the service stopped it ("idle"), when it was the service.
    stop_reason: str | None = None
    # Epoch seconds it ended (stopped, failed or gone): the API's stoppedAt, else when the
    # service saw it end.
    ended_at: float | None = None
    # Its work on the pod: save paths, saves, the transfer now, the working folder (work.py).
    work: WorkInfo = field(default_factory=WorkInfo)
    # Epoch seconds the rentals API last gave its word on it (a poll, the list, a create or a
    # stop): how old what is shown is. Not a change viewers are woken for (see ``view``).
    checked_at: float | None = None
    # What viewers see: a snapshot taken when a change is announced, so that nobody reads a
    # record half-way through an update (status already running, phase not yet rewritten).
    published: dict[str, Any] | None = field(default=None, compare=False, repr=False)
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

    @property
    def announced(self) -> bool:
        """Whether viewers have been told of it (its first update is done)."""
        return self.published is not None

    def publish(self) -> None:
        """Take the snapshot viewers read (see `view`)."""
        self.published = self._snapshot()

    def view(self) -> dict[str, Any]:
        """The last announced state, with its clocks (idle, provisioning) brought up to now,
        and when the API last confirmed it (a poll that changed nothing announces nothing)."""
        data = brought_up_to_now(self.published or self._snapshot())
        data["checkedAt"] = iso(self.checked_at)
        return data

    def to_json(self) -> dict[str, Any]:
        """The REST shape of the current state (see ``rest.models.RentalView``)."""
        return brought_up_to_now(self._snapshot())

    def cost_cents(self) -> int:
        """What it has cost, in the API's own numbers: ``totalChargedCents`` as last reported
        (a stop's settled ``finalChargedCents`` is written there), 0 while it has not run."""
        return self.rental.total_charged_cents or 0

    def mark_ended(self, now: float) -> None:
        """Note when it ended, once: the API's stoppedAt, else `now`."""
        if self.ended_at is None and (self.rental.is_final or self.gone):
            stopped = self.rental.stopped_at
            self.ended_at = stopped.timestamp() if stopped is not None else now

    def _snapshot(self) -> dict[str, Any]:
        """`to_json` before the time-dependent members (idle seconds left) are computed."""
        data = self.rental.model_dump(mode="json", by_alias=True)
        provisioning = None
        if self.rental.status == "provisioning" and self.watched:
            started = self.provision_started_at or self.rental.started_at.timestamp()
            provisioning = {
                "startedAtEpoch": started,
                "expectedSeconds": (
                    self.quote.estimated_provision_seconds if self.quote is not None else None
                ),
            }
        data.update(
            {
                "templateId": self.template_id,
                "version": self.version,
                "phase": self.phase,
                "polls": self.polls,
                "upstreamError": self.upstream_error,
                "gone": self.gone,
                "createdHere": self.created_here,
                "ssh": self.ssh.to_json() if self.ssh else None,
                "kernel": self.kernel,
                "costCents": self.cost_cents(),
                "quote": self.quote.to_json() if self.quote else None,
                "provisioning": provisioning,
                "stop": self.stop.to_json() if self.stop else None,
                "idleStop": self._idle_json(),
                "stopReason": self.stop_reason,
                "endedAt": iso(self.ended_at),
                **self.work.view(self.rental),
                "checkedAt": iso(self.checked_at),
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
            "gpuUtil": self.idle_gpu_util,
            "gpuPeak": self.idle_gpu[0] if timing and self.idle_gpu_util else None,
            "gpuProblem": self.idle_gpu[1] if timing and self.idle_gpu_util else None,
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
            "templateId": self.template_id,
            "quote": self.quote.to_json() if self.quote else None,
            "provisionStartedAt": self.provision_started_at,
            "stop": self.stop.to_json() if self.stop else None,
            "idleStopMinutes": self.idle_stop_minutes,
            "idleGpuUtil": self.idle_gpu_util,
            "owner": self.owner,
            "lastActiveAt": self.last_active_at,
            "stopReason": self.stop_reason,
            "endedAt": self.ended_at,
            "work": self.work.to_state(),
            "checkedAt": self.checked_at,
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
                template_id=take("templateId", _text),
                quote=take("quote", _quote),
                provision_started_at=take("provisionStartedAt", _epoch),
                stop=take("stop", _stop),
                idle_stop_minutes=take("idleStopMinutes", _minutes),
                idle_gpu_util=take("idleGpuUtil", _minutes),
                owner=take("owner", _text),
                last_active_at=take("lastActiveAt", _epoch),
                stop_reason=take("stopReason", _text),
                ended_at=take("endedAt", _epoch),
                work=take("work", WorkInfo.from_state, WorkInfo()),
                checked_at=take("checkedAt", _epoch),
            ),
            ignored,
        )


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


def _quote(value: Any) -> QuoteInfo | None:
    try:
        return QuoteInfo.from_json(value) if isinstance(value, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def _stop(value: Any) -> StopInfo | None:
    try:
        return StopInfo.from_json(value) if isinstance(value, dict) else None
    except (KeyError, TypeError, ValueError):
        return None
