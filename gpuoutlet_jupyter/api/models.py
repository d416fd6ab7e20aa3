"""Pydantic models of the rentals: the create and preview requests, and every rental reply shape.

Shapes follow the vendor sheet (section 2.2). Replies ignore fields they do not know (the vendor
may add some); money is integer cents, except the meter's ``ratePerHour`` (dollars as a float),
which is converted to cents exactly, in decimal.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from .errors import RequestValidationError
from .templates import DEFAULT_TEMPLATE, TEMPLATE_IDS

# Status values (sheet 3.1). Kept as plain strings on Rental so that a status this client does
# not know yet (the vendor may add one) is carried through instead of failing the whole reply.
PROVISIONING: Final = "provisioning"
RUNNING: Final = "running"
FAILED: Final = "failed"
STOPPING: Final = "stopping"
STOPPED: Final = "stopped"
STATUSES: Final = (PROVISIONING, RUNNING, STOPPING, STOPPED, FAILED)
FINAL_STATUSES: Final = frozenset({FAILED, STOPPED})

GPU_COUNTS: Final = (1, 2, 4, 8)
#: Said before every stop, wherever it is asked for (sheet 3.2: a stop is permanent).
STOP_NOTICE: Final = (
    "Stopping is permanent: gpuoutlet destroys the pod and wipes its disk (no pause, no "
    "resume). Copy anything you need off it first (scp, rsync, or push it to S3 or "
    "Hugging Face)."
)
MAX_NAME_LENGTH: Final = 64

_CAMEL = AliasGenerator(alias=to_camel)


class Reply(BaseModel):
    """Base of every reply model: camelCase on the wire, unknown fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=_CAMEL, populate_by_name=True, extra="ignore", frozen=True
    )

    def to_json(self) -> dict[str, Any]:
        """The wire shape again (camelCase, ISO times)."""
        return self.model_dump(mode="json", by_alias=True)


Cents = StrictInt


class RentalRequest(BaseModel):
    """The body of ``POST /v1/rentals``, checked against the documented rules before any money moves."""

    model_config = ConfigDict(
        alias_generator=_CAMEL, populate_by_name=True, extra="forbid", frozen=True
    )

    family_id: Annotated[str, Field(min_length=1, max_length=128)]
    gpu_count: StrictInt = 1
    template_id: str = DEFAULT_TEMPLATE
    region: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    name: Annotated[str, Field(max_length=MAX_NAME_LENGTH)] | None = None
    auto_stop_after_hours: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @field_validator("family_id", "template_id", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        # gpuoutlet's family and template ids are lower-case (rtx-4090, h100-80gb, pytorch):
        # RTX-4090 can only mean rtx-4090, so it is sent as that (never refused for its case).
        return value.lower() if isinstance(value, str) else value

    @field_validator("family_id", "template_id", "region")
    @classmethod
    def _no_surrounding_space(cls, value: str | None) -> str | None:
        if value is not None and value != value.strip():
            raise ValueError("must not start or end with whitespace")
        return value

    @field_validator("gpu_count")
    @classmethod
    def _gpu_count_allowed(cls, value: int) -> int:
        if value not in GPU_COUNTS:
            raise ValueError(f"must be one of {', '.join(map(str, GPU_COUNTS))} (got {value})")
        return value

    @field_validator("template_id")
    @classmethod
    def _known_template(cls, value: str) -> str:
        # The vendor wires in six templates and documents nothing for any other id: refuse a
        # typo here rather than learn what the API does with it.
        if value not in TEMPLATE_IDS:
            raise ValueError(f"must be one of {', '.join(TEMPLATE_IDS)} (got {value!r})")
        return value

    @classmethod
    def build(cls, **fields: Any) -> RentalRequest:
        """Validate keyword fields (snake_case or camelCase) into a request, or raise RequestValidationError."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise RequestValidationError.from_pydantic(exc) from None

    def to_wire(self) -> dict[str, Any]:
        """The create body as the API expects it: camelCase, optional fields left out when unset."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def preview_wire(self) -> dict[str, Any]:
        """The ``POST /v1/rentals/preview`` body: the fields a quote depends on."""
        body = self.to_wire()
        return {k: body[k] for k in ("familyId", "gpuCount", "templateId", "region") if k in body}

    def describe(self) -> str:
        """``1× rtx-4090``."""
        return f"{self.gpu_count}× {self.family_id}"


class Rental(Reply):
    """A rental (``GET /v1/rentals/:id``). The list may leave out ``provider`` and ``error``, and
    the create reply is a subset (see CreatedRental), so all but the core fields are optional."""

    id: str
    status: str
    price_per_hour_cents: Cents
    started_at: datetime
    name: str | None = None
    family_id: str | None = None
    gpu_count: int | None = None
    host: str | None = None
    # Strict: a port must arrive as a JSON integer; anything else is a malformed reply.
    port: StrictInt | None = None
    region: str | None = None
    provider: str | None = None
    stopped_at: datetime | None = None
    #: Live: what the rental has cost so far, charged per second while it runs. None: not sent.
    total_charged_cents: Cents | None = None
    error: str | None = None

    @property
    def is_final(self) -> bool:
        """True once the rental can change no more (failed or stopped)."""
        return self.status in FINAL_STATUSES

    @property
    def is_ready(self) -> bool:
        """The documented readiness test: running with a host."""
        return self.status == RUNNING and bool(self.host)

    def keeping_unsaid(self, earlier: Rental) -> Rental:
        """This answer, with what it left out taken from an earlier one of the same rental (a
        list item may leave out what a GET had: provider, error)."""
        if earlier.id != self.id:
            return self
        kept = {
            name: getattr(earlier, name)
            for name in type(self).model_fields
            if name not in self.model_fields_set and getattr(earlier, name) is not None
        }
        return self.model_copy(update=kept) if kept else self

    @classmethod
    def from_created(cls, created: CreatedRental, request: RentalRequest) -> Rental:
        """A rental from the create reply's subset, completed with what was asked for."""
        return cls(
            id=created.id,
            status=created.status,
            price_per_hour_cents=created.price_per_hour_cents,
            started_at=created.started_at,
            host=created.host,
            port=created.port,
            name=request.name,
            family_id=request.family_id,
            gpu_count=request.gpu_count,
            total_charged_cents=0,
        )


class CreatedRental(Reply):
    """The reply of ``POST /v1/rentals``: a subset of the rental."""

    id: str
    status: str
    price_per_hour_cents: Cents
    started_at: datetime
    host: str | None = None
    port: StrictInt | None = None


class RentalsPage(Reply):
    """One page of ``GET /v1/rentals``, newest first."""

    rentals: list[Rental]
    next_cursor: str | None = None


class StopResult(Reply):
    """The reply of ``POST /v1/rentals/:id/stop`` (also the shape of the API's own stops)."""

    id: str
    status: str
    #: The settled total the rental cost.
    final_charged_cents: Cents
    #: Non-zero only when it ran under 60 s and was refunded automatically.
    refunded_cents: Cents = 0


class MatchedListing(Reply):
    """The listing a create issued now would use."""

    id: str
    provider_code: str | None = None
    region: str | None = None
    model: str | None = None


class Preview(Reply):
    """The quote of ``POST /v1/rentals/preview``: reserves nothing, moves no money."""

    #: The whole hourly rate of the matched listing (all its GPUs).
    price_per_hour_cents: Cents
    estimated_provision_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    matched_listing: MatchedListing | None = None


class Meter(Reply):
    """``GET /v1/rentals/:id/meter``: the live billing of one rental."""

    rental_id: str
    #: Dollars per hour, as the API sends it (a float on the wire), held exactly.
    rate_per_hour: Decimal
    seconds_billed: StrictInt
    current_charge_cents: Cents
    last_heartbeat_at: datetime | None = None

    @field_validator("rate_per_hour", mode="before")
    @classmethod
    def _exact_dollars(cls, value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise ValueError("must be a number of dollars")
        try:
            # str() of a float is the shortest text that reads back as it: 2.8 → "2.8", so the
            # JSON literal's value is recovered without binary rounding.
            dollars = Decimal(str(value))
        except InvalidOperation:
            raise ValueError("must be a number of dollars") from None
        if not dollars.is_finite() or dollars < 0:
            raise ValueError("must be a number of dollars, 0 or more")
        return dollars

    @property
    def rate_per_hour_cents(self) -> int:
        """The rate in cents (2.80 → 280), in decimal; a sub-cent rate is rounded half up."""
        return int((self.rate_per_hour * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
