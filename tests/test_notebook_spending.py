"""%gpu_wallet and %gpu_rentals show what the active rentals burn and how long the balance lasts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gpuoutlet_jupyter.notebook.views import RentalInfo, RentalsTable, WalletInfo


def rental(rental_id: str, status: str, price: int, **more: Any) -> RentalInfo:
    """Started 60 min 20 s ago (from now: tests make them when they start)."""
    data = {
        "id": rental_id,
        "status": status,
        "pricePerHourCents": price,
        "startedAt": started(),
        "familyId": "rtx-4090",
        "gpuCount": 1,
        **more,
    }
    return RentalInfo(data)


def started() -> str:
    # Clear of a whole cent at 1 and 2¢ a minute: the rounded-up costs hold for 10 s or more.
    return (datetime.now(timezone.utc) - timedelta(minutes=60, seconds=20)).isoformat()


def test_wallet_shows_the_burn_the_hours_left_and_the_cap() -> None:
    wallet = WalletInfo(
        {
            "availableCents": 1000,
            "reservedCents": 130,
            "currency": "USD",
            "burnCentsPerHour": 130,
            "hoursLeft": 7.69,
            "maxHourlySpendCents": 200,
        }
    )
    text = wallet.to_text()
    assert "Wallet: $10.00 available, $1.30 reserved" in text
    assert "Burn: $1.30/h for the active rentals" in text
    assert "about 7.7 hours at that rate" in text
    assert "Spending cap: $2.00/h." in text
    html = wallet._repr_html_()
    assert html.count("<p>") == 3 and "7.7 hours" in html

    idle = WalletInfo({"availableCents": 1000, "burnCentsPerHour": 0, "hoursLeft": None})
    assert "nothing is running" in idle.to_text() and "cap" not in idle.to_text()
    # A service without the burn fields (an older server) shows the balance only.
    assert WalletInfo({"availableCents": 1000}).to_text().count("\n") == 0
    assert (
        "45 minutes"
        in WalletInfo({"availableCents": 65, "burnCentsPerHour": 87, "hoursLeft": 0.75}).to_text()
    )


def test_rentals_table_shows_the_total_burn_and_cost() -> None:
    stopped_at = started()
    table = RentalsTable(
        [
            rental("rent_a", "running", 60, host="10.0.0.1", port=22),
            rental("rent_b", "provisioning", 120),
            rental("rent_c", "stopped", 100, startedAt=stopped_at, stoppedAt=stopped_at),
            rental("rent_d", "running", 120, gone=True),
        ]
    )
    assert table.burn_cents_per_hour == 180
    # 60⅓ minutes at 1, 2 and 2¢ a minute, rounded up; stopped at its start: 0.
    assert table.cost_cents == 61 + 121 + 0 + 121
    summary = "Burning $1.80/h across 2 active rental(s); cost so far $3.03 in all."
    assert summary in table.to_text()
    assert summary in table._repr_html_()

    # With the wallet: how long its balance lasts at that burn.
    funded = RentalsTable(table.rentals, wallet={"availableCents": 1800, "hoursLeft": 10.0})
    assert (
        "cost so far $3.03 in all; the $18.00 available lasts about 10.0 hours at that rate."
        in funded.to_text()
    )

    stopped = RentalsTable([rental("rent_c", "stopped", 100, stoppedAt=stopped_at)])
    assert "nothing is being spent" in stopped.to_text()
    # After %gpu_stop --all the list is ending: no totals under it.
    assert "Burning" not in RentalsTable(table.rentals, title="Stopped", totals=False).to_text()
    assert "No rentals" in RentalsTable([]).to_text()


def test_an_ended_rental_without_stopped_at_costs_up_to_its_end() -> None:
    ended = (datetime.now(timezone.utc) - timedelta(minutes=30, seconds=20)).isoformat()
    info = rental("rent_e", "stopped", 60, endedAt=ended)
    # Started 60 min 20 s ago, ended 30 min 20 s ago: 30 minutes at 1¢ a minute.
    assert info.cost_cents() == 30 and info.elapsed_seconds() == pytest.approx(1800, abs=1)
    assert rental("rent_f", "stopped", 60, endedAt=ended, stoppedAt=started()).cost_cents() == 0
