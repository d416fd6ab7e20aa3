"""%gpu_wallet and %gpu_rentals show what the active rentals burn, what they cost (the API's own
numbers), how long the wallet lasts, and its warnings."""

from __future__ import annotations

from typing import Any

from helpers.notebook import rental_json

from gpuoutlet_jupyter.notebook.views import RentalInfo, RentalsTable, WalletInfo
from gpuoutlet_jupyter.rest.models import WalletView


def rental(rental_id: str, status: str, price: int, cost: int, **more: Any) -> RentalInfo:
    return RentalInfo(
        rental_json(
            id=rental_id,
            status=status,
            pricePerHourCents=price,
            totalChargedCents=cost,
            costCents=cost,
            **more,
        )
    )


def wallet(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "availableCents": 1000,
        "reservedCents": 130,
        "totalCents": 1130,
        "openInvoicesCents": 0,
        "openInvoiceCount": 0,
        "updatedAt": None,
        "burnCentsPerHour": 130,
        "hoursLeft": 8.69,
        "costCents": 0,
        "activeRentals": 2,
        "maxHourlySpendCents": 200,
        "warnings": [],
    }
    base.update(fields)
    return WalletView.model_validate(base).to_json()


def test_wallet_shows_the_balance_the_burn_the_hours_left_and_the_cap() -> None:
    text = WalletInfo(wallet()).to_text()
    assert "Wallet: $10.00 available, $1.30 reserved" in text and "$11.30 in all" in text
    assert "Burn: $1.30/h for the active rentals" in text
    assert "about 8.7 hours at that rate" in text
    assert "Spending cap: $2.00/h." in text
    html = WalletInfo(wallet())._repr_html_()
    assert html.count("<p>") == 3 and "8.7 hours" in html

    idle = WalletInfo(wallet(burnCentsPerHour=0, hoursLeft=None, maxHourlySpendCents=None))
    assert "nothing is running" in idle.to_text() and "cap" not in idle.to_text()
    short = WalletInfo(wallet(burnCentsPerHour=87, hoursLeft=0.75))
    assert "45 minutes" in short.to_text()


def test_wallet_shows_open_invoices_and_its_warnings() -> None:
    owed = WalletInfo(
        wallet(
            openInvoicesCents=10000,
            openInvoiceCount=1,
            warnings=[{"code": "open_invoices", "message": "You owe $100.00 on 1 open invoice."}],
        )
    )
    text = owed.to_text()
    assert "Owed on open invoices: $100.00" in text and "⚠ You owe $100.00" in text
    assert "var(--jp-warn-color0" in owed._repr_html_()


def test_rentals_table_shows_the_burn_and_the_apis_costs() -> None:
    table = RentalsTable(
        [
            rental("rent_a", "running", 60, 61, host="10.0.0.1", port=22),
            rental("rent_b", "provisioning", 120, 0),
            rental("rent_c", "stopped", 100, 5, stoppedAt="2026-06-07T09:14:22Z"),
            rental("rent_d", "running", 120, 121, gone=True),
        ]
    )
    assert table.burn_cents_per_hour == 180
    # Summed from what gpuoutlet charged each one, never our own arithmetic.
    assert table.cost_cents == 61 + 0 + 5 + 121
    summary = "Burning $1.80/h across 2 active rental(s); cost so far $1.87 in all."
    assert summary in table.to_text()
    assert summary in table._repr_html_()

    # With the wallet: how long it lasts at that burn, and its warnings under the table.
    funded = RentalsTable(table.rentals, wallet=wallet(totalCents=1800, hoursLeft=10.0))
    assert (
        "cost so far $1.87 in all; the wallet's $18.00 lasts about 10.0 hours at that rate."
        in funded.to_text()
    )
    warned = RentalsTable(
        table.rentals,
        wallet=wallet(
            totalCents=90,
            hoursLeft=0.5,
            warnings=[{"code": "wallet_under_an_hour", "message": "every pod stops at $0"}],
        ),
    )
    assert "⚠ every pod stops at $0" in warned.to_text()

    stopped = RentalsTable([rental("rent_c", "stopped", 100, 5)])
    assert "nothing is being spent" in stopped.to_text()
    # After %gpu_stop --all the list is ending: no totals under it.
    assert "Burning" not in RentalsTable(table.rentals, title="Stopped", totals=False).to_text()
    assert "No rentals" in RentalsTable([]).to_text()


def test_a_stopped_rental_shows_its_settled_cost_and_refund() -> None:
    stop = {
        "finalChargedCents": 3,
        "refundedCents": 3,
        "requestedAt": None,
        "alreadyStopped": False,
    }
    info = rental("rent_e", "stopped", 60, 3, stop=stop)
    assert "cost $0.03 in all, $0.03 refunded" in info.to_text()
    assert info.stop_line() == (
        "rent_e is stopped: it cost $0.03 in all, and $0.03 was refunded (it ran under a minute)."
    )
