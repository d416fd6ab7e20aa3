"""Creates until they are settled: sent, then answered, or found again when the answer was lost.

A create is sent once and never repeated by itself: the API has no idempotency key (sheet 8),
so a second send may rent, and bill, a second pod. When the answer does not come back (a
timeout, a dropped connection, a 5xx, a garbled body) the rental may or may not exist. Until
that is settled the create stays *pending*: its price counts against the spending cap, and the
same request again waits for it instead of sending a second create. The account's newest
rentals settle it (``matching``): the one with the create's name, family and GPU count started
after it was sent (less the clocks' skew) is taken in; none means nothing was made and nothing
charged; several are all taken in (each may cost money) and the user says which to keep.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..api import (
    APIError,
    CreateAmbiguousError,
    GpuOutletError,
    MalformedResponseError,
    RateLimitedError,
    Rental,
    RentalRequest,
    ServerError,
    TransportError,
    format_cents,
)
from .idle import iso
from .record import QuoteInfo

PendingState = Literal["sending", "looking", "ambiguous"]

#: Seconds a rental's ``startedAt`` may precede the send, beyond the skew measured from the
#: API's ``Date`` header (both are whole seconds); without a measure, the clocks may differ by
#: this much.
SKEW_MARGIN = 5.0
UNKNOWN_SKEW = 300.0


def answer_lost(exc: GpuOutletError) -> bool:
    """Whether a create that failed with ``exc`` may nevertheless have made a rental."""
    if isinstance(exc, TransportError):
        return exc.sent is not False  # a connection that never opened carried nothing
    if isinstance(exc, RateLimitedError):
        return False  # counted and refused
    # A 5xx may come after the commit; a garbled 200 is a create that went through.
    return isinstance(exc, (ServerError, MalformedResponseError)) or (
        isinstance(exc, APIError) and exc.status_code >= 500
    )


@dataclass
class PendingCreate:
    """One create, from the moment it is sent until it is settled."""

    id: str
    #: As it was asked for (the name the user gave, or none): what "the same request" means.
    asked: RentalRequest
    #: As it was sent, with its name.
    request: RentalRequest
    quote: QuoteInfo
    idle: float | None
    #: Epoch seconds, our clock, just before it was sent.
    sent_at: float
    state: PendingState = "sending"
    #: Why its answer was lost.
    reason: str | None = None
    #: The rentals that match it, when there are several.
    candidates: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.request.name or ""

    def describe(self) -> str:
        """What is happening to it, in words."""
        what = f"{self.request.describe()} named {self.name}"
        if self.state == "sending":
            return f"Creating {what}: sent, waiting for gpuoutlet's answer."
        if self.state == "looking":
            return (
                f"Creating {what}: the answer was lost ({self.reason}). It was sent once and is "
                "not sent again; gpuoutlet-jupyter is looking for it among your newest rentals. "
                f"Until then its {format_cents(self.quote.price_per_hour_cents)}/h counts "
                "against the spending cap."
            )
        return self.ambiguous_error().message

    def ambiguous_error(self) -> CreateAmbiguousError:
        listed = ", ".join(self.candidates)
        return CreateAmbiguousError(
            f"The answer to the create of {self.request.describe()} named {self.name} was lost "
            f"({self.reason}), and {len(self.candidates)} rentals of that name, family and GPU "
            f"count were started since it was sent: {listed}. All are watched (each may cost "
            f"money) until you say which to keep: the sidebar asks, or run `%gpu_creates keep "
            f"{self.id} RENTAL_ID` (the others are stopped) or `%gpu_creates keep {self.id} "
            "--all`.",
            create_id=self.id,
            name=self.name,
            candidates=self.candidates,
        )

    def to_json(self) -> dict[str, Any]:
        """The REST shape (``rest.models.PendingCreateView``)."""
        return {
            "id": self.id,
            "state": self.state,
            "name": self.name,
            "familyId": self.request.family_id,
            "gpuCount": self.request.gpu_count,
            "pricePerHourCents": self.quote.price_per_hour_cents,
            "sentAt": iso(self.sent_at),
            "reason": self.reason,
            "candidates": list(self.candidates),
            "message": self.describe(),
        }


def matching(
    pending: PendingCreate,
    rentals: Iterable[Rental],
    *,
    skew: float | None,
    taken: Callable[[str], bool],
) -> list[Rental]:
    """The rentals ``pending`` may have made: its name, family and GPU count, started after it
    was sent (on the API's clock, less a margin), and not another create's (``taken``)."""
    margin = SKEW_MARGIN if skew is not None else UNKNOWN_SKEW
    since = pending.sent_at + (skew or 0.0) - margin
    request = pending.request
    return [
        rental
        for rental in rentals
        if rental.name == request.name
        and rental.family_id == request.family_id
        and rental.gpu_count == request.gpu_count
        and rental.started_at.timestamp() >= since
        and not taken(rental.id)
    ]


class PendingCreates:
    """The creates not yet settled, by id; ``changed`` tells the viewers."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self._pending: dict[str, PendingCreate] = {}
        self._changed = changed

    def open(
        self, asked: RentalRequest, request: RentalRequest, quote: QuoteInfo, idle: float | None
    ) -> PendingCreate:
        """A create about to be sent (its price counts against the cap from now on; viewers
        are told of it once its answer is lost)."""
        pending = PendingCreate(
            id=f"create_{secrets.token_hex(6)}",
            asked=asked,
            request=request,
            quote=quote,
            idle=idle,
            sent_at=time.time(),
        )
        self._pending[pending.id] = pending
        return pending

    def lost(self, pending: PendingCreate, reason: str) -> None:
        pending.state, pending.reason = "looking", reason
        self._changed()

    def ambiguous(self, pending: PendingCreate, candidates: list[str]) -> None:
        pending.state, pending.candidates = "ambiguous", candidates
        self._changed()

    def settle(self, pending: PendingCreate) -> None:
        """Settled: taken in, known not made, or chosen among."""
        if self._pending.pop(pending.id, None) is not None and pending.state != "sending":
            self._changed()

    def find(self, asked: RentalRequest) -> PendingCreate | None:
        """A create of the same request not settled yet."""
        return next((p for p in self._pending.values() if p.asked == asked), None)

    def get(self, create_id: str) -> PendingCreate | None:
        return self._pending.get(create_id)

    def burn_cents_per_hour(self) -> int:
        """What the unsettled creates would cost an hour (once several match, the rentals are
        tracked, and counted as such)."""
        return sum(
            p.quote.price_per_hour_cents for p in self._pending.values() if p.state != "ambiguous"
        )

    def __len__(self) -> int:
        return len(self._pending)

    def views(self) -> list[dict[str, Any]]:
        """Every unsettled create whose answer was lost, oldest first (one still waiting for
        its answer is the create request itself, shown by whoever sent it)."""
        shown = [p for p in self._pending.values() if p.state != "sending"]
        return [p.to_json() for p in sorted(shown, key=lambda p: p.sent_at)]
