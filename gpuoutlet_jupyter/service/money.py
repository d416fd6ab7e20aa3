"""Money in the user's terms: the burn, how long the wallet lasts, its warnings, the checks before a create.

Every amount comes from the API (the balance, the quote, each rental's ``totalChargedCents``);
the only arithmetic here is summing and dividing those numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..api import Balance, InsufficientBalanceError, Rental, RentalRequest, format_cents
from ..api.errors import SpendingCapError
from .record import QuoteInfo


@dataclass(frozen=True)
class Spending:
    """What the tracked rentals cost: the hourly burn of the active ones, and the total so far."""

    #: Summed locked price per hour of the rentals not failed, stopped or gone.
    burn_cents_per_hour: int
    #: What every tracked rental has cost, as the API reported it.
    cost_cents: int
    #: How many rentals make up the burn.
    active: int

    def hours_left(self, cents: int) -> float | None:
        """How long ``cents`` last at this burn; None when nothing burns."""
        if self.burn_cents_per_hour <= 0:
            return None
        return max(0, cents) / self.burn_cents_per_hour


def warning(code: str, message: str) -> dict[str, str]:
    """One warning of a REST reply: a stable code for the sidebar, a sentence for people."""
    return {"code": code, "message": message}


def wallet_warnings(balance: Balance, spending: Spending, site: str) -> list[dict[str, str]]:
    """What the wallet view must say: pods stopping at $0 within the hour, money owed."""
    found = []
    hours = spending.hours_left(balance.total_cents)
    if hours is not None and hours < 1:
        minutes = max(0, round(hours * 60))
        found.append(
            warning(
                "wallet_under_an_hour",
                f"At the current burn ({format_cents(spending.burn_cents_per_hour)}/h) the "
                f"wallet's {format_cents(balance.total_cents)} lasts about {minutes} minutes. "
                "When it reaches $0 gpuoutlet stops every pod, and a stop destroys the pod and "
                f"its disk: top up on {site} now, or stop what you do not need.",
            )
        )
    if balance.open_invoices_cents > 0:
        count = balance.open_invoice_count
        found.append(
            warning(
                "open_invoices",
                f"You owe {format_cents(balance.open_invoices_cents)} on {count or 'an'} open "
                f"invoice{'s' if count != 1 else ''}. Pay it on {site} (Billing); the "
                "invoice email has a pay link.",
            )
        )
    return found


def wallet_json(
    balance: Balance, spending: Spending, *, cap_cents: int, site: str
) -> dict[str, Any]:
    """The REST wallet: the balance, the burn and how long the wallet lasts, the cap, warnings."""
    hours_left = spending.hours_left(balance.total_cents)
    return {
        **balance.to_json(),
        "burnCentsPerHour": spending.burn_cents_per_hour,
        "hoursLeft": None if hours_left is None else round(hours_left, 2),
        "costCents": spending.cost_cents,
        "activeRentals": spending.active,
        "maxHourlySpendCents": cap_cents or None,
        "warnings": wallet_warnings(balance, spending, site),
    }


def check_balance(quote: QuoteInfo, balance: Balance, request: RentalRequest, site: str) -> None:
    """Refuse, before sending, a create the wallet cannot reserve an hour of."""
    if balance.available_cents >= quote.price_per_hour_cents:
        return
    needed, available = quote.price_per_hour_cents, balance.available_cents
    raise InsufficientBalanceError(
        f"Not enough balance for {request.describe()}: a rental reserves its first hour from "
        f"the wallet when it is created, {format_cents(needed)} for this one, and the wallet "
        f"has {format_cents(available)} available. Top up the wallet on {site}, or choose "
        "fewer GPUs or a cheaper family (%gpu_families). Nothing was sent and nothing was "
        "charged.",
        needed_cents=needed,
        available_cents=available,
        status_code=403,
        code="insufficient_balance",
        api_message="",
    )


def check_cap(
    quote: QuoteInfo | None,
    *,
    cap_cents: int,
    burn_cents_per_hour: int,
    request: RentalRequest,
    reason: str | None = None,
) -> None:
    """Refuse a create that would take the burn over the cap; without a quote, refuse (closed)."""
    if cap_cents <= 0:
        return
    what = request.describe()
    if quote is None:
        raise SpendingCapError(
            cap_cents=cap_cents,
            burn_cents_per_hour=burn_cents_per_hour,
            price_cents_per_hour=None,
            what=what,
            reason=reason,
        )
    if burn_cents_per_hour + quote.price_per_hour_cents > cap_cents:
        raise SpendingCapError(
            cap_cents=cap_cents,
            burn_cents_per_hour=burn_cents_per_hour,
            price_cents_per_hour=quote.price_per_hour_cents,
            what=what,
        )


def confirmation(request: RentalRequest, quote: QuoteInfo, balance: Balance | None) -> str:
    """The line a person reads before (or as) a rental is made, from gpuoutlet's quote."""
    where = ", ".join(p for p in (quote.provider_code, quote.region) if p)
    text = (
        f"{request.describe()} ({request.template_id}) at "
        f"{format_cents(quote.price_per_hour_cents)}/h"
        f"{f' from {where}' if where else ''}, ready in about "
        f"{quote.estimated_provision_seconds:.0f} s. Its first hour, "
        f"{format_cents(quote.price_per_hour_cents)}, is reserved from the wallet"
    )
    if balance is not None:
        text += f" ({format_cents(balance.available_cents)} available)"
    return text + "; it is billed per second while it runs."


def left_running(active: list[Rental], idle_ids: list[str]) -> str | None:
    """The warning when a host stops watching rentals that may still be billed (None: none):
    what runs, what it costs per hour, how to stop it; ``idle_ids``: the idle auto-stops that
    no longer run (they are the host's doing)."""
    if not active:
        return None
    listed = "; ".join(
        f"{rental.id} ({_gpus(rental)}, {format_cents(rental.price_per_hour_cents)}/h)"
        for rental in sorted(active, key=lambda r: r.started_at)
    )
    burn = format_cents(sum(rental.price_per_hour_cents for rental in active))
    idle_note = (
        f" The idle auto-stop of {', '.join(idle_ids)} does not run while Jupyter is down."
        if idle_ids
        else ""
    )
    return (
        f"gpuoutlet is shutting down with {len(active)} rental(s) not stopped: {listed}. They "
        f"keep running and costing money ({burn}/h in all) until stopped: stop them with "
        "%gpu_stop ID in a notebook, from the GPU rentals sidebar, or start Jupyter again to "
        f"watch them.{idle_note}"
    )


def _gpus(rental: Rental) -> str:
    """``rtx-4090 × 2`` (as much of it as the API reported)."""
    family = rental.family_id or "GPU"
    return f"{family} × {rental.gpu_count}" if rental.gpu_count else family


def warn_left_running(watched: list[Any], *, idle_here: bool) -> None:
    """Log the rentals a closing service leaves running (``left_running``): nothing here will
    notice or stop them. ``watched`` are its records; ``idle_here``: it ran idle stops."""
    # Idle auto-stop is this process's doing: nobody stops those while it is down.
    idle = [r.id for r in watched if r.idle_stop_minutes and r.decided_here]
    warning = left_running([r.rental for r in watched], sorted(idle) if idle_here else [])
    if warning is not None:
        logging.getLogger("gpuoutlet_jupyter.service.service").warning(warning)


def spending_of(
    watched: list[Any], records: list[Any], *, pending_burn_cents_per_hour: int = 0
) -> Spending:
    """The hourly burn of the ``watched`` rentals (they may be billed) and of the creates not
    settled yet (their rental may exist), and what every one of ``records`` has cost so far."""
    active = [r.rental for r in watched]
    return Spending(
        burn_cents_per_hour=sum(rental.price_per_hour_cents for rental in active)
        + pending_burn_cents_per_hour,
        cost_cents=sum(r.cost_cents() for r in records),
        active=len(active),
    )
