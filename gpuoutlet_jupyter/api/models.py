"""Pydantic models of the rentals API: the create request (validated before any request) and responses."""

from __future__ import annotations

import math
from datetime import datetime, timezone
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

# Status values. Kept as plain strings on Rental so that a status this client does not know yet
# (the vendor may add one) is carried through instead of failing the whole response.
PROVISIONING: Final = "provisioning"
RUNNING: Final = "running"
FAILED: Final = "failed"
STOPPING: Final = "stopping"
STOPPED: Final = "stopped"
STATUSES: Final = (PROVISIONING, RUNNING, FAILED, STOPPING, STOPPED)
FINAL_STATUSES: Final = frozenset({FAILED, STOPPED})

GPU_COUNTS: Final = (1, 2, 4, 8)
DEFAULT_TEMPLATE: Final = "ubuntu-24-04"
MAX_NAME_LENGTH: Final = 64

_CAMEL = AliasGenerator(alias=to_camel)


class _Response(BaseModel):
    """Base of every response model: camelCase on the wire, unknown fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=_CAMEL, populate_by_name=True, extra="ignore", frozen=True
    )


class RentalRequest(BaseModel):
    """The body of `POST /v1/rentals`, checked against the seed's rules before any money moves."""

    model_config = ConfigDict(
        alias_generator=_CAMEL, populate_by_name=True, extra="forbid", frozen=True
    )

    family_id: Annotated[str, Field(min_length=1, max_length=128)]
    gpu_count: StrictInt = 1
    template_id: Annotated[str, Field(min_length=1, max_length=128)] = DEFAULT_TEMPLATE
    region: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    name: Annotated[str, Field(max_length=MAX_NAME_LENGTH)] | None = None
    auto_stop_after_hours: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

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

    @classmethod
    def build(cls, **fields: Any) -> RentalRequest:
        """Validate keyword fields (snake_case or camelCase) into a request, or raise RequestValidationError."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise RequestValidationError.from_pydantic(exc) from None

    def to_wire(self) -> dict[str, Any]:
        """The JSON body as the API expects it: camelCase, optional fields left out when unset."""
        return self.model_dump(by_alias=True, exclude_none=True)


class Rental(_Response):
    """A rental as the API reports it. Fields past the seed's are optional: the vendor may omit them."""

    id: str
    status: str
    host: str | None = None
    # Strict: a port must arrive as a JSON integer; anything else is a malformed response.
    port: StrictInt | None = None
    price_per_hour_cents: StrictInt
    started_at: datetime
    error: str | None = None
    family_id: str | None = None
    gpu_count: int | None = None
    template_id: str | None = None
    region: str | None = None
    name: str | None = None
    auto_stop_after_hours: float | None = None
    stopped_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        """True once the rental can change no more (failed or stopped)."""
        return self.status in FINAL_STATUSES

    @property
    def is_ready(self) -> bool:
        """The seed's readiness test: running with a host."""
        return self.status == RUNNING and bool(self.host)

    def cost_cents(self, now: datetime | None = None) -> int:
        """Cost so far from the API's own fields: the locked rate times the time since startedAt."""
        end = self.stopped_at or now or datetime.now(timezone.utc)
        seconds = max(0.0, (end - self.started_at).total_seconds())
        return math.ceil(self.price_per_hour_cents * seconds / 3600)


class Family(_Response):
    """A GPU family from `GET /v1/families` (an assumed endpoint)."""

    id: str
    display_name: str | None = None
    gpu_memory_gb: float | None = None
    price_per_hour_cents: StrictInt
    regions: list[str] = Field(default_factory=list)
    available: bool = True


class Wallet(_Response):
    """The wallet from `GET /v1/wallet` (an assumed endpoint); money is integer cents."""

    available_cents: StrictInt
    reserved_cents: StrictInt = 0
    currency: str = "USD"


def format_cents(cents: int, currency: str = "USD") -> str:
    """Money for people: 65 → '$0.65', 28000 → '$280.00'; other currencies keep their code."""
    sign = "-" if cents < 0 else ""
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    return f"{sign}${amount}" if currency == "USD" else f"{sign}{amount} {currency}"
