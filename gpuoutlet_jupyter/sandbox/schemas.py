"""Wire models of the /v1 API and of the /sandbox test controls (field names as on the wire)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .catalogue import (
    COUNTRIES,
    DEFAULT_TEMPLATE,
    FAMILY_IDS,
    GPU_COUNTS,
    REGION_CODES,
    REGIONS,
    TEMPLATES,
)

RentalStatus = Literal["provisioning", "running", "failed", "stopping", "stopped"]
MAX_NAME_CHARS = 64
MAX_IDEMPOTENCY_KEY_CHARS = 255


def _one_of(values: tuple[str, ...]) -> str:
    return ", ".join(values)


class CreateRentalRequest(BaseModel):
    """Body of POST /v1/rentals. Types are strict: `"1"`, `true` and `2.5` are not gpu counts."""

    model_config = ConfigDict(extra="ignore")

    familyId: Annotated[
        str,
        Field(
            strict=True,
            min_length=1,
            description="GPU family id; GET /v1/families lists them.",
            json_schema_extra={"enum": list(FAMILY_IDS)},
        ),
    ]
    gpuCount: Annotated[
        int,
        Field(
            strict=True, description="1, 2, 4 or 8.", json_schema_extra={"enum": list(GPU_COUNTS)}
        ),
    ]
    templateId: Annotated[
        str | None,
        Field(
            strict=True,
            description=f"Defaults to {DEFAULT_TEMPLATE}.",
            json_schema_extra={"enum": [*TEMPLATES, None]},
        ),
    ] = None
    region: Annotated[
        str | None,
        Field(
            strict=True,
            description="ISO country code (e.g. DE) or broader region (EU, NA, APAC).",
            json_schema_extra={"enum": [*REGION_CODES, None]},
        ),
    ] = None
    name: Annotated[str | None, Field(strict=True, max_length=MAX_NAME_CHARS)] = None
    autoStopAfterHours: Annotated[
        float | None,
        Field(
            strict=True,
            gt=0,
            allow_inf_nan=False,
            description="Stop the rental after this many hours.",
        ),
    ] = None

    @field_validator("familyId")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value not in FAMILY_IDS:
            raise ValueError(
                f"familyId {value!r} is not a known GPU family; use one of: {_one_of(FAMILY_IDS)}"
            )
        return value

    @field_validator("gpuCount")
    @classmethod
    def _allowed_count(cls, value: int) -> int:
        if value not in GPU_COUNTS:
            raise ValueError(f"gpuCount must be 1, 2, 4 or 8, not {value}")
        return value

    @field_validator("templateId")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        if value is not None and value not in TEMPLATES:
            raise ValueError(
                f"templateId {value!r} is not a known template; use one of: {_one_of(TEMPLATES)}"
            )
        return value

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and value not in REGION_CODES:
            raise ValueError(
                f"region {value!r} is not known; use a country code ({_one_of(COUNTRIES)}) "
                f"or a broader region ({_one_of(tuple(REGIONS))}), upper-case"
            )
        return value

    def normalized(self) -> dict[str, Any]:
        """The request with defaults filled in: what an Idempotency-Key is bound to."""
        return {
            "familyId": self.familyId,
            "gpuCount": self.gpuCount,
            "templateId": self.templateId or DEFAULT_TEMPLATE,
            "region": self.region,
            "name": self.name,
            "autoStopAfterHours": self.autoStopAfterHours,
        }


class Rental(BaseModel):
    id: str = Field(description="rent_ followed by 26 ULID characters.")
    status: RentalStatus
    host: str | None = Field(description="SSH host once running.")
    port: int | None = Field(description="SSH port once running.")
    pricePerHourCents: int = Field(description="Locked rate: per-GPU price times gpuCount.")
    startedAt: str = Field(description="ISO 8601 UTC, e.g. 2026-06-07T08:14:22Z.")
    error: str | None
    familyId: str
    gpuCount: int
    templateId: str
    region: str = Field(description="Country code of the listing the rental runs in.")
    name: str | None
    autoStopAfterHours: float | None
    stoppedAt: str | None


class RentalList(BaseModel):
    rentals: list[Rental] = Field(description="Newest first.")


class FamilyOut(BaseModel):
    id: str
    displayName: str
    gpuMemoryGb: int
    pricePerHourCents: int = Field(description="Cheapest per-GPU hourly price of any listing.")
    regions: list[str] = Field(description="Country codes with listings of this family.")
    available: bool = Field(description="Whether any listing has a free GPU now.")


class FamilyList(BaseModel):
    families: list[FamilyOut]


class WalletOut(BaseModel):
    availableCents: int
    reservedCents: int
    currency: Literal["USD"]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable machine-readable code, e.g. validation_error.")
    message: str = Field(description="What was wrong and what to do about it.")
    field: str | None = Field(None, description="The offending field (validation_error).")
    requiredCents: int | None = Field(None, description="One hour of cost (402).")
    availableCents: int | None = Field(None, description="Available balance (402).")
    retryAfterSeconds: int | None = Field(None, description="Same as Retry-After (429).")


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- /sandbox test controls ------------------------------------------------------------


class CreateAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    balanceCents: Annotated[int, Field(strict=True, ge=0)] = 0
    authorizedKeys: str | None = None


class AccountCreated(BaseModel):
    accountId: str
    sid: str


class DepositRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cents: Annotated[int, Field(strict=True, gt=0)]


class Ledger(BaseModel):
    depositedCents: int
    availableCents: int
    reservedCents: int
    spentCents: int


class ClockOut(BaseModel):
    now: str
    epochSeconds: float
    timeScale: float
    advancedSeconds: float


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)]


class FailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: str | None = None
