"""Spend safety in RentalService: the hourly spending cap, the burn and cost, the shutdown warning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio

from gpuoutlet_jupyter.api import (
    AsyncRentalsClient,
    Balance,
    Rental,
    RentalRequest,
    RetryPolicy,
    SpendingCapError,
    UnknownFamilyError,
)
from gpuoutlet_jupyter.service import RentalService, ServiceOptions, Spending

FAST_RETRY = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.05)


def options(cap: int) -> ServiceOptions:
    return ServiceOptions(
        poll_interval=0.1,
        running_poll_interval=0.2,
        slow_poll_interval=0.3,
        reconcile_interval=0,
        max_hourly_spend_cents=cap,
    )


def request(gpus: int = 1, family: str = "rtx-4090", name: str = "spending-test") -> RentalRequest:
    return RentalRequest.build(family_id=family, gpu_count=gpus, name=name)


# --- against the sandbox -----------------------------------------------------------------


class Services:
    """Services on one fresh sandbox account, each closed at the end of the test."""

    def __init__(self, sandbox: Any, account: Any, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.account = account
        self.tmp_path = tmp_path
        self.made: list[RentalService] = []

    async def start(self, cap: int) -> RentalService:
        client = AsyncRentalsClient(
            api_url=self.sandbox.url, sid=self.account.sid, retry=FAST_RETRY
        )
        svc = RentalService(
            client,
            state_dir=self.tmp_path / f"state-{len(self.made)}",
            options=options(cap),
            owns_client=True,
        )
        await svc.start()
        self.made.append(svc)
        return svc

    def ledger(self) -> dict[str, int]:
        return cast("dict[str, int]", self.sandbox.ledger(self.account.account_id))

    def upstream_rentals(self) -> list[dict[str, Any]]:
        with self.sandbox.client(self.account.sid) as http:
            return cast("list[dict[str, Any]]", http.get("/v1/rentals").json()["rentals"])


@pytest_asyncio.fixture
async def services(sandbox: Any, account: Any, tmp_path: Path) -> AsyncIterator[Services]:
    made = Services(sandbox, account, tmp_path)
    yield made
    for svc in made.made:
        await svc.close(warn_running=False)


async def until_stopped(svc: RentalService, rental_id: str) -> None:
    """Follow the service's long-poll until the rental is stopped (bounded, not timed)."""
    view = await svc.rental(rental_id)
    for _ in range(30):
        if view["status"] == "stopped":
            return
        view = await svc.wait_for_change(rental_id, view["version"], timeout=5)
    raise AssertionError(f"never stopped: {view}")


async def quoted_price(svc: RentalService, gpus: int = 1) -> int:
    """What gpuoutlet's quote says a create would cost per hour now."""
    quote = await svc.quote(request(gpus))
    return int(quote["quote"]["pricePerHourCents"])


@pytest.mark.asyncio
async def test_the_cap_allows_creates_up_to_it_and_refuses_the_one_that_crosses_it(
    services: Services,
) -> None:
    probe = await services.start(cap=0)
    price = await quoted_price(probe)
    # Room for exactly two single-GPU rentals: reaching the cap is allowed, crossing it is not.
    svc = await services.start(cap=2 * price)

    first = await svc.create(request())
    second = await svc.create(request())
    assert svc.spending().burn_cents_per_hour == first["pricePerHourCents"] * 2 == 2 * price
    before = services.ledger()

    with pytest.raises(SpendingCapError) as refused:
        await svc.create(request())

    error = refused.value
    assert (error.cap_cents, error.burn_cents_per_hour, error.price_cents_per_hour) == (
        2 * price,
        2 * price,
        price,
    )
    message = str(error)
    for amount in (f"${2 * price / 100:.2f}/h", f"${price / 100:.2f}/h"):
        assert amount in message
    assert "c.GpuOutletApp.max_hourly_spend_cents" in message
    assert "%config NotebookSession.max_hourly_spend_cents" in message
    assert "nothing was charged" in message
    # Refused before any request: the ledger and the API's list are as they were.
    assert services.ledger() == before
    assert {r["id"] for r in services.upstream_rentals()} == {first["id"], second["id"]}
    assert len(svc.rentals()) == 2

    # Two GPUs: the quote's price for the pair, refused as well.
    pair = await quoted_price(probe, gpus=2)
    with pytest.raises(SpendingCapError) as refused:
        await svc.create(request(gpus=2))
    assert refused.value.price_cents_per_hour == pair

    # Once a rental is stopped its price no longer counts, and the next one fits.
    stopping = await svc.stop(first["id"])
    assert stopping["status"] == "stopping"
    assert svc.spending().burn_cents_per_hour == 2 * price  # stopping may still be billed...
    await until_stopped(svc, first["id"])
    assert svc.spending().burn_cents_per_hour == price  # ...stopped is not
    third = await svc.create(request())
    assert third["status"] == "provisioning"
    assert svc.spending().burn_cents_per_hour == 2 * price


@pytest.mark.asyncio
async def test_creates_at_once_are_checked_one_at_a_time(services: Services) -> None:
    probe = await services.start(cap=0)
    price = await quoted_price(probe)
    svc = await services.start(cap=price)
    outcomes = await asyncio.gather(
        svc.create(request(name="first")),
        svc.create(request(name="second")),
        return_exceptions=True,
    )
    made = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, SpendingCapError)]
    # Each could pass the check alone; together they would cross the cap: one is refused.
    assert len(made) == 1 and len(refused) == 1, outcomes
    assert [r["id"] for r in services.upstream_rentals()] == [made[0]["id"]]


@pytest.mark.asyncio
async def test_the_same_request_twice_at_once_is_sent_once(services: Services) -> None:
    svc = await services.start(cap=0)
    # No idempotency key upstream: the second waits for the first and gets its rental.
    first, second = await asyncio.gather(svc.create(request()), svc.create(request()))
    assert first["id"] == second["id"]
    assert "nothing was sent twice" in (second["note"] or first["note"] or "")
    assert [r["id"] for r in services.upstream_rentals()] == [first["id"]]


@pytest.mark.asyncio
async def test_the_cap_fails_closed_without_a_quote(services: Services) -> None:
    svc = await services.start(cap=10_000)
    before = services.ledger()
    services.sandbox.set_faults({"errorBurst": {"status": 503, "count": 50}})
    try:
        with pytest.raises(SpendingCapError) as refused:
            await svc.create(request())
    finally:
        services.sandbox.set_faults({})
    assert refused.value.price_cents_per_hour is None
    assert "cannot be checked" in str(refused.value)
    assert services.ledger() == before and services.upstream_rentals() == []


@pytest.mark.asyncio
async def test_an_unknown_family_is_refused_before_any_money_moves(services: Services) -> None:
    svc = await services.start(cap=1)
    before = services.ledger()
    with pytest.raises(UnknownFamilyError) as refused:
        await svc.create(request(family="rtx-4909"))
    assert "rtx-4090" in refused.value.suggestions
    assert services.ledger() == before


@pytest.mark.asyncio
async def test_no_cap_means_no_check(services: Services) -> None:
    svc = await services.start(cap=0)
    for _ in range(3):
        await svc.create(request())
    assert svc.spending().active == 3


@pytest.mark.asyncio
async def test_the_cost_of_a_stopped_rental_is_the_apis_settled_total(
    services: Services,
) -> None:
    """Every cost is gpuoutlet's number: totalChargedCents, a stop's finalChargedCents."""
    svc = await services.start(cap=0)
    created = await svc.create(request())
    view = await svc.rental(created["id"])
    for _ in range(60):
        if view["status"] == "running":
            break
        view = await svc.wait_for_change(created["id"], view["version"], timeout=5)
    stopping = await svc.stop(created["id"])
    assert stopping["alreadyStopped"] is False
    final = stopping["stop"]["finalChargedCents"]
    assert stopping["costCents"] == final == stopping["totalChargedCents"]
    await until_stopped(svc, created["id"])
    view = await svc.rental(created["id"])
    with services.sandbox.client(services.account.sid) as http:
        upstream = http.get(f"/v1/rentals/{created['id']}").json()
    assert view["costCents"] == upstream["totalChargedCents"] == svc.spending().cost_cents
    assert svc.spending().burn_cents_per_hour == 0
    # A stop of a stopped rental is done, not an error.
    again = await svc.stop(created["id"])
    assert again["alreadyStopped"] is True and again["status"] == "stopped"
    # The first stop's settlement is kept.
    assert again["stop"] == view["stop"] and again["costCents"] == view["costCents"]


# --- the numbers, without an API ---------------------------------------------------------


def rental(rental_id: str, status: str, price: int, gpus: int, charged: int) -> Rental:
    """A rental as the API reports it, with what it has been charged so far."""
    now = datetime.now(timezone.utc)
    return Rental(
        id=rental_id,
        status=status,
        price_per_hour_cents=price,
        started_at=now - timedelta(hours=2),
        stopped_at=now - timedelta(hours=1) if status == "stopped" else None,
        family_id="rtx-4090",
        gpu_count=gpus,
        host="10.0.0.1" if status == "running" else None,
        port=22 if status == "running" else None,
        total_charged_cents=charged,
    )


class StubClient:
    """The few client calls the service makes here, answered from memory."""

    api_url = "https://gpuoutlet.example"

    def __init__(self, rentals: list[Rental], total_cents: int) -> None:
        self.by_id = {r.id: r for r in rentals}
        self.total_cents = total_cents

    async def get(self, rental_id: str, **_: Any) -> Rental:
        return self.by_id[rental_id]

    async def listings(self) -> list[Any]:
        return []

    async def ssh_keys(self) -> list[Any]:
        return []

    async def me(self) -> Any:
        raise AssertionError("not asked here")

    async def balance(self) -> Balance:
        return Balance(
            available_cents=self.total_cents - 60, reserved_cents=60, total_cents=self.total_cents
        )

    # Last: named like the builtin, it would shadow `list` in the annotations below it.
    async def list(self, **_: Any) -> list[Rental]:
        return [*self.by_id.values()]


async def tracked_service(tmp_path: Path, total_cents: int = 1000) -> RentalService:
    """A service, never started (so no watchers), tracking three rentals."""
    rentals = [
        rental("rent_running", "running", 60, 1, charged=121),
        rental("rent_provisioning", "provisioning", 120, 2, charged=0),
        rental("rent_stopped", "stopped", 100, 1, charged=100),
    ]
    client = StubClient(rentals, total_cents)
    svc = RentalService(
        cast("AsyncRentalsClient", client), state_dir=tmp_path, options=options(cap=0)
    )
    await svc.reconcile()  # adopts the two active ones
    await svc.rental("rent_stopped")  # tracks the stopped one
    return svc


@pytest.mark.asyncio
async def test_spending_sums_the_burn_of_active_rentals_and_the_apis_costs(
    tmp_path: Path,
) -> None:
    svc = await tracked_service(tmp_path)
    assert svc.spending() == Spending(burn_cents_per_hour=180, cost_cents=121 + 0 + 100, active=2)
    views = {v["id"]: v for v in svc.rentals()}
    assert [views[i]["costCents"] for i in ("rent_running", "rent_stopped")] == [121, 100]

    wallet = await svc.wallet_view()
    assert (wallet["availableCents"], wallet["totalCents"]) == (940, 1000)
    assert wallet["burnCentsPerHour"] == 180
    # How long the wallet (at $0 every pod stops) lasts at that burn.
    assert wallet["hoursLeft"] == round(1000 / 180, 2)
    assert wallet["maxHourlySpendCents"] is None and wallet["warnings"] == []
    assert Spending(burn_cents_per_hour=0, cost_cents=5, active=0).hours_left(1000) is None

    short = await tracked_service(tmp_path / "short", total_cents=150)
    (warning,) = (await short.wallet_view())["warnings"]
    assert warning["code"] == "wallet_under_an_hour" and "every pod" in warning["message"]


@pytest.mark.asyncio
async def test_close_warns_once_about_rentals_left_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    svc = await tracked_service(tmp_path)
    caplog.set_level(logging.INFO, logger="gpuoutlet_jupyter")
    await svc.close()

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, caplog.text
    text = warnings[0].getMessage()
    assert "rent_running (rtx-4090 × 1, $0.60/h)" in text
    assert "rent_provisioning (rtx-4090 × 2, $1.20/h)" in text
    assert "rent_stopped" not in text
    assert "$1.80/h in all" in text
    for how in ("%gpu_stop ID", "sidebar", "start Jupyter again", "keep running and costing"):
        assert how in text

    caplog.clear()
    quiet = await tracked_service(tmp_path / "quiet")
    await quiet.close(warn_running=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- the setting and the error mapping ---------------------------------------------------


def test_the_cap_is_a_setting_of_the_server_and_of_the_magics(tmp_path: Path) -> None:
    from traitlets import TraitError

    from gpuoutlet_jupyter.notebook.session import NotebookSession
    from gpuoutlet_jupyter.server.app import GpuOutletApp
    from gpuoutlet_jupyter.service.options import service_config

    assert service_config(GpuOutletApp(), tmp_path).options.max_hourly_spend_cents == 0
    app = GpuOutletApp(max_hourly_spend_cents=250)
    assert app.manager_config().service.options.max_hourly_spend_cents == 250
    session = NotebookSession(max_hourly_spend_cents=300)
    assert session.backend_config().service.options.max_hourly_spend_cents == 300
    with pytest.raises(TraitError):
        GpuOutletApp(max_hourly_spend_cents=-1)


def test_the_refusal_is_a_409_with_the_amounts() -> None:
    from gpuoutlet_jupyter.rest.errors import error_reply

    error = SpendingCapError(cap_cents=200, burn_cents_per_hour=130, price_cents_per_hour=130)
    reply = error_reply(error)
    assert reply is not None and reply.status == 409
    assert reply.body["error"] == {
        "code": "spending_cap",
        "message": str(error),
        "capCentsPerHour": 200,
        "burnCentsPerHour": 130,
        "priceCentsPerHour": 130,
    }
    assert "$2.00/h" in str(error) and "$1.30/h" in str(error) and "$2.60/h" in str(error)


def test_a_records_cost_is_the_apis_and_survives_a_restart() -> None:
    from gpuoutlet_jupyter.service import RentalRecord

    record = RentalRecord(
        rental=rental("rent_ENDED", "stopped", 120, 1, charged=118), version=1, phase=""
    )
    assert record.cost_cents() == 118 and record.to_json()["costCents"] == 118
    record.publish()
    assert record.view()["costCents"] == 118
    assert RentalRecord.from_state(record.to_state()).cost_cents() == 118
