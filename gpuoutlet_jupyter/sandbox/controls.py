"""The /sandbox test controls (not part of the vendor's API): accounts and money, the clock,
faults, rate limits, the mailbox, invoices, bulk history, rentals' failures and pods. Every
one needs `Authorization: Bearer <adminToken>`."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from . import billing, views
from .clock import iso_utc
from .errors import ApiError
from .faults import Faults
from .keys import parse_public_key
from .runtime import Sandbox
from .schemas import (
    AccountCreated,
    AdvanceRequest,
    BulkRentalsCreated,
    BulkRentalsRequest,
    ClockOut,
    CreateAccountRequest,
    CreateRentalRequest,
    DepositRequest,
    ExpireSessionRequest,
    FailRequest,
    InvoiceOut,
    InvoiceRequest,
    Mail,
    Mailbox,
    Ok,
    PodInfo,
    RateLimits,
    RateLimitsOut,
    Rental,
    SessionCreated,
    WalletView,
)

logger = logging.getLogger(__name__)


async def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def _admin(request: Request) -> None:
    token = (await _sandbox(request)).credentials.admin_token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token):
        raise ApiError(
            401,
            "unauthorized",
            "The /sandbox controls need `Authorization: Bearer <adminToken>`; the sandbox "
            "prints the token at start (--print-json).",
        )


SandboxDep = Annotated[Sandbox, Depends(_sandbox)]
controls = APIRouter(prefix="/sandbox", include_in_schema=False, dependencies=[Depends(_admin)])


def _wallet(sandbox: Sandbox, user_id: str) -> WalletView:
    found = billing.balance(sandbox.store.read, user_id)
    if found is None:
        raise ApiError(404, "not_found", f"No account {user_id}.")
    return WalletView(
        depositedCents=found.deposited_cents,
        availableCents=found.available_cents,
        reservedCents=found.reserved_cents,
        spentCents=found.spent_cents,
        totalCents=found.total_cents,
        openInvoicesCents=found.open_invoices_cents,
        openInvoiceCount=found.open_invoice_count,
    )


def _clock(sandbox: Sandbox) -> ClockOut:
    now = sandbox.clock.now()
    return ClockOut(
        now=iso_utc(now),
        epochSeconds=now,
        timeScale=sandbox.clock.time_scale,
        advancedSeconds=sandbox.clock.advanced_seconds,
    )


def _full(sandbox: Sandbox, rental_id: str) -> Rental:
    rental = sandbox.store.read.rental(rental_id, include_deleted=True)
    if rental is None:
        raise ApiError(404, "not_found", f"No rental {rental_id}.")
    return views.rental_full(rental, sandbox.clock.now_seconds())


# --- accounts and money -------------------------------------------------------------------


@controls.post("/accounts", response_model=AccountCreated)
async def create_account(body: CreateAccountRequest, sandbox: SandboxDep) -> AccountCreated:
    """A user with a balance, its SSH keys registered, and a session."""
    account = await sandbox.create_account(body.balanceCents, body.authorizedKeys, body.email)
    return AccountCreated(accountId=account.user.id, sid=account.sid, email=account.user.email)


@controls.post("/accounts/{account_id}/sessions", response_model=SessionCreated)
async def new_session(account_id: str, sandbox: SandboxDep) -> SessionCreated:
    """Another session of the same account (its own rate-limit bucket)."""
    return SessionCreated(sid=await sandbox.new_session(account_id))


@controls.post("/sessions/expire", response_model=Ok)
async def expire_session(body: ExpireSessionRequest, sandbox: SandboxDep) -> Ok:
    """End a session now, as 30 idle days would: the sid gets 401."""
    return Ok(ok=await sandbox.auth.expire(body.sid))


@controls.post("/accounts/{account_id}/deposit", response_model=WalletView)
async def deposit(account_id: str, body: DepositRequest, sandbox: SandboxDep) -> WalletView:
    await sandbox.deposit(account_id, body.cents, body.type)
    return _wallet(sandbox, account_id)


@controls.get("/accounts/{account_id}/wallet", response_model=WalletView)
async def wallet(account_id: str, sandbox: SandboxDep) -> WalletView:
    return _wallet(sandbox, account_id)


@controls.post("/accounts/{account_id}/invoices", response_model=InvoiceOut)
async def open_invoice(account_id: str, body: InvoiceRequest, sandbox: SandboxDep) -> InvoiceOut:
    """An open invoice on the account (what a declined auto-topup or ops would make)."""
    async with sandbox.store.transaction() as tx:
        if tx.user(account_id) is None:
            raise ApiError(404, "not_found", f"No account {account_id}.")
        invoice = billing.open_invoice(
            tx,
            account_id,
            reason=body.reason,
            amount_cents=body.amountCents,
            now=sandbox.clock.now_seconds(),
            rental_id=body.rentalId,
            description=body.description,
        )
    return views.invoice(invoice)


@controls.post("/invoices/{invoice_id}/pay", response_model=InvoiceOut)
async def pay_invoice(invoice_id: str, sandbox: SandboxDep) -> InvoiceOut:
    """What Stripe's `invoice.paid` webhook does."""
    async with sandbox.store.transaction() as tx:
        invoice = tx.invoice(invoice_id)
        if invoice is None:
            raise ApiError(404, "not_found", f"No invoice {invoice_id}.")
        if invoice.status != "open":
            raise ApiError(409, "conflict", f"Invoice {invoice_id} is {invoice.status}, not open.")
        invoice = billing.pay_invoice(tx, invoice, sandbox.clock.now_seconds())
    return views.invoice(invoice)


@controls.post("/accounts/{account_id}/rentals", response_model=BulkRentalsCreated)
async def bulk_rentals(
    account_id: str, body: BulkRentalsRequest, sandbox: SandboxDep
) -> BulkRentalsCreated:
    """Many rentals at once: past ones straight into the history, or real creates."""
    if sandbox.store.read.user(account_id) is None:
        raise ApiError(404, "not_found", f"No account {account_id}.")
    if body.status == "stopped":
        made = await sandbox.rentals.add_history(
            account_id, body.count, body.familyId, body.gpuCount, body.namePrefix
        )
        return BulkRentalsCreated(ids=made)
    made = []
    for i in range(body.count):
        request = CreateRentalRequest(
            familyId=body.familyId,
            gpuCount=body.gpuCount,
            name=f"{body.namePrefix}-{i + 1}" if body.namePrefix else None,
        )
        made.append((await sandbox.rentals.create(account_id, request)).id)
    return BulkRentalsCreated(ids=made)


# --- sign-in mail -------------------------------------------------------------------------


@controls.get("/mailbox", response_model=Mailbox)
async def mailbox(
    sandbox: SandboxDep,
    email: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Mailbox:
    """What the sandbox would have emailed (sign-in codes, $0 notices), newest first."""
    rows = sandbox.store.read.mailbox(email, limit)
    return Mailbox(
        messages=[
            Mail(
                email=row["email"],
                subject=row["subject"],
                body=row["body"],
                code=row["code"],
                createdAt=iso_utc(row["created_at"]),
            )
            for row in rows
        ]
    )


# --- time, faults and limits --------------------------------------------------------------


@controls.get("/clock", response_model=ClockOut)
async def get_clock(sandbox: SandboxDep) -> ClockOut:
    return _clock(sandbox)


@controls.post("/clock/advance", response_model=ClockOut)
async def advance_clock(body: AdvanceRequest, sandbox: SandboxDep) -> ClockOut:
    try:
        sandbox.clock.advance(body.seconds)
    except ValueError as exc:
        raise ApiError(400, "validation_failed", str(exc), {"seconds": str(exc)}) from None
    await sandbox.worker.run_once()
    return _clock(sandbox)


@controls.post("/tick", response_model=ClockOut)
async def tick(sandbox: SandboxDep) -> ClockOut:
    await sandbox.worker.run_once()
    return _clock(sandbox)


@controls.get("/faults", response_model=Faults)
async def get_faults(sandbox: SandboxDep) -> Faults:
    return sandbox.faults.current


@controls.put("/faults", response_model=Faults)
async def put_faults(body: Faults, sandbox: SandboxDep) -> Faults:
    sandbox.faults.replace(body)
    logger.info("faults set: %s", body.model_dump(exclude_defaults=True))
    return sandbox.faults.current


@controls.get("/rate-limits", response_model=RateLimitsOut)
async def get_rate_limits(sandbox: SandboxDep) -> RateLimitsOut:
    limiter = sandbox.limiter
    return RateLimitsOut(
        perMinute=limiter.per_minute, perHour=limiter.per_hour, refusedCount=limiter.refused
    )


@controls.put("/rate-limits", response_model=RateLimitsOut)
async def put_rate_limits(body: RateLimits, sandbox: SandboxDep) -> RateLimitsOut:
    """New limits (0 turns a window off); every window and the 429 count start over."""
    sandbox.limiter.configure(body.perMinute, body.perHour)
    logger.info("rate limits: %d/minute, %d/hour", body.perMinute, body.perHour)
    return await get_rate_limits(sandbox)


# --- rentals and pods ---------------------------------------------------------------------


@controls.post("/rentals/{rental_id}/fail", response_model=Rental)
async def fail_rental(
    rental_id: str, sandbox: SandboxDep, body: FailRequest | None = None
) -> Rental:
    """The provider reports the machine broken: failed, refunded, pod and disk gone."""
    current = sandbox.store.read.rental(rental_id)
    host = current.provider_host if current is not None else "?"
    error = (body.error if body else None) or f"provider: host {host} failed"
    await sandbox.rentals.fail(rental_id, error)
    return _full(sandbox, rental_id)


@controls.delete("/rentals/{rental_id}", response_model=Rental)
async def forget_rental(rental_id: str, sandbox: SandboxDep) -> Rental:
    """The vendor loses the rental: settled, torn down, gone from /v1."""
    await sandbox.rentals.forget(rental_id)
    return _full(sandbox, rental_id)


def _is_dir(path: str) -> bool:
    return Path(path).is_dir()


@controls.get("/rentals/{rental_id}/pod", response_model=PodInfo)
async def pod_info(rental_id: str, sandbox: SandboxDep) -> PodInfo:
    """Where the rental's pod keeps its disk, and which keys it accepts."""
    rental = sandbox.store.read.rental(rental_id, include_deleted=True)
    if rental is None:
        raise ApiError(404, "not_found", f"No rental {rental_id}.")
    home = sandbox.provider.pod_home(rental_id)
    pod = sandbox.provider.pod(rental_id)
    fingerprints = [
        parse_public_key(line).fingerprint
        for line in rental.authorized_keys.splitlines()
        if line.strip()
    ]

    return PodInfo(
        rentalId=rental_id,
        running=pod is not None,
        home=home,
        homeExists=_is_dir(home),
        port=pod.port if pod is not None else None,
        authorizedKeyFingerprints=fingerprints,
    )
