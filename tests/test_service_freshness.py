"""How fresh what the service shows is (issue 15): each rental says when the rentals API last
confirmed it, and the list and status say since when (and why) the API does not answer; all
from the watching's own requests, none added. Against the sandbox's 5xx bursts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from helpers.counting import CountingTransport

from gpuoutlet_jupyter.api import AsyncRentalsClient, RentalRequest, RetryPolicy
from gpuoutlet_jupyter.rest.layer import JsonAPI
from gpuoutlet_jupyter.service import RentalService, ServiceOptions
from gpuoutlet_jupyter.service.record import RentalRecord
from gpuoutlet_jupyter.ssh import SSHConfigWriter

FAST = ServiceOptions(
    poll_interval=0.1,
    running_poll_interval=0.2,
    backoff_max=0.3,
    reconcile_interval=0,
)


@pytest_asyncio.fixture
async def service(
    sandbox: Any, account: Any, ssh_keypair: Any, tmp_path: Path
) -> AsyncIterator[tuple[RentalService, CountingTransport]]:
    transport = CountingTransport()
    client = AsyncRentalsClient(
        api_url=sandbox.url,
        sid=account.sid,
        retry=RetryPolicy(attempts=1),
        transport=transport,
    )
    svc = RentalService(
        client,
        state_dir=tmp_path / "state",
        ssh=SSHConfigWriter(tmp_path / "ssh", identity_file=ssh_keypair.private_key),
        options=FAST,
        owns_client=True,
    )
    await svc.start()
    try:
        yield svc, transport
    finally:
        await svc.close(warn_running=False)


async def _until(check: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_a_failing_api_is_said_with_how_old_the_list_is(
    service: tuple[RentalService, CountingTransport], sandbox: Any
) -> None:
    svc, _transport = service
    api = JsonAPI(lambda: _same(svc))
    created = await svc.create(RentalRequest.build(family_id="rtx-4090"))
    rental_id = created["id"]
    await _until(lambda: svc.rentals()[0]["status"] == "running")
    listed = await api.rentals()
    assert listed["apiProblem"] is None
    checked = datetime.fromisoformat(listed["rentals"][0]["checkedAt"].replace("Z", "+00:00"))

    # The API fails every request for a while (a 503 burst): the polls fail.
    sandbox.set_faults({"errorBurst": {"status": 503, "count": 1000}})
    await _until(lambda: svc.health.failing)
    listed = await api.rentals()
    problem = listed["apiProblem"]
    assert problem is not None and "503" in problem["message"], problem
    assert problem["since"] and problem["lastOkAt"]
    # The row is the API's last word, with when that was: no newer than before the failures.
    row = listed["rentals"][0]
    assert row["id"] == rental_id and row["status"] == "running"
    assert row["upstreamError"]
    stale = datetime.fromisoformat(row["checkedAt"].replace("Z", "+00:00"))
    assert stale >= checked

    sandbox.set_faults({})
    await _until(lambda: not svc.health.failing)
    listed = await api.rentals()
    assert listed["apiProblem"] is None
    fresh = datetime.fromisoformat(listed["rentals"][0]["checkedAt"].replace("Z", "+00:00"))
    assert fresh > stale
    await svc.stop(rental_id)


async def _same(svc: RentalService) -> RentalService:
    return svc


def test_checked_at_is_kept_but_wakes_nobody() -> None:
    """A poll that changes nothing moves checkedAt without a new version (no long-poll wakes
    for it), and a restart reads it back from the state file."""
    from helpers.notebook import rental_json

    from gpuoutlet_jupyter.api import Rental

    rental = Rental.model_validate({**rental_json(status="running"), "host": "10.0.0.1"})
    record = RentalRecord(rental=rental, version=3, phase="", checked_at=1_700_000_000.0)
    assert record.view()["checkedAt"] == "2023-11-14T22:13:20Z"
    again = RentalRecord.from_state(record.to_state())
    assert again.checked_at == 1_700_000_000.0
