"""The /v1 API, endpoint by endpoint as the vendor sheet documents them (section 2)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import APIKeyCookie

from . import billing, views
from .auth import cleared_cookie, session_cookie
from .catalogue import GPU_COUNTS, decode_cursor, encode_cursor, region_filter
from .clock import iso_utc
from .errors import ApiError, rental_not_found, validation_failed
from .keys import check_key_name
from .runtime import Sandbox
from .schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    AutoTopupOut,
    AutoTopupRequest,
    BalanceOut,
    CardOut,
    CheckoutRequest,
    CreateRentalRequest,
    ErrorBody,
    FacetCount,
    Facets,
    InvoiceList,
    InvoiceOut,
    LedgerOut,
    LedgerType,
    ListingList,
    MatchedListing,
    Meter,
    Ok,
    PayUrl,
    Preview,
    PriceRange,
    Rental,
    RentalCreated,
    RentalList,
    RentalSpec,
    RentalStatus,
    RequestCodeRequest,
    RequestCodeResponse,
    SessionOut,
    SSHKeyCreate,
    SSHKeyList,
    SSHKeyOut,
    StopResult,
    VerifyCodeRequest,
)

#: The dashboard's facets are served from a 30 s cache (sheet 2.3).
FACETS_TTL_SECONDS = 30.0
CHECKOUT_PER_HOUR = 10

# --- documentation of errors and headers ------------------------------------------------------

_RATE_HEADERS = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed in the current window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Unix time at which the current window ends.",
        "schema": {"type": "integer"},
    },
}
_ERRORS: dict[int, str] = {
    400: "`validation_failed` (each bad field in `details`), or the endpoint's own 400 codes.",
    401: '`unauthorized` (`{"error": "unauthorized", "message": "Not signed in"}`), or a '
    "sign-in code's `code_invalid` / `code_expired`.",
    403: "`insufficient_balance`: available is under one hour of cost (`details`: "
    "`neededCents`, `availableCents`).",
    404: "`rental_not_found`, `key_not_found` or `not_found`.",
    409: "`already_stopped`: the rental is stopping, stopped or failed.",
    429: "`rate_limited` (100 a minute and 1,000 an hour per session): wait `Retry-After` "
    "seconds; or `code_request_rate_limited`.",
    500: "`internal_error`: retry.",
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 401, 429, 500}):
        entry: dict[str, Any] = {"model": ErrorBody, "description": _ERRORS[status]}
        if status == 429:
            entry["headers"] = {
                **_RATE_HEADERS,
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                },
            }
        documented[status] = entry
    documented[200] = {"headers": _RATE_HEADERS}
    return documented


# --- dependencies -------------------------------------------------------------------------

# Declared for the OpenAPI document; the Gate has already resolved the cookie.
_sid_cookie = APIKeyCookie(
    name="sid", auto_error=False, description="Session cookie (`sid`) from verify-code."
)


async def _sandbox(request: Request) -> Sandbox:
    # async: FastAPI runs plain-def dependencies in a thread pool, a hop per request.
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def _user_id(request: Request, _sid: Annotated[str | None, Security(_sid_cookie)]) -> str:
    user_id: str | None = getattr(request.state, "user_id", None)
    if user_id is None:
        raise ApiError(401, "unauthorized", "Not signed in")
    return user_id


SandboxDep = Annotated[Sandbox, Depends(_sandbox)]
UserDep = Annotated[str, Depends(_user_id)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Default 50, at most 200.")]


def _bad_cursor(cursor: str) -> ApiError:
    return validation_failed(
        "This cursor is not one the API gave out; pass back `nextCursor` unchanged, or omit it "
        "for the first page.",
        {"cursor": "not a cursor of this list"},
    )


v1 = APIRouter(prefix="/v1")

# --- auth ---------------------------------------------------------------------------------


@v1.post(
    "/auth/request-code",
    response_model=RequestCodeResponse,
    tags=["auth"],
    summary="Email a 6-digit sign-in code (the sandbox: to its log and mailbox)",
    responses=_responses(400),
)
async def request_code(body: RequestCodeRequest, sandbox: SandboxDep) -> RequestCodeResponse:
    created = await sandbox.auth.request_code(body.email)
    return RequestCodeResponse(ok=True, created=created)


@v1.post(
    "/auth/verify-code",
    response_model=SessionOut,
    tags=["auth"],
    summary="Trade the code for a session: sets the `sid` cookie",
    responses=_responses(400),
)
async def verify_code(body: VerifyCodeRequest, sandbox: SandboxDep) -> JSONResponse:
    signed_in = await sandbox.auth.verify_code(body.email, body.code)
    out = SessionOut(user=views.user(signed_in.user), expiresAt=iso_utc(signed_in.expires_at))
    return JSONResponse(out.model_dump(), headers={"Set-Cookie": session_cookie(signed_in.sid)})


@v1.post(
    "/auth/logout",
    response_model=Ok,
    tags=["auth"],
    summary="End the session (deleted for good; the old sid gets 401)",
    responses=_responses(),
)
async def logout(request: Request, sandbox: SandboxDep, _user: UserDep) -> JSONResponse:
    await sandbox.auth.logout(request.state.sid_hash)
    return JSONResponse({"ok": True}, headers={"Set-Cookie": cleared_cookie()})


@v1.get(
    "/auth/me",
    response_model=SessionOut,
    tags=["auth"],
    summary="Who is signed in, and when the session ends",
    responses=_responses(),
)
async def me(request: Request, sandbox: SandboxDep, user_id: UserDep) -> SessionOut:
    user = sandbox.store.read.user(user_id)
    session = sandbox.store.read.session(request.state.sid_hash)
    if user is None or session is None:
        raise ApiError(401, "unauthorized", "Not signed in")
    return SessionOut(user=views.user(user), expiresAt=iso_utc(session.expires_at))


@v1.get("/auth/oauth/{provider}", include_in_schema=False)
@v1.get("/auth/oauth/{provider}/callback", include_in_schema=False)
async def oauth(provider: str) -> RedirectResponse:
    # No OAuth client is configured in the sandbox: the documented "unavailable" redirect.
    return RedirectResponse("/login?error=oauth_unavailable", status_code=302)


# --- rentals ------------------------------------------------------------------------------


@v1.post(
    "/rentals/preview",
    response_model=Preview,
    tags=["rentals"],
    summary="Quote a rental without launching it (no money, no capacity)",
    responses=_responses(400),
)
async def preview(body: RentalSpec, sandbox: SandboxDep, _user: UserDep) -> Preview:
    listing = sandbox.rentals.preview(body)
    return Preview(
        pricePerHourCents=listing.price_cents,
        estimatedProvisionSeconds=sandbox.provider.estimated_provision_seconds,
        matchedListing=MatchedListing(
            id=listing.id,
            providerCode=listing.provider,
            region=listing.region,
            model=listing.family.model,
        ),
    )


@v1.post(
    "/rentals",
    response_model=RentalCreated,
    tags=["rentals"],
    summary="Rent GPUs: reserves one hour of cost and starts provisioning",
    description=(
        "Validates the body, locks the wallet, checks that available covers one hour of "
        "cost, moves that hour to reserved, picks the cheapest matching live listing, asks the "
        "provider to allocate, inserts the rental as `provisioning` and answers. There is no "
        "idempotency key: a repeated create makes another rental."
    ),
    responses=_responses(400, 403),
)
async def create_rental(
    body: CreateRentalRequest, sandbox: SandboxDep, user_id: UserDep
) -> RentalCreated:
    return views.rental_created(await sandbox.rentals.create(user_id, body))


@v1.get(
    "/rentals",
    response_model=RentalList,
    tags=["rentals"],
    summary="The account's rentals, newest first, a page at a time",
    responses=_responses(400),
)
async def list_rentals(
    sandbox: SandboxDep,
    user_id: UserDep,
    status: RentalStatus | None = None,
    cursor: str | None = None,
    pageSize: PageSize = DEFAULT_PAGE_SIZE,
) -> RentalList:
    read = sandbox.store.read
    before = None
    if cursor is not None:
        last_id = decode_cursor(cursor)
        last = read.rental(last_id) if last_id else None
        if last is None or last.user_id != user_id:
            raise _bad_cursor(cursor)
        before = last.seq
    rows = read.rentals_of(user_id, status=status, before_seq=before, limit=pageSize + 1)
    now = sandbox.clock.now_seconds()
    omit = sandbox.faults.current.omitStoppedAt
    page = rows[:pageSize]
    return RentalList(
        rentals=[views.rental_item(r, now, omit_stopped_at=omit) for r in page],
        nextCursor=encode_cursor(page[-1].id) if len(rows) > pageSize else None,
    )


def _own_rental(sandbox: Sandbox, user_id: str, rental_id: str) -> Any:
    rental = sandbox.store.read.rental(rental_id)
    if rental is None or rental.user_id != user_id:
        raise rental_not_found(rental_id)
    return rental


@v1.get(
    "/rentals/{rental_id}",
    response_model=Rental,
    tags=["rentals"],
    summary="One rental; poll every 2 s until it is running",
    responses=_responses(404),
)
async def get_rental(rental_id: str, sandbox: SandboxDep, user_id: UserDep) -> Rental:
    rental = _own_rental(sandbox, user_id, rental_id)
    return views.rental_full(
        rental,
        sandbox.clock.now_seconds(),
        omit_stopped_at=sandbox.faults.current.omitStoppedAt,
    )


@v1.post(
    "/rentals/{rental_id}/stop",
    response_model=StopResult,
    tags=["rentals"],
    summary="Stop a rental for good: the pod and its disk are destroyed",
    responses=_responses(404, 409),
)
async def stop_rental(rental_id: str, sandbox: SandboxDep, user_id: UserDep) -> StopResult:
    rental = await sandbox.rentals.stop(user_id, rental_id)
    return StopResult(
        id=rental.id,
        status="stopping",
        finalChargedCents=rental.net_charged_cents,
        refundedCents=rental.refunded_cents,
    )


@v1.get(
    "/rentals/{rental_id}/meter",
    response_model=Meter,
    tags=["rentals"],
    summary="Live metering; ratePerHour is dollars (a float)",
    responses=_responses(404),
)
async def get_meter(rental_id: str, sandbox: SandboxDep, user_id: UserDep) -> Meter:
    return views.meter(_own_rental(sandbox, user_id, rental_id), sandbox.clock.now_seconds())


# --- catalog ------------------------------------------------------------------------------


@v1.get(
    "/catalog/listings",
    response_model=ListingList,
    tags=["catalog"],
    summary="Live offers, cheapest first",
    responses=_responses(400),
)
async def list_listings(
    sandbox: SandboxDep,
    _user: UserDep,
    model: str | None = None,
    minVramGb: float | None = None,
    gpuCount: int | None = None,
    region: str | None = None,
    maxPricePerHourCents: int | None = None,
    cursor: str | None = None,
    pageSize: PageSize = DEFAULT_PAGE_SIZE,
) -> ListingList:
    if gpuCount is not None and gpuCount not in GPU_COUNTS:
        raise ApiError(
            400,
            "invalid_count",
            f"gpuCount must be 1, 2, 4 or 8, not {gpuCount}.",
            {"gpuCount": "must be 1, 2, 4 or 8"},
        )
    regions = None
    if region is not None:
        regions = region_filter(region)
        if regions is None:
            raise validation_failed(
                f"{region!r} is not a region: send an ISO country code (US, DE, JP…) or a "
                "broad region (us, eu, apac).",
                {"region": "not a country code or region"},
            )
    catalogue = sandbox.catalogue
    wanted = model.strip().upper() if model else None
    found = [
        x
        for x in catalogue.live(sandbox.store.read.usage())
        if (wanted is None or x.family.model.startswith(wanted) or x.family.id.upper() == wanted)
        and (minVramGb is None or x.family.vram_gb >= minVramGb)
        and (gpuCount is None or x.gpu_count == gpuCount)
        and (regions is None or x.region in regions)
        and (maxPricePerHourCents is None or x.price_cents <= maxPricePerHourCents)
    ]
    start = 0
    if cursor is not None:
        last_id = decode_cursor(cursor)
        last = catalogue.listings.get(last_id) if last_id else None
        if last is None:
            raise _bad_cursor(cursor)
        # Past the last listing shown, even if it has since sold out.
        order = catalogue.ordered()
        position = order.index(last)
        start = next((i for i, x in enumerate(found) if order.index(x) > position), len(found))
    page = found[start : start + pageSize]
    more = start + pageSize < len(found)
    return ListingList(
        listings=[views.listing(x) for x in page],
        nextCursor=encode_cursor(page[-1].id) if more and page else None,
    )


@v1.get(
    "/catalog/facets",
    response_model=Facets,
    tags=["catalog"],
    summary="Counts of live listings by model, region and provider; the price range",
    description="Served from a cache for 30 s: repeated calls in that window get the same body.",
    responses=_responses(),
)
async def facets(request: Request, sandbox: SandboxDep, _user: UserDep) -> Facets:
    cached: tuple[float, Facets] | None = getattr(request.app.state, "facets", None)
    now = time.monotonic()
    if cached is not None and now - cached[0] < FACETS_TTL_SECONDS:
        return cached[1]
    live = sandbox.catalogue.live(sandbox.store.read.usage())

    def counts(values: list[str]) -> list[FacetCount]:
        tally: dict[str, int] = {}
        for value in values:
            tally[value] = tally.get(value, 0) + 1
        return [
            FacetCount(code=k, count=v) for k, v in sorted(tally.items(), key=lambda kv: -kv[1])
        ]

    prices = [x.price_cents for x in live]
    body = Facets(
        models=counts([x.family.model for x in live]),
        regions=counts([x.region_code for x in live]),
        providers=counts([x.provider for x in live]),
        priceRange=PriceRange(
            minCents=min(prices) if prices else None, maxCents=max(prices) if prices else None
        ),
    )
    request.app.state.facets = (now, body)
    return body


# --- billing ------------------------------------------------------------------------------


@v1.get(
    "/billing/balance",
    response_model=BalanceOut,
    tags=["billing"],
    summary="Available, reserved and total cents; open invoices",
    responses=_responses(),
)
async def get_balance(sandbox: SandboxDep, user_id: UserDep) -> BalanceOut:
    found = billing.balance(sandbox.store.read, user_id)
    if found is None:
        raise ApiError(401, "unauthorized", "Not signed in")
    return views.balance(found)


@v1.get(
    "/billing/ledger",
    response_model=LedgerOut,
    tags=["billing"],
    summary="Every movement of the wallet, newest first",
    responses=_responses(400),
)
async def get_ledger(
    sandbox: SandboxDep,
    user_id: UserDep,
    type: LedgerType | None = None,
    cursor: str | None = None,
    pageSize: PageSize = DEFAULT_PAGE_SIZE,
) -> JSONResponse:
    read = sandbox.store.read
    before = None
    if cursor is not None:
        last_id = decode_cursor(cursor)
        last = read.ledger_entry(last_id) if last_id else None
        if last is None or last.user_id != user_id:
            raise _bad_cursor(cursor)
        before = last.seq
    rows = read.ledger(user_id, before_seq=before, entry_type=type, limit=pageSize + 1)
    wallet = read.wallet(user_id)
    page = rows[:pageSize]
    return JSONResponse(
        {
            "entries": [views.ledger_entry(e) for e in page],
            "balanceCents": wallet.total_cents if wallet else 0,
            "nextCursor": encode_cursor(page[-1].id) if len(rows) > pageSize else None,
        }
    )


@v1.get(
    "/billing/invoices",
    response_model=InvoiceList,
    tags=["billing"],
    summary="Invoices (not drafts), newest first",
    responses=_responses(400),
)
async def list_invoices(
    sandbox: SandboxDep,
    user_id: UserDep,
    status: billing.InvoiceFilter | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
) -> InvoiceList:
    rows = sandbox.store.read.invoices(user_id, status=status, limit=limit)
    return InvoiceList(data=[views.invoice(i) for i in rows])


def _own_invoice(sandbox: Sandbox, user_id: str, invoice_id: str) -> Any:
    found = sandbox.store.read.invoice(invoice_id)
    if found is None or found.user_id != user_id:
        raise ApiError(
            404, "not_found", f"No invoice {invoice_id} on your account.", {"invoiceId": invoice_id}
        )
    return found


@v1.get(
    "/billing/invoices/{invoice_id}",
    response_model=InvoiceOut,
    tags=["billing"],
    summary="One invoice",
    responses=_responses(404),
)
async def get_invoice(invoice_id: str, sandbox: SandboxDep, user_id: UserDep) -> InvoiceOut:
    return views.invoice(_own_invoice(sandbox, user_id, invoice_id))


@v1.get(
    "/billing/invoices/{invoice_id}/pay-url",
    response_model=PayUrl,
    tags=["billing"],
    summary="A fresh URL of the invoice's pay page",
    responses=_responses(404),
)
async def invoice_pay_url(invoice_id: str, sandbox: SandboxDep, user_id: UserDep) -> PayUrl:
    return PayUrl(url=views.invoice(_own_invoice(sandbox, user_id, invoice_id)).hostedInvoiceUrl)


def _billing_disabled() -> ApiError:
    return ApiError(
        400,
        "billing_disabled",
        "Stripe is not configured on this deployment (the sandbox has no payments). Top up "
        "with POST /sandbox/accounts/{id}/deposit.",
    )


@v1.post(
    "/billing/checkout",
    response_model=None,
    tags=["billing"],
    summary="Top up through Stripe Checkout (the sandbox: billing_disabled)",
    responses=_responses(400),
)
async def checkout(
    request: Request, body: CheckoutRequest, sandbox: SandboxDep, user_id: UserDep
) -> None:
    if not 100 <= body.amountCents <= 500_000:
        raise ApiError(
            400,
            "invalid_amount",
            "A top-up is $1 to $5,000: send amountCents from 100 to 500000.",
            {"amountCents": "must be 100 to 500000"},
        )
    calls: dict[str, list[float]] = request.app.state.checkouts
    now = time.monotonic()
    recent = [t for t in calls.get(user_id, []) if now - t < 3600]
    if len(recent) >= CHECKOUT_PER_HOUR:
        wait = int(3600 - (now - recent[0])) + 1
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests. Retry after {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )
    calls[user_id] = [*recent, now]
    raise _billing_disabled()


@v1.post(
    "/billing/setup-intent",
    response_model=None,
    tags=["billing"],
    summary="Save a card through Stripe (the sandbox: billing_disabled)",
    responses=_responses(400),
)
async def setup_intent(_user: UserDep) -> None:
    raise _billing_disabled()


_NO_CARD = CardOut(brand=None, last4=None, expMonth=None, expYear=None, pmId=None)


@v1.get(
    "/billing/card",
    response_model=CardOut,
    tags=["billing"],
    summary="The saved card (the sandbox never has one)",
    responses=_responses(),
)
async def get_card(_user: UserDep) -> CardOut:
    return _NO_CARD


@v1.delete(
    "/billing/card",
    response_model=Ok,
    tags=["billing"],
    summary="Remove the saved card",
    responses=_responses(),
)
async def delete_card(_user: UserDep) -> Ok:
    return Ok(ok=True)


@v1.put(
    "/billing/auto-topup",
    response_model=AutoTopupOut,
    tags=["billing"],
    summary="Auto top-up settings (turning it on needs a saved card: billing_disabled here)",
    responses=_responses(400),
)
async def auto_topup(body: AutoTopupRequest, _user: UserDep) -> AutoTopupOut:
    if body.enabled:
        if body.thresholdCents is None:
            raise validation_failed(
                "thresholdCents is required when enabled is true (100 to 100000).",
                {"thresholdCents": "required when enabled"},
            )
        raise _billing_disabled()
    return AutoTopupOut(
        enabled=False, thresholdCents=body.thresholdCents, topupAmountCents=body.topupAmountCents
    )


@v1.post("/webhooks/stripe", include_in_schema=False)
async def stripe_webhook() -> None:
    # Stripe signs its calls with STRIPE_WEBHOOK_SECRET; the sandbox has none, so nothing
    # it receives here is ever from Stripe.
    raise ApiError(400, "invalid_signature", "Missing or invalid Stripe-Signature.")


# --- SSH keys -----------------------------------------------------------------------------


@v1.get(
    "/ssh-keys",
    response_model=SSHKeyList,
    tags=["ssh-keys"],
    summary="The account's SSH keys, newest first (never the key text)",
    responses=_responses(),
)
async def list_keys(sandbox: SandboxDep, user_id: UserDep) -> SSHKeyList:
    return SSHKeyList(keys=[views.ssh_key(k) for k in sandbox.store.read.ssh_keys(user_id)])


@v1.post(
    "/ssh-keys",
    response_model=SSHKeyOut,
    tags=["ssh-keys"],
    summary="Add an SSH key; only rentals created afterwards get it",
    responses=_responses(400),
)
async def add_key(body: SSHKeyCreate, sandbox: SandboxDep, user_id: UserDep) -> SSHKeyOut:
    name = check_key_name(body.name)
    return views.ssh_key(await sandbox.add_key(user_id, name, body.publicKey))


@v1.delete(
    "/ssh-keys/{key_id}",
    response_model=Ok,
    tags=["ssh-keys"],
    summary="Remove an SSH key (running pods keep it; later ones do not get it)",
    responses=_responses(404),
)
async def delete_key(key_id: str, sandbox: SandboxDep, user_id: UserDep) -> Ok:
    async with sandbox.store.transaction() as tx:
        key = tx.ssh_key(key_id)
        if key is None or key.user_id != user_id:
            raise ApiError(
                404,
                "key_not_found",
                f"No SSH key {key_id} on your account; GET /v1/ssh-keys lists yours.",
                {"keyId": key_id},
            )
        tx.delete_ssh_key(key_id)
    return Ok(ok=True)
