"""The wallet as the API shows it (available, reserved, open invoices) and invoices."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, replace
from typing import Literal

from . import ids
from .store import Invoice, Queries, Tx

#: Stripe's dunning is soft: an invoice is "due" a week after it is made (sheet 2.4's example).
INVOICE_DUE_SECONDS = 7 * 24 * 3600
INVOICE_REASONS = ("topup_failed", "overage", "manual")
#: What `GET /v1/billing/invoices?status=` takes (drafts are never shown).
InvoiceFilter = Literal["open", "paid", "void", "uncollectible"]
_STRIPE_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Balance:
    available_cents: int
    reserved_cents: int
    total_cents: int
    deposited_cents: int
    spent_cents: int
    open_invoices_cents: int
    open_invoice_count: int
    updated_at: int


def balance(q: Queries, user_id: str) -> Balance | None:
    """The reserve is what is left of the active rentals' first hours, never more than the
    wallet holds (a rental past its first hour can eat into it before the wallet is at $0)."""
    wallet = q.wallet(user_id)
    if wallet is None:
        return None
    reserved = min(wallet.total_cents, q.holds(user_id))
    count, cents = q.open_invoices(user_id)
    return Balance(
        available_cents=wallet.total_cents - reserved,
        reserved_cents=reserved,
        total_cents=wallet.total_cents,
        deposited_cents=wallet.deposited_cents,
        spent_cents=wallet.spent_cents,
        open_invoices_cents=cents,
        open_invoice_count=count,
        updated_at=wallet.updated_at,
    )


def stripe_id(prefix: str) -> str:
    """A made-up Stripe object id (`ch_3Q…`, `in_3Q…`): the sandbox has no Stripe."""
    return prefix + "_3Q" + "".join(secrets.choice(_STRIPE_ALPHABET) for _ in range(22))


def open_invoice(
    tx: Tx,
    user_id: str,
    *,
    reason: str,
    amount_cents: int,
    now: int,
    rental_id: str | None = None,
    description: str | None = None,
) -> Invoice:
    if reason not in INVOICE_REASONS:
        raise ValueError(f"invoice reason must be one of {INVOICE_REASONS}")
    if description is None:
        dollars = f"${amount_cents / 100:,.2f}"
        description = {
            "overage": f"Usage of {rental_id} beyond the wallet balance ({dollars})",
            "topup_failed": f"Auto-topup of {dollars} (card declined)",
            "manual": f"Manual invoice of {dollars}",
        }[reason]
    invoice = Invoice(
        id=ids.new_id("inv"),
        user_id=user_id,
        status="open",
        reason=reason,
        amount_cents=amount_cents,
        rental_id=rental_id,
        stripe_invoice_id=stripe_id("in"),
        line_item_id=ids.new_id("li"),
        description=description,
        created_at=now,
        due_at=now + INVOICE_DUE_SECONDS,
        paid_at=None,
        voided_at=None,
    )
    tx.insert_invoice(invoice)
    tx.touch_wallet(user_id, now)
    return invoice


def pay_invoice(tx: Tx, invoice: Invoice, now: int) -> Invoice:
    """What Stripe's `invoice.paid` does: paid; a failed top-up's amount reaches the wallet
    (an overage only clears the debt, sheet 3.6)."""
    paid = replace(invoice, status="paid", paid_at=now)
    tx.update_invoice(paid)
    if invoice.reason == "topup_failed":
        tx.move_money(
            invoice.user_id,
            ids.new_id("led"),
            "auto_topup",
            invoice.amount_cents,
            now,
            stripe_charge_id=stripe_id("ch"),
        )
    else:
        tx.touch_wallet(invoice.user_id, now)
    return paid
