"""Money on a frozen sandbox clock: reservation, metering, auto-stop, exhaustion, refunds."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, SSHKeypair, start_sandbox

PROVISION_SECONDS = 30


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


def rent(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1, **body})
    assert response.status_code == 200, response.text
    rental: dict[str, Any] = response.json()
    return rental


def get(http: httpx.Client, rental_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/rentals/{rental_id}")
    assert response.status_code == 200, response.text
    rental: dict[str, Any] = response.json()
    return rental


def money(sandbox: SandboxProcess, account_id: str) -> tuple[int, int, int]:
    """(available, reserved, spent)."""
    ledger = sandbox.ledger(account_id)
    return ledger["availableCents"], ledger["reservedCents"], ledger["spentCents"]


def test_first_hour_is_reserved_then_metered_per_second_rounded_up(
    frozen: SandboxProcess,
) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        rental = rent(http)
        assert money(frozen, account.account_id) == (9_935, 65, 0)
        frozen.advance(1800)
        assert get(http, rental["id"])["status"] == "running"
        assert money(frozen, account.account_id) == (9_935, 65, 0)
        frozen.advance(1800)  # the hour is over: the reservation is spent
        assert money(frozen, account.account_id) == (9_935, 0, 65)
        frozen.advance(1)  # ceil(65 * 3601 / 3600) = 66
        assert money(frozen, account.account_id) == (9_934, 0, 66)
        frozen.advance(59)  # ceil(65 * 3660 / 3600) = 67
        assert money(frozen, account.account_id) == (9_933, 0, 67)
        assert http.post(f"/v1/rentals/{rental['id']}/stop").json()["status"] == "stopping"
        frozen.tick()
        assert get(http, rental["id"])["status"] == "stopped"
    assert money(frozen, account.account_id) == (9_933, 0, 67)


def test_stop_in_the_first_hour_charges_the_seconds_and_releases_the_rest(
    frozen: SandboxProcess,
) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        rental = rent(http, familyId="h100-80gb", gpuCount=2)  # 560 per hour
        frozen.advance(600)
        http.post(f"/v1/rentals/{rental['id']}/stop")
        frozen.advance(3600)  # nothing is billed after the stop
    assert money(frozen, account.account_id) == (10_000 - 94, 0, 94)  # ceil(560 / 6) = 94


def test_auto_stop_bills_up_to_the_limit_only(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        rental = rent(http, autoStopAfterHours=1.5)
        frozen.advance(3 * 3600)
        stopped = get(http, rental["id"])
    assert stopped["status"] == "stopped"
    assert stopped["error"] is None
    assert stopped["stoppedAt"] is not None
    assert money(frozen, account.account_id) == (10_000 - 98, 0, 98)  # ceil(65 * 1.5)


def test_an_exhausted_wallet_stops_the_rental(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=100)
    with frozen.client(account.sid) as http:
        rental = rent(http)
        assert money(frozen, account.account_id) == (35, 65, 0)
        frozen.advance(3600)
        assert money(frozen, account.account_id) == (35, 0, 65)
        frozen.advance(1800)  # ceil(65 * 1.5) = 98
        assert money(frozen, account.account_id) == (2, 0, 98)
        assert get(http, rental["id"])["status"] == "running"
        frozen.advance(3600)  # 163 due, 2 left
        stopped = get(http, rental["id"])
    assert stopped["status"] == "stopped"
    assert stopped["error"] == "wallet exhausted"
    assert money(frozen, account.account_id) == (0, 0, 100)


def test_a_provisioning_failure_refunds_everything(frozen: SandboxProcess, no_faults: None) -> None:
    account = frozen.create_account(balance_cents=1_000)
    frozen.set_faults({"providerFailureRate": 1.0})
    with frozen.client(account.sid) as http:
        rental = rent(http)
        assert money(frozen, account.account_id) == (935, 65, 0)
        frozen.advance(PROVISION_SECONDS)
        failed = get(http, rental["id"])
    assert failed["status"] == "failed"
    assert re.fullmatch(r"provider: host gpu-fi-\d\d did not boot \(.+\)", failed["error"])
    assert failed["host"] is None and failed["stoppedAt"] is not None
    assert money(frozen, account.account_id) == (1_000, 0, 0)


def test_a_rental_that_never_came_up_is_refunded_even_after_metering(
    frozen: SandboxProcess, no_faults: None
) -> None:
    account = frozen.create_account(balance_cents=1_000)
    frozen.set_faults({"neverReady": True})
    with frozen.client(account.sid) as http:
        rental = rent(http)
        frozen.advance(2 * 3600)
        assert get(http, rental["id"])["status"] == "provisioning"
        assert money(frozen, account.account_id) == (870, 0, 130)
        frozen.fail_rental(rental["id"], "provider: host gpu-fi-01 did not boot (PXE timeout)")
    assert money(frozen, account.account_id) == (1_000, 0, 0)


def test_a_running_rental_that_fails_pays_for_its_time(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=1_000)
    with frozen.client(account.sid) as http:
        rental = rent(http)
        frozen.advance(60)
        assert get(http, rental["id"])["status"] == "running"
        frozen.advance(600)
        failed = frozen.fail_rental(rental["id"], "provider: host gpu-fi-03 lost power")
    assert failed["status"] == "failed"
    assert failed["error"] == "provider: host gpu-fi-03 lost power"
    assert money(frozen, account.account_id) == (1_000 - 12, 0, 12)  # ceil(65 * 660 / 3600)


def test_a_forgotten_rental_is_settled_torn_down_and_unlisted(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=1_000)
    with frozen.client(account.sid) as http:
        rental = rent(http)
        frozen.advance(120)
        port = get(http, rental["id"])["port"]
        assert isinstance(port, int)
        frozen.delete_rental(rental["id"])
        assert http.get(f"/v1/rentals/{rental['id']}").status_code == 404
        assert http.get("/v1/rentals").json() == {"rentals": []}
    assert money(frozen, account.account_id) == (1_000 - 3, 0, 3)  # ceil(65 * 120 / 3600)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_capacity_returns_when_a_rental_fails(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=10_000)
    with frozen.client(account.sid) as http:
        first = rent(http, region="JP", gpuCount=8)
        assert (
            http.post(
                "/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 8, "region": "JP"}
            ).status_code
            == 409
        )
        frozen.fail_rental(first["id"])
        second = rent(http, region="JP", gpuCount=8)
        http.post(f"/v1/rentals/{second['id']}/stop")


# --- the invariant under any sequence of operations -------------------------------------

FAMILIES = st.sampled_from(["rtx-4090", "rtx-3090", "h100-80gb"])
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


def check_invariant(sandbox: SandboxProcess, account_id: str) -> dict[str, int]:
    ledger = sandbox.ledger(account_id)
    available, reserved, spent = (
        ledger["availableCents"],
        ledger["reservedCents"],
        ledger["spentCents"],
    )
    assert available >= 0 and reserved >= 0 and spent >= 0, ledger
    assert available + reserved + spent == ledger["depositedCents"], ledger
    return ledger


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(balance=st.integers(0, 3_000), operations=OPERATIONS)
def test_money_is_conserved_under_any_sequence(
    frozen: SandboxProcess, balance: int, operations: list[tuple[Any, ...]]
) -> None:
    account = frozen.create_account(balance_cents=balance)
    deposited = balance
    rentals: list[str] = []
    ledger = check_invariant(frozen, account.account_id)
    with frozen.client(account.sid) as http:
        for operation in operations:
            before = ledger
            kind = operation[0]
            if kind == "create":
                _, family, gpus, auto_stop = operation
                body: dict[str, Any] = {"familyId": family, "gpuCount": gpus}
                if auto_stop is not None:
                    body["autoStopAfterHours"] = auto_stop
                response = http.post("/v1/rentals", json=body)
                assert response.status_code in (200, 402, 409), response.text
                if response.status_code == 200:
                    rentals.append(response.json()["id"])
                else:  # a refused create moves nothing
                    assert frozen.ledger(account.account_id) == before
            elif kind == "advance":
                frozen.advance(operation[1])
            elif kind == "deposit":
                frozen.deposit(account.account_id, operation[1])
                deposited += operation[1]
            elif rentals:
                rental_id = rentals[operation[1] % len(rentals)]
                if kind == "stop":
                    assert http.post(f"/v1/rentals/{rental_id}/stop").status_code in (200, 404)
                elif kind == "fail":
                    frozen.admin.post(f"/sandbox/rentals/{rental_id}/fail", json={})
                else:
                    frozen.admin.delete(f"/sandbox/rentals/{rental_id}")
            ledger = check_invariant(frozen, account.account_id)
            assert ledger["depositedCents"] == deposited
        wallet = http.get("/v1/wallet").json()
        assert (wallet["availableCents"], wallet["reservedCents"]) == (
            ledger["availableCents"],
            ledger["reservedCents"],
        )
        for rental in http.get("/v1/rentals").json()["rentals"]:
            http.post(f"/v1/rentals/{rental['id']}/stop")
        frozen.tick()
        assert check_invariant(frozen, account.account_id)["reservedCents"] == 0
        assert all(
            r["status"] in ("stopped", "failed") for r in http.get("/v1/rentals").json()["rentals"]
        )
