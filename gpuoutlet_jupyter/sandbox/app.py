"""FastAPI routes of the /v1 API and the /sandbox test controls, and the error handlers."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.security import APIKeyCookie
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .._version import __version__
from .catalogue import DEFAULT_TEMPLATE, TEMPLATES
from .clock import iso_utc
from .errors import UNAUTHENTICATED_MESSAGE, ApiError, error_response
from .faults import Faults
from .gate import Gate
from .provider import usable_authorized_keys
from .rentals import to_wire
from .runtime import Sandbox
from .schemas import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    AccountCreated,
    AdvanceRequest,
    ClockOut,
    CreateAccountRequest,
    CreateRentalRequest,
    DepositRequest,
    ErrorBody,
    FailRequest,
    FamilyList,
    FamilyOut,
    Ledger,
    Rental,
    RentalList,
    WalletOut,
)
from .settings import MAX_BODY_BYTES
from .store import RentalRow, Wallet

logger = logging.getLogger(__name__)

_EXAMPLE_BODY = '{"familyId": "rtx-4090", "gpuCount": 1}'
_HINTS = {
    "familyId": 'Send familyId as a string such as "rtx-4090"; GET /v1/families lists them.',
    "gpuCount": "Send gpuCount as a JSON integer: 1, 2, 4 or 8.",
    "templateId": f"Omit templateId for {DEFAULT_TEMPLATE} or send one of: {', '.join(TEMPLATES)}.",
    "region": "Send an upper-case country code such as DE or US, or EU, NA or APAC; omit it "
    "for any region.",
    "name": "Send name as a string of at most 64 characters, or omit it.",
    "autoStopAfterHours": "Send autoStopAfterHours as a positive number of hours, or omit it.",
    "Idempotency-Key": "Send an Idempotency-Key of 1 to 255 characters, or omit the header.",
}

# --- error responses in the OpenAPI document ----------------------------------------------

_ERROR_DOCS: dict[int | str, str] = {
    400: "`validation_error` (with `field`) or `invalid_json`.",
    401: "`unauthenticated`: the `sid` cookie is missing or unknown.",
    402: "`insufficient_balance`: available is under one hour of cost "
    "(with `requiredCents` and `availableCents`).",
    404: "`not_found`: no such rental on this account.",
    409: "`no_capacity`: no matching listing has enough free GPUs.",
    413: f"`payload_too_large`: the body is over {MAX_BODY_BYTES} bytes.",
    422: "`idempotency_conflict`: the Idempotency-Key was used with a different body.",
    429: "`rate_limited`: retry after `Retry-After` seconds (also `retryAfterSeconds`).",
    "5XX": "`internal_error` or `unavailable`: retry later.",
}


def _errors(*statuses: int | str) -> dict[int | str, dict[str, Any]]:
    documented: dict[int | str, dict[str, Any]] = {}
    for status in (*statuses, 401, 429, "5XX"):
        entry: dict[str, Any] = {"model": ErrorBody, "description": _ERROR_DOCS[status]}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                }
            }
        documented[status] = entry
    return documented


# --- dependencies -------------------------------------------------------------------------

# Declared for the OpenAPI document; the Gate middleware has already checked the cookie.
_sid_cookie = APIKeyCookie(
    name="sid", auto_error=False, description="Session id of the account (`sid` cookie)."
)


def _the_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def _sandbox(request: Request) -> Sandbox:
    # async: FastAPI runs plain-def dependencies in a thread pool, a hop per request.
    return _the_sandbox(request)


async def _account_id(request: Request, _sid: Annotated[str | None, Security(_sid_cookie)]) -> str:
    account_id: str | None = getattr(request.state, "account_id", None)
    if account_id is None:
        raise ApiError(401, "unauthenticated", UNAUTHENTICATED_MESSAGE)
    return account_id


async def _admin(request: Request) -> None:
    token = _the_sandbox(request).credentials.admin_token
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token):
        raise ApiError(
            401,
            "unauthenticated",
            "The /sandbox controls need `Authorization: Bearer <adminToken>`; the sandbox "
            "prints the token at start (--print-json).",
        )


SandboxDep = Annotated[Sandbox, Depends(_sandbox)]
AccountDep = Annotated[str, Depends(_account_id)]


# --- /v1 ----------------------------------------------------------------------------------

v1 = APIRouter(prefix="/v1")


@v1.get(
    "/families",
    response_model=FamilyList,
    tags=["catalogue"],
    summary="GPU families with their cheapest price, countries and availability",
    responses=_errors(),
)
async def list_families(sandbox: SandboxDep, _account: AccountDep) -> FamilyList:
    catalogue = sandbox.catalogue
    usage = sandbox.store.read.usage()
    families = []
    for family in catalogue.families.values():
        listings = catalogue.listings_for(family.id)
        families.append(
            FamilyOut(
                id=family.id,
                displayName=family.display_name,
                gpuMemoryGb=family.gpu_memory_gb,
                pricePerHourCents=min(x.price_per_gpu_hour_cents for x in listings),
                regions=sorted({x.country for x in listings}),
                available=any(catalogue.capacity(x) > usage.get(x.id, 0) for x in listings),
            )
        )
    return FamilyList(families=families)


@v1.get(
    "/wallet",
    response_model=WalletOut,
    tags=["wallet"],
    summary="Available and reserved balance",
    responses=_errors(),
)
async def get_wallet(sandbox: SandboxDep, account_id: AccountDep) -> WalletOut:
    wallet = sandbox.wallet(account_id)
    return WalletOut(
        availableCents=wallet.available_cents,
        reservedCents=wallet.reserved_cents,
        currency="USD",
    )


@v1.post(
    "/rentals",
    response_model=Rental,
    tags=["rentals"],
    summary="Rent GPUs: reserves one hour of cost and starts provisioning",
    description=(
        "Validates, locks the wallet, checks that available covers one hour of cost, moves "
        "that hour to reserved, picks the cheapest matching listing, allocates, and returns "
        "the rental as `provisioning`. The same `Idempotency-Key` returns the same rental."
    ),
    responses=_errors(400, 402, 409, 413, 422),
)
async def create_rental(
    body: CreateRentalRequest,
    sandbox: SandboxDep,
    account_id: AccountDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            description="Retry-safe creation: the same key returns the same rental.",
        ),
    ] = None,
) -> Rental:
    rental = await sandbox.rentals.create(account_id, body, idempotency_key)
    return _v1(sandbox, rental)


@v1.get(
    "/rentals",
    response_model=RentalList,
    tags=["rentals"],
    summary="The account's rentals, newest first",
    responses=_errors(),
)
async def list_rentals(sandbox: SandboxDep, account_id: AccountDep) -> RentalList:
    rentals = sandbox.store.read.rentals_of(account_id)
    return RentalList(rentals=[_v1(sandbox, r) for r in rentals])


@v1.get(
    "/rentals/{rental_id}",
    response_model=Rental,
    tags=["rentals"],
    summary="One rental; poll every 2 s until it is running",
    responses=_errors(404),
)
async def get_rental(rental_id: str, sandbox: SandboxDep, account_id: AccountDep) -> Rental:
    rental = sandbox.store.read.rental(rental_id)
    if rental is None or rental.account_id != account_id:
        raise ApiError(
            404, "not_found", f"No rental {rental_id} on this account; GET /v1/rentals lists yours."
        )
    return _v1(sandbox, rental)


@v1.post(
    "/rentals/{rental_id}/stop",
    response_model=Rental,
    tags=["rentals"],
    summary="Stop a rental: settles the money now; status stopping, then stopped",
    responses=_errors(404, 413),
)
async def stop_rental(rental_id: str, sandbox: SandboxDep, account_id: AccountDep) -> Rental:
    return _v1(sandbox, await sandbox.rentals.stop(account_id, rental_id))


def _v1(sandbox: Sandbox, rental: RentalRow) -> Rental:
    """A rental as /v1 answers it (without `stoppedAt` under the `omitStoppedAt` fault)."""
    wire = to_wire(rental)
    if sandbox.faults.current.omitStoppedAt:
        wire = wire.model_copy(update={"stoppedAt": None})
    return wire


# --- /sandbox test controls ---------------------------------------------------------------

admin = APIRouter(prefix="/sandbox", include_in_schema=False, dependencies=[Depends(_admin)])


def _ledger(wallet: Wallet) -> Ledger:
    return Ledger(
        depositedCents=wallet.deposited_cents,
        availableCents=wallet.available_cents,
        reservedCents=wallet.reserved_cents,
        spentCents=wallet.spent_cents,
    )


def _clock(sandbox: Sandbox) -> ClockOut:
    now = sandbox.clock.now()
    return ClockOut(
        now=iso_utc(now),
        epochSeconds=now,
        timeScale=sandbox.clock.time_scale,
        advancedSeconds=sandbox.clock.advanced_seconds,
    )


@admin.post("/accounts", response_model=AccountCreated)
async def create_account(body: CreateAccountRequest, sandbox: SandboxDep) -> AccountCreated:
    if body.authorizedKeys and not usable_authorized_keys(body.authorizedKeys):
        raise ApiError(
            400,
            "validation_error",
            "authorizedKeys holds no usable OpenSSH public key; send authorized_keys lines "
            "such as the content of ~/.ssh/id_ed25519.pub, or null.",
            field="authorizedKeys",
        )
    account = await sandbox.create_account(body.balanceCents, body.authorizedKeys)
    return AccountCreated(accountId=account.id, sid=account.sid)


@admin.post("/accounts/{account_id}/deposit", response_model=Ledger)
async def deposit(account_id: str, body: DepositRequest, sandbox: SandboxDep) -> Ledger:
    return _ledger(await sandbox.deposit(account_id, body.cents))


@admin.get("/accounts/{account_id}/ledger", response_model=Ledger)
async def ledger(account_id: str, sandbox: SandboxDep) -> Ledger:
    return _ledger(sandbox.wallet(account_id))


@admin.get("/clock", response_model=ClockOut)
async def get_clock(sandbox: SandboxDep) -> ClockOut:
    return _clock(sandbox)


@admin.post("/clock/advance", response_model=ClockOut)
async def advance_clock(body: AdvanceRequest, sandbox: SandboxDep) -> ClockOut:
    try:
        sandbox.clock.advance(body.seconds)
    except ValueError as exc:
        raise ApiError(400, "validation_error", str(exc), field="seconds") from None
    await sandbox.worker.run_once()
    return _clock(sandbox)


@admin.post("/tick", response_model=ClockOut)
async def tick(sandbox: SandboxDep) -> ClockOut:
    await sandbox.worker.run_once()
    return _clock(sandbox)


@admin.get("/faults", response_model=Faults)
async def get_faults(sandbox: SandboxDep) -> Faults:
    return sandbox.faults.current


@admin.put("/faults", response_model=Faults)
async def put_faults(body: Faults, sandbox: SandboxDep) -> Faults:
    sandbox.faults.replace(body)
    logger.info("faults set: %s", body.model_dump(exclude_defaults=True))
    return sandbox.faults.current


@admin.post("/rentals/{rental_id}/fail", response_model=Rental)
async def fail_rental(
    rental_id: str, sandbox: SandboxDep, body: FailRequest | None = None
) -> Rental:
    current = sandbox.store.read.rental(rental_id)
    host = current.provider_host if current is not None else "?"
    error = (body.error if body else None) or f"provider: host {host} failed"
    return to_wire(await sandbox.rentals.fail(rental_id, error))


@admin.delete("/rentals/{rental_id}", response_model=Rental)
async def forget_rental(rental_id: str, sandbox: SandboxDep) -> Rental:
    return to_wire(await sandbox.rentals.forget(rental_id))


# --- errors -------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(error: dict[str, Any]) -> ApiError:
    """One pydantic/FastAPI validation error as our 400, saying what to send instead."""
    kind = error["type"]
    loc = tuple(str(part) for part in error.get("loc", ()))
    if kind == "json_invalid":
        detail = error.get("ctx", {}).get("error", "invalid JSON")
        return ApiError(
            400,
            "invalid_json",
            f"The request body is not valid JSON ({detail}). Send a JSON object such as "
            f"{_EXAMPLE_BODY} with Content-Type: application/json.",
        )
    source, path = (loc[0], loc[1:]) if loc else ("body", ())
    field = ".".join(path) if path else source
    if source == "body" and not path:
        what = "missing" if kind == "missing" else "not a JSON object"
        return ApiError(
            400,
            "validation_error",
            f"The request body is {what}. Send a JSON object such as {_EXAMPLE_BODY} "
            "with Content-Type: application/json.",
            field="body",
        )
    hint = _HINTS.get(field, "")
    if kind == "missing":
        message = f"{field} is required. {hint}"
    elif kind == "value_error":
        message = f"{error.get('ctx', {}).get('error', error['msg'])}."
    else:
        message = f"{field} is invalid: {error['msg']} (got {_shown(error.get('input'))}). {hint}"
    return ApiError(400, "validation_error", message.strip(), field=field)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    return _describe(errors[0] if errors else {"type": "missing", "loc": ("body",)}).response()


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return error_response(
            404, "not_found", f"No such endpoint: {method} {path}. GET /openapi.json lists them."
        )
    if exc.status_code == 405:
        return error_response(
            405,
            "method_not_allowed",
            f"{path} does not accept {method}. GET /openapi.json lists the methods.",
            exc.headers,
        )
    if exc.status_code == 400:
        return error_response(
            400,
            "invalid_json",
            f"The request body could not be decoded. Send UTF-8 JSON such as {_EXAMPLE_BODY}.",
        )
    code = "internal_error" if exc.status_code >= 500 else "bad_request"
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "The sandbox hit an unexpected error (it is in the sandbox's log). Retry; if it "
        "persists, report it with the log.",
    )


# --- the app ------------------------------------------------------------------------------


def create_app(sandbox: Sandbox) -> FastAPI:
    """The ASGI app; its lifespan starts the worker and closes the sandbox on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sandbox.start()
        try:
            yield
        finally:
            await sandbox.close()

    app = FastAPI(
        title="gpuoutlet rentals API (sandbox)",
        version=__version__,
        description=(
            "A local implementation of the gpuoutlet rentals API. Every /v1 endpoint needs "
            'the `sid` cookie. Errors are `{"error": {"code", "message", ...}}`.'
        ),
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    app.include_router(v1)
    app.include_router(admin)
    app.add_middleware(Gate, sandbox=sandbox)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_crash)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _without_default_422(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _without_default_422(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 for every operation with parameters; ours validate with 400."""
    default_ref = "#/components/schemas/HTTPValidationError"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is None:
                continue
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            if ref.get("$ref") == default_ref:
                del operation["responses"]["422"]
    schemas = schema.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return schema
