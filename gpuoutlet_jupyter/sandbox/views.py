"""Stored rows as the API shows them."""

from __future__ import annotations

from .billing import Balance
from .catalogue import Listing
from .clock import iso_utc
from .money import dollars
from .rentals import charged_at, usage_at
from .schemas import (
    BalanceOut,
    InvoiceOut,
    LineItemOut,
    ListingOut,
    Meter,
    Rental,
    RentalCreated,
    RentalListItem,
    SSHKeyOut,
    UserOut,
)
from .store import Invoice, LedgerEntry, RentalRow, SSHKey, User


def iso(value: int | None) -> str | None:
    return None if value is None else iso_utc(value)


def rental_item(rental: RentalRow, now: int, *, omit_stopped_at: bool = False) -> RentalListItem:
    return RentalListItem(
        id=rental.id,
        name=rental.name,
        status=rental.status,
        familyId=rental.family_id,
        gpuCount=rental.gpu_count,
        pricePerHourCents=rental.price_cents,
        host=rental.host,
        port=rental.port,
        region=rental.region,
        startedAt=iso_utc(rental.started_at),
        stoppedAt=None if omit_stopped_at else iso(rental.stopped_at),
        totalChargedCents=charged_at(rental, now),
    )


def rental_full(rental: RentalRow, now: int, *, omit_stopped_at: bool = False) -> Rental:
    item = rental_item(rental, now, omit_stopped_at=omit_stopped_at)
    return Rental(**item.model_dump(), provider=rental.provider, error=rental.error)


def rental_created(rental: RentalRow) -> RentalCreated:
    return RentalCreated(
        id=rental.id,
        status=rental.status,
        host=rental.host,
        port=rental.port,
        pricePerHourCents=rental.price_cents,
        startedAt=iso_utc(rental.started_at),
    )


def meter(rental: RentalRow, now: int) -> Meter:
    seconds, charge = usage_at(rental, now)
    if rental.status == "running":
        heartbeat: int | None = now
    else:
        heartbeat = rental.last_metered_at
    return Meter(
        rentalId=rental.id,
        ratePerHour=dollars(rental.price_cents),
        secondsBilled=seconds,
        currentChargeCents=charge,
        lastHeartbeatAt=iso(heartbeat),
    )


def listing(x: Listing) -> ListingOut:
    return ListingOut(
        id=x.id,
        model=x.family.model,
        family=x.family.id,
        vramGb=x.family.vram_gb,
        gpuCount=x.gpu_count,
        pricePerHourCents=x.price_cents,
        providerCode=x.provider,
        region=x.region,
        regionCode=x.region_code,
        interconnect=x.family.interconnect,
    )


def user(u: User) -> UserOut:
    return UserOut(id=u.id, email=u.email, createdAt=iso_utc(u.created_at))


def balance(b: Balance) -> BalanceOut:
    return BalanceOut(
        availableCents=b.available_cents,
        reservedCents=b.reserved_cents,
        totalCents=b.total_cents,
        openInvoicesCents=b.open_invoices_cents,
        openInvoiceCount=b.open_invoice_count,
        updatedAt=iso_utc(b.updated_at),
    )


def ledger_entry(entry: LedgerEntry) -> dict[str, object]:
    """A dict, not a model: `rentalId` and `stripeChargeId` are absent where they do not
    apply (the sheet's example), not null."""
    out: dict[str, object] = {
        "id": entry.id,
        "type": entry.type,
        "amountCents": entry.amount_cents,
        "balanceAfterCents": entry.balance_after_cents,
        "createdAt": iso_utc(entry.created_at),
    }
    if entry.rental_id is not None:
        out["rentalId"] = entry.rental_id
    if entry.stripe_charge_id is not None:
        out["stripeChargeId"] = entry.stripe_charge_id
    return out


def invoice(inv: Invoice) -> InvoiceOut:
    token = inv.stripe_invoice_id.removeprefix("in_")
    return InvoiceOut(
        id=inv.id,
        status=inv.status,
        reason=inv.reason,
        amountCents=inv.amount_cents,
        currency="USD",
        rentalId=inv.rental_id,
        stripeInvoiceId=inv.stripe_invoice_id,
        hostedInvoiceUrl=None
        if inv.status == "draft"
        else f"https://invoice.stripe.com/i/acct_sandbox/{token}",
        invoicePdfUrl=None
        if inv.status == "draft"
        else f"https://pay.stripe.com/invoice/{token}/pdf",
        receiptUrl=f"https://pay.stripe.com/receipts/{token}" if inv.status == "paid" else None,
        createdAt=iso_utc(inv.created_at),
        dueAt=iso_utc(inv.due_at),
        paidAt=iso(inv.paid_at),
        voidedAt=iso(inv.voided_at),
        lineItems=[
            LineItemOut(
                id=inv.line_item_id,
                description=inv.description,
                amountCents=inv.amount_cents,
                rentalId=inv.rental_id,
                periodStart=None,
                periodEnd=None,
            )
        ],
    )


def ssh_key(key: SSHKey) -> SSHKeyOut:
    return SSHKeyOut(
        id=key.id,
        name=key.name,
        fingerprint=key.fingerprint,
        algorithm=key.algorithm,
        createdAt=iso_utc(key.created_at),
    )
