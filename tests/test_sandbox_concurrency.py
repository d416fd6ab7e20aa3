"""The wallet lock holds under load: concurrent creates never overspend or lose a cent, and
nothing makes two requests one (the API has no idempotency key)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

BODY = {"familyId": "rtx-4090", "gpuCount": 1}


@pytest.fixture
def unlimited(sandbox: SandboxProcess) -> Iterator[None]:
    """These bursts are load on the wallet lock, not on the request limits."""
    sandbox.set_rate_limits(0, 0)
    yield
    sandbox.set_rate_limits(100, 1_000)


async def _burst(
    sandbox: SandboxProcess, sid: str, n: int, headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    """`n` creates at once, each on its own connection."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with sandbox.async_client(sid, limits=limits, timeout=60) as http:
        creates = (http.post("/v1/rentals", json=BODY, headers=headers) for _ in range(n))
        return await asyncio.gather(*creates)


@pytest.mark.asyncio
async def test_200_concurrent_creates_on_a_wallet_for_10_hours(
    sandbox: SandboxProcess, unlimited: None
) -> None:
    account = sandbox.create_account(balance_cents=10 * 65)
    responses = await _burst(sandbox, account.sid, 200)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 403: 190}
    ids = {r.json()["id"] for r in responses if r.status_code == 200}
    assert len(ids) == 10
    for response in responses:
        if response.status_code == 403:
            body = response.json()
            assert body["error"] == "insufficient_balance"
            assert body["details"]["neededCents"] == 65
            assert body["details"]["availableCents"] < 65

    wallet = sandbox.ledger(account.account_id)
    assert (wallet["availableCents"], wallet["reservedCents"], wallet["spentCents"]) == (0, 650, 0)
    with sandbox.client(account.sid) as http:
        listed = http.get("/v1/rentals").json()["rentals"]
        assert {r["id"] for r in listed} == ids
        for rental_id in ids:
            assert http.post(f"/v1/rentals/{rental_id}/stop").status_code == 200
    wallet = sandbox.ledger(account.account_id)
    assert wallet["reservedCents"] == 0
    assert wallet["availableCents"] + wallet["spentCents"] == 650


@pytest.mark.asyncio
async def test_the_same_create_sent_30_times_makes_30_rentals(
    sandbox: SandboxProcess, unlimited: None
) -> None:
    """The vendor documents no idempotency key: a retried create is a new rental (and an
    Idempotency-Key header is ignored), so a client must never retry one blindly."""
    account = sandbox.create_account(balance_cents=10_000)
    responses = await _burst(sandbox, account.sid, 30, headers={"Idempotency-Key": "retry-1"})
    assert {r.status_code for r in responses} == {200}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 30
    wallet = sandbox.ledger(account.account_id)
    assert (wallet["availableCents"], wallet["reservedCents"]) == (10_000 - 30 * 65, 30 * 65)
    with sandbox.client(account.sid) as http:
        for rental_id in ids:
            assert http.post(f"/v1/rentals/{rental_id}/stop").status_code == 200
