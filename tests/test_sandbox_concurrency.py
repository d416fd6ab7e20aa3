"""The wallet lock holds under load: concurrent creates never overspend or lose a cent."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

BODY = {"familyId": "rtx-4090", "gpuCount": 1}


async def _burst(
    sandbox: SandboxProcess, sid: str, n: int, headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    """`n` creates at once, each on its own connection."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with sandbox.async_client(sid, limits=limits, timeout=60) as http:
        creates = (http.post("/v1/rentals", json=BODY, headers=headers) for _ in range(n))
        return await asyncio.gather(*creates)


@pytest.mark.asyncio
async def test_200_concurrent_creates_on_a_wallet_for_10_hours(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10 * 65)
    responses = await _burst(sandbox, account.sid, 200)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 402: 190}
    ids = {r.json()["id"] for r in responses if r.status_code == 200}
    assert len(ids) == 10
    for response in responses:
        if response.status_code == 402:
            error = response.json()["error"]
            assert error["code"] == "insufficient_balance"
            assert error["requiredCents"] == 65
            assert error["availableCents"] < 65

    ledger = sandbox.ledger(account.account_id)
    assert ledger == {
        "depositedCents": 650,
        "availableCents": 0,
        "reservedCents": 650,
        "spentCents": 0,
    }
    with sandbox.client(account.sid) as http:
        listed = http.get("/v1/rentals").json()["rentals"]
        assert {r["id"] for r in listed} == ids
        for rental_id in ids:
            assert http.post(f"/v1/rentals/{rental_id}/stop").status_code == 200
    ledger = sandbox.ledger(account.account_id)
    assert ledger["reservedCents"] == 0
    assert ledger["availableCents"] + ledger["spentCents"] == 650


@pytest.mark.asyncio
async def test_concurrent_retries_with_one_idempotency_key_make_one_rental(
    sandbox: SandboxProcess,
) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    responses = await _burst(sandbox, account.sid, 30, headers={"Idempotency-Key": "retry-1"})
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    ledger = sandbox.ledger(account.account_id)
    assert (ledger["availableCents"], ledger["reservedCents"]) == (10_000 - 65, 65)
