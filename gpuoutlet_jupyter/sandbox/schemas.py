"""Wire models of the /v1 API (field names as the vendor sheet spells them) and of the
/sandbox test controls."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .catalogue import DEFAULT_TEMPLATE, FAMILIES, GPU_COUNTS, TEMPLATES, region_filter

RentalStatus = Literal["provisioning", "running", "stopping", "stopped", "failed"]
RENTAL_STATUSES: tuple[str, ...] = ("provisioning", "running", "stopping", "stopped", "failed")
LedgerType = Literal["stripe_topup", "rental_charge", "refund", "auto_topup", "adjustment"]
InvoiceStatus = Literal["open", "paid", "void", "uncollectible", "draft"]
MAX_NAME_CHARS = 64
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50

_FAMILY_IDS = list(FAMILIES)
_TEMPLATE_IDS = list(TEMPLATES)


# --- errors -------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error: the HTTP status gives the class, `error` the exact reason."""

    error: str = Field(
        description="snake_case code from the vendor's table, e.g. validation_failed."
    )
    message: str = Field(description="What was wrong and what to do about it.")
    details: dict[str, Any] | None = Field(
        None,
        description="Optional context: the bad fields (validation_failed), needed vs available cents, …",
    )


# --- auth ---------------------------------------------------------------------------------


class RequestCodeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Annotated[str, Field(strict=True, json_schema_extra={"format": "email"})]
    intent: Literal["login", "signup"] | None = None


class RequestCodeResponse(BaseModel):
    ok: bool
    created: bool = Field(description="True when this email had no account yet.")


class VerifyCodeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Annotated[str, Field(strict=True)]
    code: Annotated[str, Field(strict=True, description="The 6 digits of the email, as a string.")]


class UserOut(BaseModel):
    id: str = Field(description="usr_ followed by a 26-character ULID.")
    email: str
    createdAt: str


class SessionOut(BaseModel):
    user: UserOut
    expiresAt: str = Field(description="When the session ends; every request moves it 30 days on.")


class Ok(BaseModel):
    ok: bool


# --- rentals ------------------------------------------------------------------------------


class RentalSpec(BaseModel):
    """Body of POST /v1/rentals/preview (and the core of a create)."""

    model_config = ConfigDict(extra="ignore")

    familyId: Annotated[
        str,
        Field(
            strict=True,
            description="GPU family, e.g. rtx-4090 or h100-80gb.",
            json_schema_extra={"enum": _FAMILY_IDS},
        ),
    ]
    gpuCount: Annotated[
        float,
        Field(
            strict=True,
            description="1, 2, 4 or 8 (anything else: 400 invalid_count).",
            json_schema_extra={"enum": list(GPU_COUNTS)},
        ),
    ]
    templateId: Annotated[
        str | None,
        Field(
            strict=True,
            description=f"Defaults to {DEFAULT_TEMPLATE}.",
            json_schema_extra={"enum": [*_TEMPLATE_IDS, None]},
        ),
    ] = None
    region: Annotated[
        str | None,
        Field(
            strict=True,
            description="ISO country code (US, DE, JP…), a broad region (us, eu, apac) or a "
            "listing's region (US-East); omitted: the cheapest anywhere.",
        ),
    ] = None

    @field_validator("familyId")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value not in FAMILIES:
            raise ValueError(f"unknown GPU family {value!r}; one of: {', '.join(FAMILIES)}")
        return value

    @field_validator("templateId")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        if value is not None and value not in TEMPLATES:
            raise ValueError(f"unknown template {value!r}; one of: {', '.join(TEMPLATES)}")
        return value

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is not None and region_filter(value) is None:
            raise ValueError(
                f"{value!r} is not a region: send an ISO country code (US, DE, JP…), a broad "
                "region (us, eu, apac) or a listing's region such as US-East"
            )
        return value

    def gpu_count(self) -> int | None:
        """The count as an integer if it is one the vendor offers, else None (invalid_count)."""
        value = self.gpuCount
        if not math.isfinite(value) or value != int(value) or int(value) not in GPU_COUNTS:
            return None
        return int(value)


class CreateRentalRequest(RentalSpec):
    """Body of POST /v1/rentals."""

    name: Annotated[
        str | None,
        Field(strict=True, max_length=MAX_NAME_CHARS, description="Your label, e.g. alice/exp-42."),
    ] = None
    autoStopAfterHours: Annotated[
        float | None,
        Field(strict=True, gt=0, allow_inf_nan=False, description="Force-stop after N hours."),
    ] = None


class RentalCreated(BaseModel):
    """The create's reply: a subset of the rental (sheet 2.2)."""

    id: str = Field(description="rent_ followed by a 26-character ULID.")
    status: RentalStatus
    host: str | None
    port: int | None
    pricePerHourCents: int
    startedAt: str


class RentalListItem(BaseModel):
    """A rental in a list: the sheet's list example carries neither provider nor error."""

    id: str
    name: str | None
    status: RentalStatus
    familyId: str
    gpuCount: int
    pricePerHourCents: int = Field(description="Locked at creation: the listing's total rate.")
    host: str | None
    port: int | None
    region: str = Field(description="Display region of the listing, e.g. US-East.")
    startedAt: str
    stoppedAt: str | None
    totalChargedCents: int = Field(description="Live while running; 0 once refunded.")


class Rental(RentalListItem):
    """One rental, in full (GET /v1/rentals/:id)."""

    provider: str = Field(description="Upstream provider code, e.g. vast.")
    error: str | None = Field(description="The provider's message when status is failed.")


class RentalList(BaseModel):
    rentals: list[RentalListItem] = Field(description="Newest first.")
    nextCursor: str | None


class StopResult(BaseModel):
    id: str
    status: Literal["stopping"]
    finalChargedCents: int = Field(description="The settled total (0 when refunded).")
    refundedCents: int = Field(description="Non-zero only when the pod ran under 60 s.")


class Meter(BaseModel):
    rentalId: str
    ratePerHour: float = Field(description="Dollars per hour, as a float (not cents).")
    secondsBilled: int
    currentChargeCents: int = Field(
        description="secondsBilled / 3600 × ratePerHour × 100, half up."
    )
    lastHeartbeatAt: str | None


class MatchedListing(BaseModel):
    id: str
    providerCode: str
    region: str
    model: str


class Preview(BaseModel):
    pricePerHourCents: int
    estimatedProvisionSeconds: int
    matchedListing: MatchedListing


# --- catalog ------------------------------------------------------------------------------


class ListingOut(BaseModel):
    id: str
    model: str
    family: str
    vramGb: int
    gpuCount: int
    pricePerHourCents: int = Field(description="Total hourly price of the machine.")
    providerCode: str
    region: str
    regionCode: str
    interconnect: str


class ListingList(BaseModel):
    listings: list[ListingOut] = Field(description="Cheapest first.")
    nextCursor: str | None


class FacetCount(BaseModel):
    code: str
    count: int


class PriceRange(BaseModel):
    minCents: int | None
    maxCents: int | None


class Facets(BaseModel):
    models: list[FacetCount]
    regions: list[FacetCount]
    providers: list[FacetCount]
    priceRange: PriceRange


# --- billing ------------------------------------------------------------------------------


class BalanceOut(BaseModel):
    availableCents: int = Field(description="Spendable on a new rental.")
    reservedCents: int = Field(description="Held for the first hour of active rentals.")
    totalCents: int = Field(description="availableCents + reservedCents.")
    openInvoicesCents: int
    openInvoiceCount: int
    updatedAt: str = Field(description="Time of the last wallet movement.")


class LedgerEntryOut(BaseModel):
    id: str
    type: LedgerType
    amountCents: int
    balanceAfterCents: int = Field(description="Wallet total right after this entry.")
    createdAt: str
    rentalId: str | None = Field(None, description="Only on rental entries.")
    stripeChargeId: str | None = Field(None, description="Only on top-ups.")


class LedgerOut(BaseModel):
    entries: list[LedgerEntryOut] = Field(description="Newest first.")
    balanceCents: int = Field(description="The wallet total now.")
    nextCursor: str | None


class LineItemOut(BaseModel):
    id: str
    description: str
    amountCents: int
    rentalId: str | None
    periodStart: str | None
    periodEnd: str | None


class InvoiceOut(BaseModel):
    id: str
    status: InvoiceStatus
    reason: Literal["topup_failed", "overage", "manual"]
    amountCents: int
    currency: Literal["USD"]
    rentalId: str | None
    stripeInvoiceId: str
    hostedInvoiceUrl: str | None
    invoicePdfUrl: str | None
    receiptUrl: str | None
    createdAt: str
    dueAt: str
    paidAt: str | None
    voidedAt: str | None
    lineItems: list[LineItemOut]


class InvoiceList(BaseModel):
    data: list[InvoiceOut] = Field(description="Newest first.")


class PayUrl(BaseModel):
    url: str | None


class CardOut(BaseModel):
    brand: str | None
    last4: str | None
    expMonth: int | None
    expYear: int | None
    pmId: str | None


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    amountCents: Annotated[int, Field(strict=True, description="100 to 500000 ($1 to $5,000).")]


class AutoTopupRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    enabled: Annotated[bool, Field(strict=True)]
    thresholdCents: Annotated[int | None, Field(strict=True, ge=100, le=100_000)] = None
    topupAmountCents: Annotated[int | None, Field(strict=True, ge=1000, le=500_000)] = None


class AutoTopupOut(BaseModel):
    enabled: bool
    thresholdCents: int | None
    topupAmountCents: int | None


# --- SSH keys -----------------------------------------------------------------------------


class SSHKeyCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(strict=True, description="Up to 64 characters; need not be unique.")]
    publicKey: Annotated[
        str, Field(strict=True, description="The whole .pub line: ssh-ed25519 AAAA… you@laptop.")
    ]


class SSHKeyOut(BaseModel):
    id: str = Field(description="key_ followed by a 26-character ULID.")
    name: str
    fingerprint: str = Field(description="SHA256:…, as `ssh-keygen -lf` prints it.")
    algorithm: str
    createdAt: str


class SSHKeyList(BaseModel):
    keys: list[SSHKeyOut] = Field(description="Newest first; the key text is never returned.")


# --- /sandbox test controls ---------------------------------------------------------------


class CreateAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    balanceCents: Annotated[int, Field(strict=True, ge=0)] = 0
    authorizedKeys: str | None = None
    email: str | None = None


class AccountCreated(BaseModel):
    accountId: str
    sid: str
    email: str


class SessionCreated(BaseModel):
    sid: str


class DepositRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cents: Annotated[int, Field(strict=True, gt=0)]
    type: Literal["stripe_topup", "adjustment"] = "stripe_topup"


class WalletView(BaseModel):
    """The wallet from the sandbox's side: what the API shows plus the money's history."""

    depositedCents: int
    availableCents: int
    reservedCents: int
    spentCents: int
    totalCents: int
    openInvoicesCents: int
    openInvoiceCount: int


class InvoiceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amountCents: Annotated[int, Field(strict=True, gt=0)]
    reason: Literal["topup_failed", "overage", "manual"] = "manual"
    rentalId: str | None = None
    description: str | None = None


class BulkRentalsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: Annotated[int, Field(strict=True, ge=1, le=10_000)]
    familyId: str = "rtx-4090"
    gpuCount: Literal[1, 2, 4, 8] = 1
    #: "stopped": past rentals written straight into the history (no pods, no money);
    #: "provisioning": real creates, one after another, with money and pods.
    status: Literal["stopped", "provisioning"] = "stopped"
    namePrefix: str | None = None


class BulkRentalsCreated(BaseModel):
    ids: list[str] = Field(description="Oldest first.")


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


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    perMinute: Annotated[int, Field(strict=True, ge=0, description="0: no per-minute limit.")]
    perHour: Annotated[int, Field(strict=True, ge=0, description="0: no per-hour limit.")]


class RateLimitsOut(RateLimits):
    refusedCount: int = Field(description="429s answered since the limits were last set.")


class Mail(BaseModel):
    email: str
    subject: str
    body: str
    code: str | None
    createdAt: str


class Mailbox(BaseModel):
    messages: list[Mail] = Field(description="Newest first.")


class ExpireSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sid: str


class PodInfo(BaseModel):
    rentalId: str
    running: bool
    home: str = Field(description="The pod's disk: its HOME, with the working folder work/.")
    homeExists: bool
    port: int | None
    authorizedKeyFingerprints: list[str] = Field(description="What the pod accepts (snapshot).")
