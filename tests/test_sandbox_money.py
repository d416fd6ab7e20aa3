"""Money on a frozen sandbox clock: the reserve, per-second metering only while running, the
meter's invariant, refunds, the wallet at $0, auto-stop, the ledger; conservation under any
sequence of operations."""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers.sandbox import error, ok, rent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, SSHKeypair, start_sandbox

PROVISION_SECONDS = 30


def half_up(price: int, seconds: int) -> int:
    return (2 * price * seconds + 3600) // 7200


@pytest.fixture(scope="module")
def frozen(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair
) -> Iterator[SandboxProcess]:
    """Time stands still unless a test advances it, so every amount is exact."""
    with start_sandbox(
        tmp_path_factory.mktemp("frozen"),
        time_scale=0.0,
        provision_seconds=(PROVISION_SECONDS, PROVISION_SECONDS),
        authorized_key=ssh_keypair.public_key_path,
    ) as process:
        yield process


@pytest.fixture
def no_faults(frozen: SandboxProcess) -> Iterator[None]:
    yield
    frozen.set_faults({})


def get(http: httpx.Client, rental_id: str) -> dict[str, Any]:
    rental: dict[str, Any] = ok(http.get(f"/v1/rentals/{rental_id}"))
    return rental


def money(http: httpx.Client) -> tuple[int, int, int]:
    """(available, reserved, total) as the API shows them."""
    balance = ok(http.get("/v1/billing/balance"))
    assert balance["availableCents"] + balance["reservedCents"] == balance["totalCents"]
    return balance["availableCents"], balance["reservedCents"], balance["totalCents"]


def ledger(http: httpx.Client) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = ok(http.get("/v1/billing/ledger", params={"pageSize": 200}))[
        "entries"
    ]
    return entries


def assert_reconciles(http: httpx.Client) -> None:
    """Newest first: each entry's balance is its amount plus the balance before it."""
    page = ok(http.get("/v1/billing/ledger", params={"pageSize": 200}))
    entries = page["entries"]
    assert entries[0]["balanceAfterCents"] == page["balanceCents"] == money(http)[2]
    for newer, older in itertools.pairwise(entries):
        assert newer["balanceAfterCents"] == newer["amountCents"] + older["balanceAfterCents"]
    assert entries[-1]["balanceAfterCents"] == entries[-1]["amountCents"]


def test_the_first_hour_is_reserved_and_only_running_seconds_are_charged(
    frozen: SandboxProcess,
) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        rental = rent(http)
        assert money(http) == (9_935, 65, 10_000)
        frozen.advance(PROVISION_SECONDS - 1)
        assert get(http, rental["id"])["status"] == "provisioning"
        assert money(http) == (9_935, 65, 10_000)  # provisioning is not billed
        frozen.advance(1)
        assert get(http, rental["id"])["status"] == "running"
        frozen.advance(1_800)  # 32.5 ¢, half up: 33, paid out of the reserve
        assert get(http, rental["id"])["totalChargedCents"] == 33
        assert money(http) == (9_935, 32, 9_967)
        frozen.advance(1_800)  # the first hour is over: the reserve is used up
        assert money(http) == (9_935, 0, 9_935)
        frozen.advance(1)  # 65.018 ¢: still 65
        assert money(http) == (9_935, 0, 9_935)
        frozen.advance(17)  # 3618 s: 65.325 ¢, still 65
        assert money(http)[2] == 9_935
        frozen.advance(10)  # 3628 s: 65.505 ¢, half up: 66, now from available
        assert money(http) == (9_934, 0, 9_934)
        stop = ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
        assert (stop["finalChargedCents"], stop["refundedCents"]) == (66, 0)
        frozen.advance(3_600)  # nothing is billed after the stop
        stopped = get(http, rental["id"])
        assert (stopped["status"], stopped["totalChargedCents"]) == ("stopped", 66)
        assert money(http) == (9_934, 0, 9_934)
        charges = [e for e in ledger(http) if e["type"] == "rental_charge"]
        assert sum(e["amountCents"] for e in charges) == -66
        assert {e["rentalId"] for e in charges} == {rental["id"]}
        assert_reconciles(http)
    wallet = frozen.ledger(account.account_id)
    assert (wallet["depositedCents"], wallet["spentCents"]) == (10_000, 66)


def test_the_sheets_meter_example(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        rental = rent(http, familyId="h100-80gb")
        frozen.advance(PROVISION_SECONDS)
        frozen.advance(4_827)
        meter = ok(http.get(f"/v1/rentals/{rental['id']}/meter"))
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
    assert {k: v for k, v in meter.items() if k != "lastHeartbeatAt"} == {
        "rentalId": rental["id"],
        "ratePerHour": 2.8,
        "secondsBilled": 4_827,
        "currentChargeCents": 375,
    }


def test_a_pod_stopped_before_a_minute_is_refunded(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        quick = rent(http, familyId="b200", gpuCount=8)  # 4792 ¢/h: 1.33 ¢ a second
        frozen.advance(PROVISION_SECONDS)  # running from here
        frozen.advance(45)
        assert get(http, quick["id"])["totalChargedCents"] == half_up(4_792, 45) == 60
        assert money(http)[2] == 10_000 - 60
        stop = ok(http.post(f"/v1/rentals/{quick['id']}/stop"))
        assert (stop["finalChargedCents"], stop["refundedCents"]) == (0, 60)
        assert get(http, quick["id"])["totalChargedCents"] == 0
        assert money(http) == (10_000, 0, 10_000)
        refund = ledger(http)[0]
        assert (refund["type"], refund["amountCents"], refund["rentalId"]) == (
            "refund",
            60,
            quick["id"],
        )
        frozen.tick()
        # A minute or more is paid for.
        slow = rent(http, familyId="b200", gpuCount=8)
        frozen.advance(PROVISION_SECONDS)
        frozen.advance(60)
        stop = ok(http.post(f"/v1/rentals/{slow['id']}/stop"))
        assert (stop["finalChargedCents"], stop["refundedCents"]) == (half_up(4_792, 60), 0)
        assert_reconciles(http)
        frozen.tick()


def test_failed_rentals_are_refunded(frozen: SandboxProcess, no_faults: None) -> None:
    account = frozen.create_account(balance_cents=1_000)
    with frozen.client(account.sid) as http:
        frozen.set_faults({"providerFailureRate": 1.0})
        never = rent(http)
        assert money(http) == (935, 65, 1_000)
        frozen.advance(PROVISION_SECONDS)
        failed = get(http, never["id"])
        assert failed["status"] == "failed"
        assert re.fullmatch(
            r"provider: host vast-us-east-\d{3} did not boot \(.+\)", failed["error"]
        )
        assert failed["host"] is None and failed["stoppedAt"] is not None
        assert money(http) == (1_000, 0, 1_000)
        frozen.set_faults({})
        crashed = rent(http)
        frozen.advance(PROVISION_SECONDS)
        frozen.advance(600)  # ten minutes: 10.8 ¢, half up 11
        assert money(http)[2] == 1_000 - 11
        frozen.fail_rental(crashed["id"], "provider: host vast-us-east-003 lost power")
        after = get(http, crashed["id"])
        assert (after["status"], after["error"], after["totalChargedCents"]) == (
            "failed",
            "provider: host vast-us-east-003 lost power",
            0,
        )
        assert money(http) == (1_000, 0, 1_000)
        assert_reconciles(http)


def test_a_wallet_at_zero_stops_every_pod_and_invoices_the_shortfall(
    frozen: SandboxProcess,
) -> None:
    account = frozen.create_account(balance_cents=5_000)
    with frozen.client(account.sid) as http:
        big = rent(http, familyId="b200", gpuCount=8)  # 4792 ¢/h
        small = rent(http)  # 65 ¢/h
        assert money(http) == (5_000 - 4_792 - 65, 4_857, 5_000)
        frozen.advance(PROVISION_SECONDS)
        assert {get(http, r["id"])["status"] for r in (big, small)} == {"running"}
        frozen.advance(2 * 3600)  # the wallet runs dry about an hour and two minutes in
        after = [get(http, r["id"]) for r in (big, small)]
        assert money(http) == (0, 0, 0)
        frozen.tick()
        stopped = [get(http, r["id"]) for r in (big, small)]
        mail = frozen.mailbox(account.email)
        invoices = ok(http.get("/v1/billing/invoices"))["data"]
        balance = ok(http.get("/v1/billing/balance"))
    assert {r["status"] for r in after} <= {"stopping", "stopped"}
    assert {r["status"] for r in stopped} == {"stopped"}
    assert after[0]["stoppedAt"] == after[1]["stoppedAt"]  # together
    # Billing ended within about 5 s of the second the wallet could not pay.
    seconds = [
        ok(httpx.get(f"{frozen.url}/v1/rentals/{r['id']}/meter", cookies={"sid": account.sid}))[
            "secondsBilled"
        ]
        for r in (big, small)
    ]
    assert seconds[0] == seconds[1]
    used = half_up(4_792, seconds[0]) + half_up(65, seconds[0])
    assert used > 5_000
    assert half_up(4_792, seconds[0] - 5) + half_up(65, seconds[0] - 5) <= 5_000
    assert seconds[0] < 3_800  # not the two hours the clock moved
    # What the wallet could not pay is an overage invoice, against the rental.
    assert invoices and {i["reason"] for i in invoices} == {"overage"}
    assert sum(i["amountCents"] for i in invoices) == used - 5_000
    assert {i["rentalId"] for i in invoices} <= {big["id"], small["id"]}
    assert balance["openInvoicesCents"] == used - 5_000
    assert sum(r["totalChargedCents"] for r in stopped) == used
    assert "wallet reached $0" in mail[0]["subject"]
    wallet = frozen.ledger(account.account_id)
    assert (wallet["spentCents"], wallet["totalCents"]) == (5_000, 0)


def test_auto_stop_bills_up_to_the_limit_only(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        rental = rent(http, autoStopAfterHours=1.5)
        frozen.advance(PROVISION_SECONDS)
        frozen.advance(3 * 3600)
        stopped = get(http, rental["id"])
    assert stopped["status"] == "stopped" and stopped["error"] is None
    # 1.5 h from startedAt, less the 30 s of provisioning.
    assert stopped["totalChargedCents"] == half_up(65, 5_400 - PROVISION_SECONDS)
    assert frozen.ledger(account.account_id)["spentCents"] == stopped["totalChargedCents"]


def test_a_forgotten_rental_is_settled_torn_down_and_unlisted(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=1_000)
    with frozen.client(account.sid) as http:
        rental = rent(http)
        frozen.advance(PROVISION_SECONDS)
        frozen.advance(120)
        port = get(http, rental["id"])["port"]
        assert isinstance(port, int)
        frozen.delete_rental(rental["id"])
        error(http.get(f"/v1/rentals/{rental['id']}"), 404, "rental_not_found")
        assert ok(http.get("/v1/rentals")) == {"rentals": [], "nextCursor": None}
        assert money(http) == (1_000 - 2, 0, 1_000 - 2)  # 2.17 ¢: 2
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_stock_returns_when_a_rental_fails(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=100_000)
    with frozen.client(account.sid) as http:
        first = rent(http, familyId="b200", gpuCount=8, region="US")  # the only one there
        refused = http.post("/v1/rentals", json={"familyId": "b200", "gpuCount": 8, "region": "US"})
        body = error(refused, 400, "model_unavailable")
        assert body["details"]["availableRegions"] == ["DE-Frankfurt"]
        frozen.fail_rental(first["id"])
        second = rent(http, familyId="b200", gpuCount=8, region="US")
        ok(http.post(f"/v1/rentals/{second['id']}/stop"))
        frozen.tick()


# --- the invariant under any sequence of operations -------------------------------------

FAMILIES = st.sampled_from(["rtx-4090", "rtx-3090", "h100-80gb", "b200"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            FAMILIES,
            st.sampled_from([1, 2, 4, 8]),
            st.one_of(st.none(), st.floats(0.01, 3.0)),
        ),
        st.tuples(st.just("stop"), st.integers(0, 7)),
        st.tuples(st.just("fail"), st.integers(0, 7)),
        st.tuples(st.just("forget"), st.integers(0, 7)),
        st.tuples(st.just("advance"), st.integers(0, 3 * 3600)),
        st.tuples(st.just("deposit"), st.integers(1, 500)),
    ),
    max_size=12,
)


def check_invariant(sandbox: SandboxProcess, http: httpx.Client, account_id: str) -> dict[str, int]:
    wallet = sandbox.ledger(account_id)
    available, reserved, spent = (
        wallet["availableCents"],
        wallet["reservedCents"],
        wallet["spentCents"],
    )
    assert available >= 0 and reserved >= 0 and spent >= 0, wallet
    assert available + reserved + spent == wallet["depositedCents"], wallet
    entries = ok(http.get("/v1/billing/ledger", params={"pageSize": 200}))["entries"]
    assert sum(e["amountCents"] for e in entries) == wallet["totalCents"]
    return wallet


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(balance=st.integers(0, 6_000), operations=OPERATIONS)
def test_money_is_conserved_under_any_sequence(
    frozen: SandboxProcess, balance: int, operations: list[tuple[Any, ...]]
) -> None:
    account = frozen.create_account(balance_cents=balance)
    deposited = balance
    rentals: list[str] = []
    with frozen.client(account.sid) as http:
        wallet = check_invariant(frozen, http, account.account_id)
        for operation in operations:
            before = wallet
            kind = operation[0]
            if kind == "create":
                _, family, gpus, auto_stop = operation
                body: dict[str, Any] = {"familyId": family, "gpuCount": gpus}
                if auto_stop is not None:
                    body["autoStopAfterHours"] = auto_stop
                response = http.post("/v1/rentals", json=body)
                assert response.status_code in (200, 400, 403), response.text
                if response.status_code == 200:
                    rentals.append(response.json()["id"])
                else:  # a refused create moves nothing
                    assert response.json()["error"] in ("insufficient_balance", "model_unavailable")
                    assert frozen.ledger(account.account_id) == before
            elif kind == "advance":
                frozen.advance(operation[1])
            elif kind == "deposit":
                frozen.deposit(account.account_id, operation[1])
                deposited += operation[1]
            elif rentals:
                rental_id = rentals[operation[1] % len(rentals)]
                if kind == "stop":
                    assert http.post(f"/v1/rentals/{rental_id}/stop").status_code in (200, 404, 409)
                elif kind == "fail":
                    frozen.admin.post(f"/sandbox/rentals/{rental_id}/fail", json={})
                else:
                    frozen.admin.delete(f"/sandbox/rentals/{rental_id}")
            wallet = check_invariant(frozen, http, account.account_id)
            assert wallet["depositedCents"] == deposited
        balance_out = ok(http.get("/v1/billing/balance"))
        assert (balance_out["availableCents"], balance_out["reservedCents"]) == (
            wallet["availableCents"],
            wallet["reservedCents"],
        )
        for rental in ok(http.get("/v1/rentals"))["rentals"]:
            http.post(f"/v1/rentals/{rental['id']}/stop")
        frozen.tick()
        assert check_invariant(frozen, http, account.account_id)["reservedCents"] == 0
        assert all(
            r["status"] in ("stopped", "failed") for r in ok(http.get("/v1/rentals"))["rentals"]
        )
