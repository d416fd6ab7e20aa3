"""The server within the vendor's limits: 130 rentals followed through REST by many viewers with
no 429, and the request budget in the REST status (a module of its own: its sandbox, left with
130 rentals, ends with it)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from helpers.server import Rest, sandbox_server_config, start_extension, until

pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")

#: Viewers, each asking for everything the sidebar and the magics show, as fast as answered.
VIEWERS = 8
SECONDS = 20.0


@pytest.fixture
def account(sandbox: Any, ssh_keypair: Any) -> Any:
    return sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)


@pytest.fixture
def jp_server_config(tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any) -> Any:
    # The test traits poll every 0.1 s (20 times what the vendor asks): the budget, not the
    # intervals, keeps the server within the limits.
    return sandbox_server_config(tmp_path, sandbox, account, ssh_keypair)


async def _viewer(rest: Rest, rental_ids: list[str], stop: asyncio.Event) -> dict[int, int]:
    """Ask for the list (long-polled), the status, the wallet, the families, the keys and one
    rental after another until told to stop: the count of each HTTP status received."""
    statuses: dict[int, int] = {}
    since = 0
    n = 0
    while not stop.is_set():
        rental = rental_ids[n % len(rental_ids)]
        n += 1
        replies = await asyncio.gather(
            rest.api("GET", "rentals", params={"wait": "1", "since": str(since)}),
            rest.api("GET", "status"),
            rest.api("GET", "wallet"),
            rest.api("GET", "families"),
            rest.api("GET", "keys"),
            rest.api("GET", f"rentals/{rental}"),
        )
        for reply in replies:
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
        if replies[0].status_code == 200:
            since = replies[0].json()["version"]
    return statuses


async def test_130_rentals_followed_through_rest_by_8_viewers_without_a_429(
    jp_serverapp: Any, http_server: Any, sandbox: Any, account: Any
) -> None:
    # 130 rentals made elsewhere (the dashboard, a script), provisioning for as long as the
    # test runs: every one is followed, and may be costing money.
    sandbox.set_faults(neverReady=True)
    made = sandbox.create_rentals(account.account_id, 90, status="provisioning", name_prefix="a")
    made += sandbox.create_rentals(
        account.account_id, 40, status="provisioning", family_id="rtx-3090", name_prefix="b"
    )
    assert len(made) == 130
    rest = await start_extension(jp_serverapp)

    async def all_tracked() -> bool:
        listed = (await rest.api("GET", "rentals")).json()["rentals"]
        return {r["id"] for r in listed} == set(made)

    await until(all_tracked, timeout=30)

    stop = asyncio.Event()
    viewers = [asyncio.create_task(_viewer(rest, made, stop)) for _ in range(VIEWERS)]
    await asyncio.sleep(SECONDS)
    stop.set()
    answered: dict[int, int] = {}
    for counts in await asyncio.gather(*viewers):
        for status, count in counts.items():
            answered[status] = answered.get(status, 0) + count
    # Every viewer was answered, none refused: the reads are shared, the polls batched.
    assert set(answered) == {200}, answered
    assert answered[200] >= VIEWERS * 6

    # A create still goes through at once, with a name, among the 130.
    created = await rest.api("POST", "rentals", json={"familyId": "l4", "gpuCount": 1})
    assert created.status_code == 200, created.text
    assert re.fullmatch(r"[A-Za-z0-9._-]+/jupyter-[a-z2-9]{4}", created.json()["name"])

    status = (await rest.api("GET", "status")).json()
    budget = status["requestBudget"]
    assert budget["perMinute"] == 60 and budget["perHour"] == 600
    assert 0 < budget["usedLastMinute"] <= 60, budget
    assert budget["rateLimitedCount"] == 0 and budget["heldUntil"] is None
    # gpuoutlet's own count says the same: the rest of the 100 is left to the dashboard.
    assert budget["apiLimit"] == 100 and budget["apiRemaining"] >= 100 - 60 - 1, budget
    assert sandbox.rate_limits()["refusedCount"] == 0
    # Rentals are still followed: every provisioning one polled, by one list call a round.
    listed = (await rest.api("GET", "rentals")).json()["rentals"]
    assert len(listed) == 131 and all(r["polls"] > 0 for r in listed if r["id"] in made)
